"""Pluggable Keras callbacks used by the Trainer (one concern per module)."""

from callbacks.checkpoint import ResumeCheckpoint
from callbacks.confusion_matrix import ConfusionMatrixLogger
from callbacks.early_stopping import ResumableEarlyStopping
from callbacks.history import HistoryLogger
from callbacks.progress import ProgressETA
from callbacks.tensorboard import PhaseTensorBoard

__all__ = [
    "ConfusionMatrixLogger",
    "HistoryLogger",
    "PhaseTensorBoard",
    "ProgressETA",
    "ResumableEarlyStopping",
    "ResumeCheckpoint",
]
