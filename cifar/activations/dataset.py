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
    views: int = 1,
) -> tf.data.Dataset:
    """Batches of (float32 activations, one-hot labels) read from a (memory-mapped) array.

    Indices are shuffled exactly as :func:`cifar.data.pipeline.make_dataset` shuffles images
    (same seed and buffer over the same number of elements), so a cached phase sees the
    same batches as the plain one; rows are gathered per batch, so a memory-mapped cache is
    never copied whole into memory.

    With ``views`` > 1, ``features`` holds ``views`` blocks of ``len(labels)`` rows (view
    ``v`` of image ``i`` at row ``v * len(labels) + i``) and every epoch draws one view per image
    (seeded, different each epoch).
    """
    if len(features) != views * len(labels):
        raise ValueError(f"{len(features)} activations but {len(labels)} labels x {views} views")
    labels = labels.astype(np.int32)
    shape = tuple(features.shape[1:])
    n = len(labels)
    ds = tf.data.Dataset.range(n)
    if training:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if views > 1:
        draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, draws).map(lambda i, r: i + n * (r % views))
    ds = ds.batch(batch_size)

    def gather(idx: np.ndarray):
        return np.asarray(features[idx], dtype=np.float32), labels[idx % n]

    def load(idx):
        x, y = tf.numpy_function(gather, [idx], (tf.float32, tf.int32), stateful=False)
        x.set_shape((None, *shape))
        y.set_shape((None,))
        return x, tf.one_hot(y, num_classes)

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
