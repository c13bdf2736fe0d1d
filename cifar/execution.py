"""Training steps per call of the compiled train function (Keras ``steps_per_execution``).

A cached phase's step is tiny (phase 1 trains a 1280 -> 128 -> 10 head), so the per-step cost
of ``fit`` (Python loop, callbacks, function dispatch) dominates it; running several steps per
call removes most of that. Workaround kept here: Keras 3.15 rounds every epoch *up* to a whole
number of executions (``steps_per_epoch=32`` with ``steps_per_execution=10`` trains 40 steps an
epoch), which would break the exact per-epoch batch order that resume relies on; so the value
is always a divisor of the epoch's step count.
"""

from __future__ import annotations

# Per-call target for cached phases: beyond this the saving is below a percent of a step.
CACHED_STEPS_PER_EXECUTION = 64


def steps_per_execution(steps_per_epoch: int, target: int) -> int:
    """The largest divisor of ``steps_per_epoch`` not above ``target`` (at least 1)."""
    if steps_per_epoch < 1 or target < 1:
        raise ValueError("steps_per_epoch and target must be >= 1")
    return max(d for d in range(1, min(target, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


def phase_steps_per_execution(configured: int, steps_per_epoch: int, cached: bool) -> int:
    """Steps per call for one phase: ``configured`` if set (> 0), else automatic.

    Automatic is :data:`CACHED_STEPS_PER_EXECUTION` for a phase on cached activations and 1 on
    images (there the step's arithmetic dwarfs the call overhead).
    """
    target = configured if configured > 0 else (CACHED_STEPS_PER_EXECUTION if cached else 1)
    return steps_per_execution(steps_per_epoch, target)
