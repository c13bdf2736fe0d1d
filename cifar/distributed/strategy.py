"""Which ``tf.distribute`` strategy a run uses, and which worker this process is."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from cifar.config import STRATEGY_NAMES as STRATEGIES
from cifar.distributed.cluster import read_tf_config
from cifar.errors import ConfigError


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in a run: worker ``index`` of ``count`` (worker 0 is the chief)."""

    index: int = 0
    count: int = 1
    multiworker: bool = False

    @property
    def is_chief(self) -> bool:
        """True for the one process that writes the run directory."""
        return self.index == 0

    @property
    def prefix(self) -> str:
        """Prefix of this process's log lines (empty on a single process)."""
        return f"[worker {self.index}/{self.count}] " if self.multiworker else ""


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy called ``name`` (see STRATEGIES); multiworker reads the cluster from TF_CONFIG.

    ``multiworker`` must be created before TensorFlow runs any operation in this process.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name != "multiworker":
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    read_tf_config()  # a clear message before TensorFlow parses (or ignores) it
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:  # collective ops cannot be configured once TF has run something
        raise ConfigError(
            f"the multiworker strategy must be created before TensorFlow runs anything ({exc})"
        ) from None


def worker_role(strategy: tf.distribute.Strategy) -> WorkerRole:
    """This process's role under ``strategy`` (a single process is chief of one)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return WorkerRole()
    resolver = strategy.cluster_resolver
    count = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    return WorkerRole(int(resolver.task_id or 0), count, multiworker=True)


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Return once every worker has called it (a one-number all-reduce)."""

    @tf.function  # strategy.run outside a tf.function is slow and warns about it
    def meet():
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1)), axis=None)

    meet()
