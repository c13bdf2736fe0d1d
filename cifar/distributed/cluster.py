"""The cluster of a multi-worker run, read and checked from the ``TF_CONFIG`` variable."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cifar.errors import ConfigError

EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


@dataclass(frozen=True)
class Cluster:
    """The workers (``host:port``) and this process's index among them; worker 0 is the chief."""

    workers: tuple[str, ...]
    index: int

    @property
    def num_workers(self) -> int:
        """How many worker processes take part."""
        return len(self.workers)

    @property
    def is_chief(self) -> bool:
        """True on worker 0, the only one that writes the run directory."""
        return self.index == 0


def read_tf_config(environ: Mapping[str, str] | None = None) -> Cluster:
    """Parse and check ``TF_CONFIG``; a missing or malformed one is a one-line ConfigError."""
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "").strip()
    if not raw:
        raise ConfigError(
            f"--strategy multiworker needs TF_CONFIG naming the cluster, e.g. {EXAMPLE}"
        )
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc}); expected e.g. {EXAMPLE}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object, e.g. {EXAMPLE}")
    cluster, task = spec.get("cluster"), spec.get("task")
    if not isinstance(cluster, dict) or not isinstance(cluster.get("worker"), list):
        raise ConfigError('TF_CONFIG: "cluster" must hold a "worker" list of "host:port" strings')
    other = sorted(set(cluster) - {"worker"})
    if other:
        raise ConfigError(
            f'TF_CONFIG: only "worker" tasks are supported (worker 0 is the chief), got {other}'
        )
    workers = cluster["worker"]
    if not workers:
        raise ConfigError('TF_CONFIG: the "worker" list is empty')
    for address in workers:
        host, _, port = str(address).rpartition(":") if isinstance(address, str) else ("", "", "")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"TF_CONFIG: worker address {address!r} is not host:port")
    if len(set(workers)) != len(workers):
        raise ConfigError(f"TF_CONFIG: worker addresses must be distinct, got {workers}")
    if not isinstance(task, dict) or task.get("type") != "worker":
        raise ConfigError('TF_CONFIG: "task" must be {"type": "worker", "index": N}')
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(workers):
        raise ConfigError(
            f'TF_CONFIG: "task" index must be an integer from 0 to {len(workers) - 1}, '
            f"got {index!r}"
        )
    return Cluster(tuple(workers), index)
