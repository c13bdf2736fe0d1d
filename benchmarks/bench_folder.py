"""Benchmark an image folder of generated photos: decode-once speed, reuse, and peak memory.

Usage: python benchmarks/bench_folder.py [--n 20000] [--size 160] [--classes 10] [--keep DIR]
       [--write]

Writes ``--n`` JPEG photos of mixed sizes (200x150 up to 1024x768, landscape and portrait)
into a temporary ``root/<class>/`` folder (deleted afterwards, never committed), then:
loads it as the Trainer does (decoded once into the memory-mapped store at ``--size``), loads it
again (the store is reused, nothing is decoded), and streams one training epoch through the
tf.data pipeline at ``--size``. Prints images/s for each step and the peak resident memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = [(200, 150), (320, 240), (500, 374), (640, 480), (374, 500), (800, 600), (1024, 768)]


def write_photo(args: tuple[Path, int, int]) -> None:
    """One smooth random photo (gradients + noise, so JPEG sizes are realistic)."""
    import numpy as np
    from PIL import Image

    path, index, label = args
    rng = np.random.default_rng(index)
    w, h = SIZES[index % len(SIZES)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3) * (0.5 + 0.5 * np.sin(xx / rng.uniform(20, 90))[..., None])
    tint = (yy / h)[..., None] * rng.uniform(-80, 80, 3) + 10 * label
    pixels = np.clip(base + tint + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=85)


def generate(root: Path, n: int, classes: int) -> tuple[float, int]:
    """Write ``n`` photos into ``root/class_k/`` (those missing); (total MB, photos written)."""
    jobs = []
    for i in range(n):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((folder / f"photo_{i:06d}.jpg", i, i % classes))
    todo = [job for job in jobs if not job[0].is_file()]  # --keep: finish an earlier folder
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(write_photo, todo, chunksize=64))
    return sum(p.stat().st_size for p, _, _ in jobs) / 1e6, len(todo)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--keep", help="generate into (and keep) this folder instead of a temp one")
    args = parser.parse_args(argv)

    from benchlog import machine_line, peak_rss_mb, stream, write_section
    from cifar.data import load_image_folder, stratified_split
    from cifar.data.pipeline import make_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-folder-"))
    root = Path(args.keep) if args.keep else work / "photos"
    lines = [f"machine: {machine_line()}"]
    try:
        if not root.is_dir() or sum(1 for _ in root.rglob("*.jpg")) < args.n:
            t0 = time.perf_counter()
            mb, written = generate(root, args.n, args.classes)
            lines.append(
                f"folder of {args.n:,} generated JPEG photos ({mb:,.0f} MB, {len(SIZES)} sizes "
                f"from 200x150 to 1024x768); wrote {written:,} of them in "
                f"{time.perf_counter() - t0:.0f} s"
            )
            print(lines[-1])
        quiet = lambda message: None  # noqa: E731 - the benchmark prints its own lines
        t0 = time.perf_counter()
        data = load_image_folder(root, args.size, cache_dir=work / "cache", log=quiet)
        dt = time.perf_counter() - t0
        n = len(data.y_train) + len(data.y_test)
        lines.append(
            f"first load: decoded {n:,} photos to {args.size}x{args.size} in {dt:.1f} s = "
            f"{n / dt:,.0f} images/s; peak resident memory so far {peak_rss_mb():,.0f} MiB"
        )
        print(lines[-1])
        t0 = time.perf_counter()
        data = load_image_folder(root, args.size, cache_dir=work / "cache", log=quiet)
        lines.append(
            f"second load: store reused (sha256 verified, nothing decoded) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        print(lines[-1])
        train_idx, _ = stratified_split(data.y_train, 0.1, 42)
        ds = make_dataset(
            data.x_train,
            data.y_train,
            data.num_classes,
            args.size,
            args.batch_size,
            training=True,
            indices=train_idx,
        )
        seen, dt = stream(ds)
        lines.append(
            f"one training epoch streamed from the store: {seen:,} images in {dt:.1f} s = "
            f"{seen / dt:,.0f} images/s (batch {args.batch_size}, shuffled, float32 "
            f"{args.size}x{args.size})"
        )
        print(lines[-1])
        lines.append(
            f"peak resident memory: {peak_rss_mb():,.0f} MiB (memory-mapped pages included)"
        )
        print(lines[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.write:
        write_section(
            "bench_folder", f"Image folder of {args.n:,} generated photos at {args.size}", lines
        )


if __name__ == "__main__":
    from benchlog import run

    run(main)
