"""tf.data over cached activations, in the same seeded order as the image pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def make_feature_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    batch_size: int = 32,
    training: bool = False,
    seed: int = 42,
) -> tf.data.Dataset:
    """Batches of (float32 activations, one-hot labels) read from a (memory-mapped) array.

    Indices are shuffled exactly as :func:`cifar.data.pipeline.make_dataset` shuffles images
    (same seed and buffer over the same number of elements), so a cached phase sees the
    same batches as the plain one; rows are gathered per batch, so a memory-mapped cache is
    never copied whole into memory.
    """
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} activations but {len(labels)} labels")
    labels = labels.astype(np.int32)
    shape = tuple(features.shape[1:])
    ds = tf.data.Dataset.range(len(labels))
    if training:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def gather(idx: np.ndarray):
        return np.asarray(features[idx], dtype=np.float32), labels[idx]

    def load(idx):
        x, y = tf.numpy_function(gather, [idx], (tf.float32, tf.int32), stateful=False)
        x.set_shape((None, *shape))
        y.set_shape((None,))
        return x, tf.one_hot(y, num_classes)

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
