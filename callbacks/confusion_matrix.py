"""Log the validation confusion matrix to TensorBoard and as PNG files while training."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf


class ConfusionMatrixLogger(keras.callbacks.Callback):
    """Every ``every`` epochs, predict the validation set and log its confusion matrix.

    The matrix is drawn as a seaborn heat map (rows = true class, colours row-normalised,
    cells annotated with counts) and written twice: as a TensorBoard image summary with tag
    ``confusion_matrix`` under ``log_dir``, at step = the global epoch index Keras reports
    (0-based, continuing across ``fit(initial_epoch=...)`` calls, so it lines up with the
    TensorBoard callback's scalars), and as ``image_dir/confusion_matrix_epoch_NNN.png`` with
    NNN the 1-based epoch number used in ``history.json``. Prediction is batched through one
    compiled ``model(x, training=False)`` step.

    Args:
        validation_data: batched ``tf.data.Dataset`` of ``(images, labels)``; labels one-hot
            or integer.
        class_names: class names in label order.
        log_dir: TensorBoard log directory for the image summaries.
        image_dir: folder for the PNG files.
        every: log every N epochs (1 = every epoch).

    Example:

    ```python
    val_ds = make_dataset(x_val, y_val, 10, 32, batch_size=64)
    logger = ConfusionMatrixLogger(
        val_ds, class_names, log_dir="runs/x/tensorboard/validation", image_dir="runs/x/plots"
    )
    model.fit(train_ds, validation_data=val_ds, epochs=5, callbacks=[logger])
    ```
    """

    @classmethod
    def for_run(
        cls, run_dir: Path, validation_data: tf.data.Dataset, class_names: list[str], every: int
    ) -> ConfusionMatrixLogger:
        """A logger writing into a run directory's ``tensorboard/`` and ``confusion_matrices/``."""
        run_dir = Path(run_dir)
        return cls(
            validation_data,
            class_names,
            log_dir=run_dir / "tensorboard",
            image_dir=run_dir / "confusion_matrices",
            every=every,
        )

    def __init__(
        self,
        validation_data: tf.data.Dataset,
        class_names: list[str],
        log_dir: str | Path,
        image_dir: str | Path,
        every: int = 1,
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.validation_data = validation_data
        self.class_names = list(class_names)
        self.log_dir = Path(log_dir)
        self.image_dir = Path(image_dir)
        self.every = every
        self.last_matrix = None
        self._writer = None
        self._step = None

    def on_train_begin(self, logs=None):
        # A fresh predict step per fit: each phase recompiles, and the model may have changed.
        from cifar.inference.keras_model import compiled_predict_step

        self._step = compiled_predict_step(self.model)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.log_epoch(epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def log_epoch(self, epoch: int) -> Path:
        """Predict the validation set, log the matrix at ``epoch`` and return the PNG path."""
        from sklearn.metrics import confusion_matrix

        from cifar.evaluation import predict_dataset
        from cifar.plots import confusion_matrix_figure, figure_to_png, log_images

        y_true, probs = predict_dataset(self.model, self.validation_data, self._step)
        labels = range(len(self.class_names))
        self.last_matrix = confusion_matrix(y_true, probs.argmax(axis=1), labels=labels)
        accuracy = float((probs.argmax(axis=1) == y_true).mean())
        figure = confusion_matrix_figure(
            self.last_matrix,
            self.class_names,
            title=f"Validation confusion matrix, epoch {epoch + 1} (accuracy {accuracy:.3f})",
        )
        png = figure_to_png(figure)
        if self._writer is None:  # called outside fit()
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        log_images(self._writer, {"confusion_matrix": png}, step=epoch)
        path = self.image_dir / f"confusion_matrix_epoch_{epoch + 1:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return path
