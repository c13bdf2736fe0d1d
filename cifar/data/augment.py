"""Training-only augmentation applied per batch inside the tf.data pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf


@dataclass
class AugmentConfig:
    """Which augmentations run on training batches (all off reproduces the reference recipe).

    Args:
        flip: random horizontal flip.
        crop_padding: pad by this many pixels (at the stored size: 32x32 for CIFAR-10, the
            model's input size for image folders) and randomly crop back (the classic CIFAR
            translate augmentation); 0 disables it.
        randaugment: apply KerasCV ``RandAugment`` with this magnitude (0..1); 0 disables it.
        mixup: KerasCV ``MixUp`` alpha; 0 disables it.
        cutmix: KerasCV ``CutMix`` alpha; 0 disables it.
        cached_views: with cached activations, draw this many augmented views of every
            training image once (seeded) and cache them all; each epoch then shows every image
            as one of its views, picked at random. 0 turns cached phases off when augmenting.
            Only per-image augmentations (flip, crops, colour, RandAugment) can be cached this
            way.
        crop_scale: random-resized crops (ImageNet's "Inception" crop): each training view is
            a crop covering between this share of the stored image's area and all of it, with
            an aspect ratio up to ``crop_aspect`` either way, resized to the input size. The
            crop always lies inside the stored image, so photos stored larger than the input
            (``data.stored_size``) give crops at full resolution. 0 disables it.
        crop_aspect: largest width/height (and height/width) ratio of a random-resized crop.
        color: strength of random brightness, contrast and saturation changes (each factor
            drawn in ``[1 - color, 1 + color]`` per image); 0 disables them.
    """

    flip: bool = False
    crop_padding: int = 0
    crop_scale: float = 0.0
    crop_aspect: float = 4 / 3
    color: float = 0.0
    randaugment: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    cached_views: int = 0

    @property
    def enabled(self) -> bool:
        """True when any augmentation is switched on."""
        return bool(
            self.flip
            or self.crop_padding
            or self.crop_scale
            or self.color
            or self.randaugment
            or self.mixup
            or self.cutmix
        )

    @property
    def mixes_batches(self) -> bool:
        """True when MixUp or CutMix combine images and labels across a batch."""
        return bool(self.mixup or self.cutmix)


class Augmenter:
    """Builds the per-batch augmentation functions for one ``AugmentConfig``.

    ``images`` are float32 batches in 0..255 at the stored size; ``labels`` are one-hot.
    Geometric and colour ops run before resizing (cheaper at 32x32); MixUp/CutMix mix labels.
    Flip and pad-and-crop draw from a stateless RNG keyed per batch (see
    :func:`cifar.data.order.index_batches`), so a batch's augmentation depends only on the
    seed, the epoch and the step; KerasCV's RandAugment, MixUp and CutMix keep their own
    random state, so they are seeded but not reproducible across an interrupted run.
    """

    def __init__(self, config: AugmentConfig, seed: int = 42):
        self.config = config
        self.seed = seed
        self._randaugment = None
        self._mixers = []
        if config.randaugment:
            import keras_cv

            self._randaugment = keras_cv.layers.RandAugment(
                value_range=(0, 255), magnitude=config.randaugment, seed=seed
            )
        if config.mixup or config.cutmix:
            import keras_cv

            if config.mixup:
                self._mixers.append(keras_cv.layers.MixUp(alpha=config.mixup, seed=seed))
            if config.cutmix:
                self._mixers.append(keras_cv.layers.CutMix(alpha=config.cutmix, seed=seed))

    def images(self, images: tf.Tensor, key: tf.Tensor, size: int | None = None) -> tf.Tensor:
        """Augment a float32 0..255 batch at its stored size.

        ``key`` is the batch's stateless-RNG seed (shape [2]); the same key gives the same
        flips and crops. With ``crop_scale``, the random-resized crops come out at ``size``
        (the model's input; default: the stored size); the other operations keep the size.
        """
        cfg = self.config
        if cfg.crop_scale:
            seed = tf.random.experimental.stateless_fold_in(key, 2)
            out = size or images.shape[1]
            images = random_resized_crop(images, out, cfg.crop_scale, cfg.crop_aspect, seed)
        if cfg.flip:
            seed = tf.random.experimental.stateless_fold_in(key, 0)
            flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=seed) < 0.5
            images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        if cfg.crop_padding:
            seed = tf.random.experimental.stateless_fold_in(key, 1)
            images = self._pad_and_crop(images, cfg.crop_padding, seed)
        if cfg.color:
            seed = tf.random.experimental.stateless_fold_in(key, 3)
            images = jitter_colour(images, cfg.color, seed)
        if self._randaugment is not None:
            images = tf.cast(self._randaugment(images, training=True), tf.float32)
        return images

    def mix(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """MixUp / CutMix on a batch with one-hot labels (no-op when both are off)."""
        for mixer in self._mixers:
            out = mixer({"images": images, "labels": labels}, training=True)
            images, labels = out["images"], out["labels"]
        return images, labels

    def _pad_and_crop(self, images: tf.Tensor, pad: int, seed: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(images)
        n, h, w = shape[0], shape[1], shape[2]
        padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        offsets = tf.random.stateless_uniform([n, 2], seed, 0, 2 * pad + 1, dtype=tf.int32)
        rows = offsets[:, 0:1] + tf.range(h)[None, :]
        cols = offsets[:, 1:2] + tf.range(w)[None, :]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        return tf.gather(images, cols, axis=2, batch_dims=1)


def crop_boxes(
    n: tf.Tensor | int, min_scale: float, max_aspect: float, seed: tf.Tensor
) -> tf.Tensor:
    """``n`` random crop boxes ``[y0, x0, y1, x1]`` (fractions of a square image), inside it.

    Each box covers a share of the area drawn uniformly in ``[min_scale, 1]`` with a log-uniform
    aspect ratio in ``[1 / max_aspect, max_aspect]``; a side that would leave the image is cut
    to fit, so every box lies within ``[0, 1]`` and its area is at most the drawn share.
    """
    u = tf.random.stateless_uniform([n, 4], seed=seed)
    area = min_scale + (1.0 - min_scale) * u[:, 0]
    log_ratio = (2.0 * u[:, 1] - 1.0) * tf.math.log(max_aspect)
    ratio = tf.exp(log_ratio)
    width = tf.minimum(tf.sqrt(area * ratio), 1.0)
    height = tf.minimum(tf.sqrt(area / ratio), 1.0)
    y0 = (1.0 - height) * u[:, 2]
    x0 = (1.0 - width) * u[:, 3]
    return tf.stack([y0, x0, y0 + height, x0 + width], axis=1)


def random_resized_crop(
    images: tf.Tensor, size: int, min_scale: float, max_aspect: float, seed: tf.Tensor
) -> tf.Tensor:
    """One random-resized crop per image of a square float batch, bilinear, at ``size``."""
    n = tf.shape(images)[0]
    boxes = crop_boxes(n, min_scale, max_aspect, seed)
    return tf.image.crop_and_resize(images, boxes, tf.range(n), (size, size), method="bilinear")


def jitter_colour(images: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """Per-image brightness, contrast and saturation factors in ``[1 - s, 1 + s]``; 0..255."""
    n = tf.shape(images)[0]
    f = 1.0 + strength * (2.0 * tf.random.stateless_uniform([n, 3, 1, 1, 1], seed=seed) - 1.0)
    x = images * f[:, 0]
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = mean + (x - mean) * f[:, 1]
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    x = grey + (x - grey) * f[:, 2]
    return tf.clip_by_value(x, 0.0, 255.0)
