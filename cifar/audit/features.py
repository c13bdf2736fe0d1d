"""Frozen backbone features of every photo, and of its mirror, cached on disk.

The backbone (MobileNetV2 with ImageNet weights by default, built by the project's model
factory and weights rules) runs on the decoded store in batches, once on each photo and once on
its horizontal mirror, and its globally pooled output is kept as ``(N, 2, D) float32`` in the
:class:`~cifar.array_cache.ArrayCache`, keyed by the store's digest, the backbone, its weights,
the size and :data:`FEATURE_RULE`. A second audit of the same folder reads them back. Only one
batch of float images is in memory at a time.

:func:`pooled` turns the pair into the vector the checks use: the mean of the photo's and the
mirror's features (a mirror-invariant description: a mirrored copy gets the same vector, and
the out-of-fold classifier sees the test-time-augmented feature), L2-normalised.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from cifar.array_cache import ArrayCache
from cifar.errors import ConfigError

# Bump when what is stored changes (layers, pooling, the mirror), so old caches are not reused.
FEATURE_RULE = "scaling+backbone+gap; plain and mirrored/v1"
_BATCH = 32


def backbone_features(
    images: np.ndarray,
    digest: str,
    cache_dir: Path,
    backbone: str = "mobilenet_v2",
    weights: str | None = "imagenet",
    engine: str = "auto",
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """``(N, 2, D) float32`` pooled features of ``images`` (uint8 N x S x S x 3) and mirrors.

    ``digest`` identifies the images (the store's sha256); ``engine`` is what runs the
    backbone (see :func:`cifar.activations.engines.choose_engine`).
    """
    import keras

    from cifar.activations.engines import choose_engine
    from cifar.activations.store import weights_digest
    from cifar.models.backbones import BACKBONES, build_backbone, scaling_layer

    if backbone not in BACKBONES:
        raise ConfigError(
            f"the audit needs a pretrained backbone (model.name), one of: {', '.join(BACKBONES)}; "
            f"got {backbone!r}"
        )
    size = int(images.shape[1])
    spec = BACKBONES[backbone]
    keras.utils.set_random_seed(0)  # random weights (weights = none) are then reproducible
    base = build_backbone(spec, size, weights)
    inputs = keras.Input((size, size, 3), name="image")
    scale = scaling_layer(spec)
    x = base(scale(inputs) if scale is not None else inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x))
    cache = ArrayCache(cache_dir, log=log)
    key = cache.make_key(
        images=digest,
        backbone=backbone,
        weights=weights_digest(base),
        size=size,
        rule=FEATURE_RULE,
    )
    shape = (len(images), 2, int(model.output_shape[-1]))
    label = f"{backbone} features at {size}x{size}"

    def write(out: np.ndarray) -> None:
        sample = np.asarray(images[: min(_BATCH, len(images))], dtype=np.float32)
        run = choose_engine(model, sample, engine, log).run
        for start in range(0, len(images), _BATCH):
            batch = np.asarray(images[start : start + _BATCH], dtype=np.float32)
            out[start : start + len(batch), 0] = _run(run, batch, len(sample))
            out[start : start + len(batch), 1] = _run(run, batch[:, :, ::-1], len(sample))
            done = start + len(batch)
            if done % (10 * _BATCH) == 0 or done == len(images):
                log(f"audit: features of {done}/{len(images)} photos")

    return cache.get_or_build(key, shape, write, dtype="float32", label=label)


def _run(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, size: int) -> np.ndarray:
    """``run`` on ``batch`` in chunks of at most ``size`` (a fixed-batch engine's limit)."""
    return np.concatenate([run(batch[i : i + size]) for i in range(0, len(batch), size)])


def pooled(features: np.ndarray, mirror: bool = True) -> np.ndarray:
    """``(N, D) float32`` L2-normalised vectors: plain and mirrored averaged, or plain only."""
    vectors = features.mean(axis=1) if mirror else np.asarray(features[:, 0])
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
