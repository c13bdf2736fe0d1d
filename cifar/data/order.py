"""Which rows every training batch holds, as a pure function of (seed, epoch).

Both the image pipeline (:mod:`cifar.data.pipeline`) and the cached-activation pipeline
(:mod:`cifar.activations.dataset`) draw their batches from :func:`index_batches`, so a cached
phase sees exactly the batches the plain phase would. Nothing here keeps random state between
epochs: a pipeline built for ``first_epoch = k`` in a fresh process yields exactly the batches
that epoch ``k`` of an uninterrupted run yields, which is what makes a resumed run the same run.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Independent random streams derived from the run's seed (stateless_fold_in keys).
ORDER_STREAM, AUGMENT_STREAM, VIEW_STREAM = 0, 1, 2


def stream_key(seed: int, stream: int, *path: tf.Tensor | int) -> tf.Tensor:
    """A stateless-RNG key for ``stream`` of ``seed``, folded with ``path`` (epoch, step...)."""
    key = tf.constant([seed, stream], dtype=tf.int64)
    for part in path:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(part, tf.int64))
    return key


def epoch_permutation(n: int, seed: int, epoch: tf.Tensor | int) -> tf.Tensor:
    """The shuffled order of ``n`` rows in ``epoch`` (int64 positions 0..n-1)."""
    noise = tf.random.stateless_uniform([n], seed=stream_key(seed, ORDER_STREAM, epoch))
    return tf.argsort(noise, stable=True)


def index_batches(
    indices: np.ndarray,
    batch_size: int,
    training: bool = False,
    seed: int = 42,
    first_epoch: int = 0,
    epochs: int = 1,
) -> tf.data.Dataset:
    """Batches of ``(rows, key)``: row indices into the source array, and a per-batch RNG key.

    With ``training``, every epoch ``e`` in ``first_epoch .. first_epoch + epochs - 1`` is a
    fresh permutation of ``indices`` drawn from ``(seed, e)``, its batches following each
    other (fit it with ``steps_per_epoch = ceil(len(indices) / batch_size)``); ``key`` is
    ``(seed, epoch, step)`` folded into a stateless-RNG seed for per-batch augmentation.
    Without ``training``, one pass over ``indices`` in order.
    """
    rows = tf.constant(np.asarray(indices, dtype=np.int64))
    n = len(indices)
    if not training:
        ds = tf.data.Dataset.from_tensor_slices(rows).batch(batch_size)
        return ds.map(lambda r: (r, tf.zeros([2], tf.int64)))

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.gather(rows, epoch_permutation(n, seed, epoch))
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return batches.enumerate().map(
            lambda step, r: (r, stream_key(seed, AUGMENT_STREAM, epoch, step))
        )

    epochs_ds = tf.data.Dataset.range(first_epoch, first_epoch + epochs)
    # flat_map hides the length; Keras uses it to size epochs and progress bars.
    total = epochs * steps_per_epoch(n, batch_size)
    return epochs_ds.flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(total))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one epoch of ``n`` rows (the last one may be smaller)."""
    return -(-n // batch_size)
