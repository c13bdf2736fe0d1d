"""The report's charts and test metrics as TensorBoard images and text."""

from __future__ import annotations

from pathlib import Path

from cifar.report.markdown import _headline_table
from cifar.run_files import RunFiles

TENSORBOARD_SUBDIR = "report"  # under tensorboard/, beside Keras's train/ and validation/


def log_to_tensorboard(run: RunFiles, plots: dict[str, Path]) -> Path:
    """Log the plots (and a metrics summary) as TensorBoard images under ``tensorboard/report``."""
    import tensorflow as tf

    from cifar.plots import log_images

    log_dir = run.run_dir / "tensorboard" / TENSORBOARD_SUBDIR
    # Only this function writes here: clear earlier events so a re-run does not duplicate them.
    for old in log_dir.glob("events.out.tfevents.*"):
        old.unlink()
    # Keras's TensorBoard logs epoch e at step e - 1; put the report at the last epoch.
    step = int(run.history[-1].get("epoch", len(run.history))) - 1 if run.history else 0
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        log_images(writer, {tag: path.read_bytes() for tag, path in plots.items()}, step)
        if run.evaluation:
            with writer.as_default():
                tf.summary.text("test_metrics", _headline_table(run.evaluation["headline"]), step)
    finally:
        writer.close()
    return log_dir
