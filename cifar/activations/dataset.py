"""tf.data over cached activations, in the same (seed, epoch) order as the image pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cifar.data.order import VIEW_STREAM, index_batches
from cifar.data.pipeline import gather_rows


def make_feature_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    batch_size: int = 32,
    training: bool = False,
    seed: int = 42,
    views: int = 1,
    first_epoch: int = 0,
    epochs: int = 1,
) -> tf.data.Dataset:
    """Batches of (float32 activations, one-hot labels) read from a (memory-mapped) array.

    Rows are ordered by :func:`cifar.data.order.index_batches` exactly as
    :func:`cifar.data.pipeline.make_dataset` orders images (same seed, epochs and number of
    rows), so a cached phase sees the same batches as the plain one; rows are gathered per
    batch, so a memory-mapped cache is never copied whole into memory.

    With ``views`` > 1, ``features`` holds ``views`` blocks of ``len(labels)`` rows (view
    ``v`` of image ``i`` at row ``v * len(labels) + i``) and every epoch draws one view per
    image from ``(seed, epoch)``.
    """
    if len(features) != views * len(labels):
        raise ValueError(f"{len(features)} activations but {len(labels)} labels x {views} views")
    n = len(labels)
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))
    ds = index_batches(np.arange(n), batch_size, training, seed, first_epoch, epochs)

    def load(rows, key):
        if views > 1:
            draw_key = tf.random.experimental.stateless_fold_in(key, VIEW_STREAM)
            pick = tf.random.stateless_uniform(tf.shape(rows), draw_key, 0, views, dtype=tf.int64)
            rows_in_cache = rows + n * pick
        else:
            rows_in_cache = rows
        x = gather_rows(features, rows_in_cache, tf.float32)
        return x, tf.one_hot(tf.gather(label_table, rows), num_classes)

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
