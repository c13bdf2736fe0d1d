"""Benchmark and results scripts: each rewrites its own section of BENCHMARKS.md (or RESULTS.md).

Run them from the repository root, e.g. ``python benchmarks/bench_data.py --write``.
"""
