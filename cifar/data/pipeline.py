"""The tf.data input pipeline: order, gather, per-batch resize, one-hot, augment, prefetch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cifar.data.augment import Augmenter
from cifar.data.order import index_batches


def resize_images(images: tf.Tensor, size: int) -> tf.Tensor:
    """Bilinear resize of a float32 batch to ``size`` squared (no-op at the stored size)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return tf.image.resize(images, (size, size), method="bilinear")


def prepare_images(
    images: tf.Tensor,
    image_size: int,
    augmenter: Augmenter | None = None,
    key: tf.Tensor | None = None,
) -> tf.Tensor:
    """uint8 batch -> float32 0..255 at ``image_size``, augmented first (with RNG ``key``)."""
    x = tf.cast(images, tf.float32)
    if augmenter is not None:
        x = augmenter.images(x, key, image_size)
    return resize_images(x, image_size)


def gather_rows(array: np.ndarray, rows: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """``array[rows]`` for a NumPy or memory-mapped array, read one batch at a time."""

    def take(idx: np.ndarray) -> np.ndarray:
        return np.asarray(array[idx], dtype=dtype.as_numpy_dtype)

    out = tf.numpy_function(take, [rows], dtype, stateful=False)
    out.set_shape((None, *array.shape[1:]))
    return out


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    image_size: int,
    batch_size: int = 32,
    training: bool = False,
    seed: int = 42,
    augmenter: Augmenter | None = None,
    one_hot: bool = True,
    *,
    indices: np.ndarray | None = None,
    first_epoch: int = 0,
    epochs: int = 1,
) -> tf.data.Dataset:
    """Batches of (float32 images 0..255 at ``image_size``, one-hot labels).

    ``images`` may be a memory-mapped array: only the rows of the current batch are read, and
    ``indices`` (default: all rows) selects a split without copying. With ``training``, the
    data set holds ``epochs`` epochs from ``first_epoch`` on, each shuffled by ``(seed,
    epoch)`` (see :func:`cifar.data.order.index_batches`; fit it with ``steps_per_epoch``), and
    augmentation is applied; without, one pass in order. Images are resized one batch at a
    time, so no resized copy of the data set ever exists.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    indices = np.arange(len(labels)) if indices is None else np.asarray(indices)
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))
    ds = index_batches(indices, batch_size, training, seed, first_epoch, epochs)
    use_aug = training and augmenter is not None and augmenter.config.enabled

    def prepare(rows, key):
        x = gather_rows(images, rows, tf.uint8)
        x = prepare_images(x, image_size, augmenter if use_aug else None, key)
        y = tf.gather(label_table, rows)
        y = tf.one_hot(y, num_classes) if one_hot else y
        if use_aug and one_hot:
            x, y = augmenter.mix(x, y)
        return x, y

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)
