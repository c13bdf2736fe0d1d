"""Training on several devices or machines: strategy choice, cluster, the multi-worker loop."""

from cifar.distributed.cluster import Cluster, read_tf_config
from cifar.distributed.strategy import (
    STRATEGIES,
    WorkerRole,
    barrier,
    make_strategy,
    worker_role,
)

__all__ = [
    "STRATEGIES",
    "Cluster",
    "WorkerRole",
    "barrier",
    "make_strategy",
    "read_tf_config",
    "worker_role",
]
