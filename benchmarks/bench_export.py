"""Export a trained run to every format, check the release targets, time the on-device runner.

Usage: python benchmarks/bench_export.py RUN_DIR [--out-dir DIR] [--data-dir DIR]
       [--verify-n 2000] [--representative-n 300] [--json FILE]

Targets (issue 5), on the same ``--verify-n`` test images:
- float32 TFLite and ONNX agree with the Keras model on >= 99.9% of images (top-1);
- float16 TFLite agrees on >= 99.5%;
- int8 TFLite (uint8 in and out) loses <= 1.0 accuracy point against float32 and is <= 30% of the
  float32 file's size.

Then the runner (``cifar/inference/tflite_runner.py``: LiteRT, NumPy, Pillow) is timed in fresh
interpreters without TensorFlow: import time, per-image latency (1 thread and LiteRT's default),
and the wall time of one ``python -m cifar.inference.tflite_runner MODEL IMAGE`` call. Exits 1 if a
target is missed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]

# Measured in a fresh interpreter so TensorFlow's import and threads do not distort the figures.
RUNNER_PROBE = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter
import cifar.inference.tflite_runner as runner
import_s = time.perf_counter() - start
images = np.load(sys.argv[1])
out = {"import_s": import_s, "tensorflow_imported": "tensorflow" in sys.modules, "models": {}}
for path in sys.argv[2:]:
    row = {}
    for threads in (1, None):
        clf = runner.TFLiteClassifier(path, num_threads=threads)
        for image in images[:5]:
            clf.predict(image[None])
        times = []
        for image in images:
            t = time.perf_counter()
            clf.predict(image[None])
            times.append(time.perf_counter() - t)
        row["1_thread" if threads == 1 else "default_threads"] = 1000 * float(np.median(times))
    out["models"][path] = row
print(json.dumps(out))
"""


