"""Shared helpers of the benchmark scripts: machine description and BENCHMARKS.md sections."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nEvery figure below was printed by the command above it, on the machine it "
    "names. The scripts rewrite their own section when run with `--write`.\n"
)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (the architecture elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def cpu_mhz() -> float | None:
    """Current clock of the first core in MHz, if the kernel reports it."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def bench_parser(doc: str, data_dir: bool = False) -> argparse.ArgumentParser:
    """A benchmark's parser: its docstring's first line, --write and, if asked, --data-dir."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if data_dir:
        parser.add_argument("--data-dir", help="CIFAR-10 folder (default: $CIFAR10_DIR or Keras)")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    return parser


def vector_isa() -> str:
    """The widest fp32 vector instruction set the CPU reports: AVX-512, AVX2 or neither."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split() for line in fh if line.startswith("flags")), [])
    except OSError:
        flags = []
    if "avx512f" in flags:
        return "AVX-512"
    return "AVX2" if "avx2" in flags else "SSE"


# fp32 FLOP per cycle per core: 2 FMA units x vector lanes x 2 (multiply and add).
FLOP_PER_CYCLE = {"AVX-512": 2 * 16 * 2, "AVX2": 2 * 8 * 2, "SSE": 2 * 4 * 2}


def _cpu_times() -> list[int] | None:
    """The machine's CPU time counters from /proc/stat (user ... steal), in clock ticks."""
    try:
        with open("/proc/stat") as fh:
            return [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


_TIMES_AT_START = _cpu_times()


def steal_share() -> float | None:
    """Share of the machine's CPU time the hypervisor took for other guests since import.

    On a shared virtual machine a benchmark can lose a third of its cores to neighbours
    without any process of its own showing up in the load average; this says when it did.
    """
    now = _cpu_times()
    if now is None or _TIMES_AT_START is None:
        return None
    delta = [b - a for a, b in zip(_TIMES_AT_START, now, strict=True)]
    return delta[7] / sum(delta) if sum(delta) else None


def machine_line() -> str:
    """One line naming cores, CPU model, clock and vector instruction set."""
    mhz = cpu_mhz()
    clock = f" at {mhz / 1000:.2f} GHz" if mhz else ""
    # Other processes on the 2 cores skew every figure; say how busy the machine was.
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores, {cpu_model()}{clock}, {vector_isa()}, no GPU; "
        f"1-min load average {load:.1f}"
    )


def peak_gflops() -> float | None:
    """Arithmetic fp32 peak: cores x FLOP per cycle of the CPU's vector unit x clock."""
    mhz = cpu_mhz()
    per_cycle = FLOP_PER_CYCLE[vector_isa()]
    return None if mhz is None else (os.cpu_count() or 1) * per_cycle * mhz / 1000


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream(dataset) -> tuple[int, float]:
    """Iterate a tf.data pipeline of (images, labels) once: (images delivered, seconds)."""
    n, t0 = 0, time.perf_counter()
    for images, _labels in dataset:
        n += int(images.shape[0])
    return n, time.perf_counter() - t0


def command_line() -> str:
    """The command that ran this script, as a user would type it."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(BENCHMARKS.parent)
    from cifar.data.dataset import portable_path

    args = [portable_path(a) if os.path.isabs(a) else a for a in sys.argv[1:]]
    return " ".join(["python", str(script), *args])


def steal_lines() -> list[str]:
    """One line giving the hypervisor's steal during the run, where the kernel reports it."""
    share = steal_share()
    if share is None:
        return []
    return [f"CPU time stolen by the hypervisor during the run: {100 * share:.1f}%"]


def write_section(name: str, title: str, lines: list[str]) -> Path:
    """Replace (or append) the section ``name`` of BENCHMARKS.md with the printed figures."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    body = "\n".join(
        [
            begin,
            f"## {title}",
            "",
            f"Measured {date.today().isoformat()} with:",
            "",
            "```",
            command_line(),
            "```",
            "",
            "```",
            *lines,
            *steal_lines(),
            "```",
            end,
        ]
    )
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + body + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    BENCHMARKS.write_text(text)
    return BENCHMARKS


def run(main) -> None:
    """Run a benchmark's ``main``; user errors (no data, bad path) print one line, exit 2."""
    from cifar.errors import CifarError

    try:
        main()
    except CifarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
