"""Heatmaps from the gradients of one class score at a feature map (the Grad-CAM family).

Both methods weigh the feature map ``A`` (h x w x k) by the gradient ``G`` of the class's
score with respect to it, keep the positive part and scale it to [0, 1]:

- ``hirescam`` (Draelos & Carin 2020), the default: ``G * A`` element-wise, summed over
  channels. Behind a GlobalAveragePooling head (every transfer model of the registry) ``G`` is
  the same at every position, so it equals Grad-CAM exactly; behind a Flatten head (the custom
  CNN) it keeps *where* the head looks, which Grad-CAM averages away. On the quadrant test of
  tests/test_explain.py (Flatten head) HiResCAM puts >= 60% of the mass in the right quadrant
  on 99% of images, Grad-CAM on 0%.
- ``gradcam`` (Selvaraju et al. 2017): one weight per channel, the mean of ``G`` over space.

The score is the class's logit minus the mean logit: not the probability, whose gradient
vanishes as the model becomes sure (``p (1 - p)``) and empties the map of exactly the confident
predictions one wants explained; and centred, because softmax ignores whatever is added to all
logits alike, so that part is no evidence for any class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cifar.explain.split import FeatureSplit

METHODS = ("hirescam", "gradcam")
DEFAULT_METHOD = "hirescam"


def class_heatmaps(
    split: FeatureSplit,
    images: np.ndarray,
    classes: int | Sequence[int] | np.ndarray | None = None,
    method: str = DEFAULT_METHOD,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps at the feature map's resolution, and the class probabilities, of one batch.

    Args:
        split: the model cut at its feature map (:func:`cifar.explain.split.split_at_feature_map`).
        images: float32 N x S x S x 3, raw 0-255 RGB at the model's input size.
        classes: the class to explain, one for all or one per image (default: each image's
            most probable class).
        method: one of ``METHODS``.

    Returns:
        ``(heatmaps, probabilities)``: float32 N x h x w in [0, 1] (all zero when no location
        raises the class score) and float32 N x C.
    """
    import tensorflow as tf

    if method not in METHODS:
        raise ValueError(f"unknown heatmap method {method!r}; known: {', '.join(METHODS)}")
    maps = split.features(tf.convert_to_tensor(images, tf.float32), training=False)
    maps = tf.cast(maps, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(maps)
        logits, probabilities = split.scores(maps)
        if classes is None:
            chosen = tf.argmax(logits, axis=-1, output_type=tf.int32)
        else:
            chosen = tf.broadcast_to(tf.constant(classes, tf.int32), tf.shape(logits)[:1])
        centred = logits - tf.reduce_mean(logits, axis=-1, keepdims=True)
        score = tf.gather(centred, chosen, axis=1, batch_dims=1)
    grads = tape.gradient(score, maps)
    heatmaps = _combine(maps, grads, method)
    return normalise(heatmaps.numpy()), probabilities.numpy().astype(np.float32)


def _combine(maps, grads, method: str):
    """N x h x w maps before normalisation: the method's weighting of channels by gradients."""
    import tensorflow as tf

    if method == "hirescam":
        return tf.reduce_sum(grads * maps, axis=-1)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # gradcam
    return tf.reduce_sum(weights * maps, axis=-1)


def normalise(heatmaps: np.ndarray) -> np.ndarray:
    """Positive part of each N x h x w map scaled to a maximum of 1 (all-zero maps stay zero)."""
    positive = np.maximum(np.asarray(heatmaps, np.float32), 0.0)
    peak = positive.reshape(len(positive), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(positive, peak, out=np.zeros_like(positive), where=peak > 0)


def upsample(heatmaps: np.ndarray, size: int) -> np.ndarray:
    """N x h x w maps resized (bilinear) to N x size x size, kept in [0, 1]."""
    import tensorflow as tf

    resized = tf.image.resize(np.asarray(heatmaps, np.float32)[..., None], (size, size))
    return np.clip(resized.numpy()[..., 0], 0.0, 1.0)