def check_targets(rows: dict) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for each release target present in ``rows`` (by format)."""
    checks = []
    for name, threshold in (("tflite", 0.999), ("onnx", 0.999), ("tflite-fp16", 0.995)):
        if name in rows:
            agree = rows[name]["agreement"]
            checks.append(
                (f"{name} agreement >= {threshold:.1%}", agree >= threshold, f"{agree:.2%}")
            )
    if "tflite-int8" in rows and "tflite" in rows:
        int8, f32 = rows["tflite-int8"], rows["tflite"]
        loss = 100 * (f32["accuracy"] - int8["accuracy"])
        ratio = int8["bytes"] / f32["bytes"]
        checks.append(("tflite-int8 accuracy loss <= 1.0 point", loss <= 1.0, f"{loss:+.2f} pt"))
        checks.append(("tflite-int8 size <= 30% of float32", ratio <= 0.30, f"{ratio:.1%}"))
    return checks


def time_runner(models: list[Path], images) -> dict:
    """Import time and per-image latency of the runner, then one cold CLI call, in subprocesses."""
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "images.npy", images)
        probe = subprocess.run(
            [sys.executable, "-c", RUNNER_PROBE, str(Path(tmp) / "images.npy")]
            + [str(m) for m in models],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        image_file = Path(tmp) / "image.png"
        Image.fromarray(images[0]).save(image_file)
        cli = [
            sys.executable,
            "-m",
            "cifar.inference.tflite_runner",
            str(models[0]),
            str(image_file),
        ]
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cli, cwd=ROOT, capture_output=True, check=True)
            walls.append(time.perf_counter() - start)
        result["cli_wall_s"] = float(np.median(walls))
        result["cli_model"] = models[0].name
    return result


def main(argv: list[str] | None = None) -> int:
    """Export, print the verification table, the targets and the runner timings."""
    from benchlog import bench_parser

    parser = bench_parser(__doc__)
    parser.add_argument("run_dir", help="a finished run (best_model.keras, labels.txt, ...)")
    parser.add_argument("--out-dir", help="default: RUN_DIR/export")
    parser.add_argument("--data-dir", help="cifar-10-batches-py folder (default: the run's)")
    parser.add_argument("--verify-n", type=int, default=2000)
    parser.add_argument("--representative-n", type=int, default=300)
    parser.add_argument(
        "--plain-quantization",
        action="store_true",
        help="float16 everywhere and int8 with no float op (what the converter gives alone)",
    )
    parser.add_argument("--runner-images", type=int, default=200, help="images timed per model")
    parser.add_argument("--json", help="also write all figures to this file")
    args = parser.parse_args(argv)

    from benchlog import machine_line, write_section
    from cifar.run_files import EXPORT_DIR, METADATA_FILE, read_json
    from exports import Exporter
    from exports.exporter import ExportError

    lines: list[str] = []

    def emit(line: str = "") -> None:
        print(line)
        lines.extend(line.splitlines() or [""])

    emit(f"machine: {machine_line()}")
    exporter = Exporter(
        args.run_dir,
        data_dir=args.data_dir,
        verify_n=args.verify_n,
        representative_n=args.representative_n,
        gate=False,  # measure every file against the targets, even one the gate would drop
        selective=not args.plain_quantization,
        log=emit,
    )
    emit(f"run: {exporter.source.run_name} ({exporter.source.model_name})")
    start = time.perf_counter()
    failures: dict[str, str] = {}
    try:
        exporter.export("all", args.out_dir)
    except ExportError as exc:  # the table is printed; failed formats count as missed targets
        failures = exc.failures
    export_s = time.perf_counter() - start
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run_dir) / EXPORT_DIR
    metadata = read_json(out_dir / METADATA_FILE)
    rows = {a["format"]: a for a in metadata["artifacts"]}
    emit(f"export of all formats took {export_s:.1f} s")

    int8_float_ops = rows.get("tflite-int8", {}).get("float_ops", [])
    emit(f"int8 ops left in float: {len(int8_float_ops)}")
    for op in int8_float_ops:
        emit(f"  {op.split(';')[0]}")
    checks = check_targets(rows)
    checks += [(f"{name} exported", False, cause) for name, cause in failures.items()]
    emit("targets:")
    for target, met, measured in checks:
        emit(f"  {'PASS' if met else 'FAIL'}  {target:<42} {measured}")

    timed = [out_dir / rows[n]["file"] for n in ("tflite-int8", "tflite") if n in rows]
    runner = {}
    if timed:
        images = exporter.source.data.x_test[: args.runner_images]
        runner = time_runner(timed, images)
        emit(f"on-device runner (TensorFlow imported: {runner['tensorflow_imported']}):")
        emit(f"  import numpy + Pillow + ai_edge_litert + runner: {runner['import_s']:.2f} s")
        for path, row in runner["models"].items():
            emit(
                f"  {Path(path).name:<22} per image: {row['1_thread']:.2f} ms (1 thread), "
                f"{row['default_threads']:.2f} ms (default threads)"
            )
        emit(
            f"  python -m cifar.inference.tflite_runner {runner['cli_model']} IMAGE: "
            f"{runner['cli_wall_s']:.2f} s wall (cold start, one image)"
        )
    if args.json:
        figures = {
            "export_seconds": export_s,
            "verification": metadata["verification"],
            "artifacts": metadata["artifacts"],
            "targets": [{"target": t, "met": m, "measured": v} for t, m, v in checks],
            "runner": runner,
        }
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if args.write:
        name = exporter.source.model_name or "model"
        plain = args.plain_quantization
        write_section(
            f"bench_export_{name}{'_plain' if plain else ''}",
            f"Export and on-device runner ({name}{', plain quantisation' if plain else ''})",
            lines,
        )
    return 0 if all(met for _, met, _ in checks) else 1


if __name__ == "__main__":
    from cifar.errors import CifarError

    try:
        sys.exit(main())
    except CifarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
