"""The tf.data input pipeline: shuffle, batch, per-batch resize, one-hot, augment, prefetch."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cifar.data.augment import Augmenter


def resize_images(images: tf.Tensor, size: int) -> tf.Tensor:
    """Bilinear resize of a float32 batch to ``size`` squared (no-op at the stored size)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return tf.image.resize(images, (size, size), method="bilinear")


def prepare_images(
    images: tf.Tensor, image_size: int, augmenter: Augmenter | None = None
) -> tf.Tensor:
    """uint8 batch -> float32 0..255 at ``image_size``, augmented first when given an augmenter."""
    x = tf.cast(images, tf.float32)
    if augmenter is not None:
        x = augmenter.images(x)
    return resize_images(x, image_size)


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
) -> tf.data.Dataset:
    """Batches of (float32 images 0..255 at ``image_size``, one-hot labels).

    Shuffling (seeded, reshuffled every epoch) and augmentation happen only when ``training``.
    Images are kept as uint8 at their stored size and resized one batch at a time, so memory
    stays at the size of the source arrays whatever ``image_size`` is.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    use_aug = training and augmenter is not None and augmenter.config.enabled

    def prepare(x, y):
        x = prepare_images(x, image_size, augmenter if use_aug else None)
        y = tf.one_hot(y, num_classes) if one_hot else y
        if use_aug and one_hot:
            x, y = augmenter.mix(x, y)
        return x, y

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)
