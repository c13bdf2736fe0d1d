"""Load-test the prediction API under gunicorn: latency percentiles, throughput, errors.

Usage: python benchmarks/bench_serving.py [--tflite FILE] [--keras FILE] [--requests 500]
       [--concurrency 8] [--workers 2] [--image FILE] [--write]

For each backend it starts the production server exactly as the Procfile does
(``gunicorn 'cifar.serving.api:create_app()'`` with ``$CIFAR_MODEL``) on a free 127.0.0.1 port,
waits for ``GET /health``, warms every worker up, then sends a bounded number of
``POST /predict`` requests (a 32x32 PNG, raw body) from ``--concurrency`` client threads, and
stops the server. ``cpu ms/req`` is the workers' CPU time per request: unlike latency it
hardly grows when other processes compete for the cores. Default (neither ``--tflite`` nor
``--keras``): the newest ``runs/*/best_model.keras`` and the float32 TFLite file of the newest
export. Loopback only; the request count and ``--max-seconds`` bound each run.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
APP = "cifar.serving.api:create_app()"


def free_port() -> int:
    """A TCP port nobody listens on right now (on the loopback interface)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
    """One HTTP request on a new connection: (status, seconds); status 0 on a socket error."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        headers = {"Content-Type": "image/png"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - start


class GunicornServer:
    """``gunicorn`` serving ``model`` on a free loopback port, as a context manager."""

    def __init__(self, model: Path, workers: int, threads: int, timeout: float = 180) -> None:
        self.model, self.workers, self.threads, self.timeout = model, workers, threads, timeout
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> GunicornServer:
        env = {**os.environ, "CIFAR_MODEL": str(self.model), "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [
            sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{self.port}",
            "--workers", str(self.workers), "--threads", str(self.threads),
            "--timeout", "120", "--log-level", "warning", APP,
        ]  # fmt: skip
        self.process = subprocess.Popen(cmd, env=env, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with code {self.process.returncode}")
            if request(self.port, "GET", "/health")[0] == 200:
                return self
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not answer /health within {self.timeout:.0f} s")

    def worker_cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the gunicorn workers."""
        import psutil

        total = 0.0
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # the master stops its workers gracefully
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: all of it
                self.process.wait()


def load_test(
    port: int, body: bytes, n: int, concurrency: int, max_seconds: float
) -> dict[str, float]:
    """Send ``n`` POST /predict requests from ``concurrency`` threads; return the figures."""
    deadline = time.monotonic() + max_seconds

    def one(_: int) -> tuple[int, float]:
        if time.monotonic() > deadline:
            return -1, 0.0  # not sent: the time bound was hit
        return request(port, "POST", "/predict", body)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    sent = [(s, t) for s, t in results if s != -1]
    latencies = np.array([t for s, t in sent if s == 200]) * 1000
    pct = np.percentile(latencies, [50, 95, 99]) if len(latencies) else [np.nan] * 3
    return {
        "sent": len(sent),
        "ok": len(latencies),
        "errors": sum(1 for s, _ in sent if s != 200),
        "p50_ms": pct[0],
        "p95_ms": pct[1],
        "p99_ms": pct[2],
        "mean_ms": float(latencies.mean()) if len(latencies) else np.nan,
        "req_per_s": len(sent) / wall,
        "seconds": wall,
    }


def default_models() -> dict[str, Path]:
    """The newest run's ``best_model.keras`` and the newest export's float32 TFLite file."""
    from cifar.inference.predictor import find_default_model
    from cifar.run_files import BEST_MODEL

    found = {}
    newest = find_default_model()
    if newest is not None and newest.name == BEST_MODEL:
        found["keras"] = newest
    tflite = sorted(
        [*Path("runs").glob("*/export/model_float32.tflite"), *Path("models").glob("*.tflite")],
        key=lambda p: p.stat().st_mtime,
    )
    if tflite:
        found["tflite"] = tflite[-1]
    return found


def test_image(path: str | None, data_dir: str | None) -> tuple[bytes, str]:
    """PNG bytes to send: ``path``, else a local CIFAR-10 test image, else a random image."""
    from cifar.data.cifar10 import resolve_data_dir
    from cifar.imageio import encode_png, load_image

    if path:
        return encode_png(load_image(path, size=32)), path
    local = resolve_data_dir(data_dir)
    if local is not None:  # never download here: any 32x32 PNG measures the same
        from cifar.data import load_cifar10

        data = load_cifar10(local)
        return encode_png(data.x_test[0]), f"CIFAR-10 test image 0 ({data.source})"
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return encode_png(pixels), "random 32x32 PNG"


def main(argv: list[str] | None = None) -> None:
    """Benchmark each backend and print one table (``--write``: also into BENCHMARKS.md)."""
    from benchlog import bench_parser, machine_line, write_section
    from cifar.errors import CifarError

    parser = bench_parser(__doc__)
    parser.add_argument("--tflite", help="a .tflite file (default: newest export's float32)")
    parser.add_argument("--keras", help="a .keras file (default: newest run's best model)")
    parser.add_argument("--requests", type=int, default=500, help="requests per backend")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--max-seconds", type=float, default=300, help="time bound per backend")
    parser.add_argument("--image", help="image file to send (resized to 32x32 PNG)")
    parser.add_argument("--data-dir", help="CIFAR-10 folder for the test image ($CIFAR10_DIR)")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1..100000 and --concurrency 1..64")

    given = {kind: Path(getattr(args, kind)) for kind in ("tflite", "keras") if getattr(args, kind)}
    models = given or default_models()  # explicit files only, when any is given
    if not models:
        raise CifarError(
            "no model to benchmark: train one (`cifar train smoke`) and export it "
            "(`cifar export RUN_DIR`), or pass --tflite FILE / --keras FILE"
        )
    body, described = test_image(args.image, args.data_dir)
    lines = [
        f"machine: {machine_line()}",
        f"image: {described}, {len(body)} bytes; {args.requests} requests, "
        f"{args.concurrency} concurrent; gunicorn {args.workers} worker(s) x "
        f"{args.threads} thread(s)",
    ]
    print("\n".join(lines))
    rows = []
    for kind, model in models.items():
        with GunicornServer(model, args.workers, args.threads) as server:
            for _ in range(4 * args.workers):  # every worker has served a request before timing
                request(server.port, "POST", "/predict", body)
            cpu_before = server.worker_cpu_seconds()
            figures = load_test(
                server.port, body, args.requests, args.concurrency, args.max_seconds
            )
            # Server CPU per request hardly depends on what else runs on the machine.
            cpu = server.worker_cpu_seconds() - cpu_before
            figures["cpu_ms"] = 1000 * cpu / max(figures["sent"], 1)
        rows.append((kind, model, figures))
    table = [
        f"{'backend':8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'req/s':>7} {'sent':>5} {'errors':>6} {'cpu ms/req':>10}  model"
    ]
    for kind, model, f in rows:
        table.append(
            f"{kind:8} {f['p50_ms']:8.1f} {f['p95_ms']:8.1f} {f['p99_ms']:8.1f} "
            f"{f['mean_ms']:8.1f} {f['req_per_s']:7.1f} {f['sent']:5d} {f['errors']:6d} "
            f"{f['cpu_ms']:10.2f}  {model}"
        )
    table.append(
        f"load average after the run: {os.getloadavg()[0]:.1f} (other processes share the CPUs)"
    )
    print("\n" + "\n".join(table))
    if args.write:
        write_section("bench_serving", "Prediction API under gunicorn", [*lines, "", *table])


if __name__ == "__main__":
    from benchlog import run

    run(main)
