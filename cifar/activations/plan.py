"""Decide whether a phase trains on cached activations, and fill the cache when it does.

With ``cache="auto"`` the frozen prefix is run once per image and cached whenever that is
exact: no augmentation, or per-image augmentation drawn as a fixed set of
``data.augment.cached_views`` views; and something frozen at the input side. The phase then
trains the tail (sharing its layers with the full model) on the cached activations, in the
same batch order as the image pipeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cifar.activations.dataset import make_feature_dataset
from cifar.activations.engines import Engine, choose_engine
from cifar.activations.split import CannotSplit, ModelSplit, split_model
from cifar.activations.store import ActivationCache, array_digest, weights_digest
from cifar.array_cache import release_pages
from cifar.data.augment import Augmenter
from cifar.data.order import VIEW_STREAM, stream_key
from cifar.data.pipeline import prepare_images

# Part of every activation-cache key: caches written before per-epoch stateless augmentation
# hold views drawn by another RNG and must not be reused.
VIEWS_RNG = "stateless-v1"
CHUNK = 64  # images per extraction call


@dataclass
class PhaseInputs:
    """What one phase fits: a model (full, or a tail sharing its layers) and its datasets."""

    model: keras.Model
    train: tf.data.Dataset
    val: tf.data.Dataset
    description: str
    cached: bool = False
    arrays: tuple[np.ndarray, ...] = ()  # the cached activations the datasets read

    def release(self) -> None:
        """Drop the cached activations' pages from memory once the phase is over."""
        release_pages(*self.arrays)


class ActivationPlanner:
    """Builds each phase's :class:`PhaseInputs`, caching frozen activations where exact.

    Args:
        config: the run's :class:`~cifar.config.TrainConfig`.
        image_size: the model's input size.
        cache_dir: folder of the activation cache (shared between runs).
        log: where progress lines go.
        multiworker: several workers train (the cache is then off).

    Example:
        >>> planner = ActivationPlanner(config, 160, "runs/.cache")  # doctest: +SKIP
        >>> inputs = planner.phase_inputs(model, datasets, "finetune", 0, 10)  # doctest: +SKIP
    """

    def __init__(
        self,
        config: Any,
        image_size: int,
        cache_dir: str | Path,
        log: Callable[[str], None] = print,
        multiworker: bool = False,
    ):
        self.config = config
        self.image_size = image_size
        self.cache_dir = Path(cache_dir)
        self.log = log
        self.multiworker = multiworker
        self._engine: tuple[str, Engine] | None = None
        self.used_engine: str | None = None  # what extracted this phase's cache (None: reused)

    def refusal(self) -> str | None:
        """Why no phase of this run can train on cached activations (None: some may)."""
        if self.config.cache == "off":
            return "cache = 'off'"
        if self.multiworker:
            # Each worker would extract every activation (the cache is per machine) and race
            # the others for the cache file; the speed-up is not worth a second code path.
            return "several workers train it"
        augment = self.config.data.augment
        if augment.enabled and augment.mixes_batches:
            return "MixUp/CutMix mix whole batches"
        if augment.enabled and not augment.cached_views:
            return (
                "training images are augmented, so the frozen layers see different inputs every "
                "epoch (set data.augment.cached_views to cache a fixed set of views)"
            )
        return None

    def phase_inputs(
        self, model: keras.Model, datasets: Any, phase_name: str, first_epoch: int, epochs: int
    ) -> PhaseInputs:
        """The full model on images, or its tail on cached activations, for global epochs
        ``first_epoch .. first_epoch + epochs - 1`` of ``datasets`` (a trainer's Datasets)."""
        d = datasets
        plain = PhaseInputs(model, d.train_epochs(first_epoch, epochs), d.val, "off")
        why = self.refusal()
        split = None
        if why is None:
            try:
                split = split_model(model)
            except CannotSplit as exc:
                why = str(exc)
            else:
                why = None if split else "no frozen layers at the input side"
        if why is not None:
            if self.config.cache != "off":
                self.log(f"cache: off for phase {phase_name!r}: {why}")
            return plain
        augment = self.config.data.augment
        views = augment.cached_views if augment.enabled else 1
        n_cls, bs, seed = d.data.num_classes, self.config.data.batch_size, self.config.seed
        prefix = weights_digest(split.prefix)  # hashed once: both splits depend on it
        self.used_engine = None
        train_acts = self.activations(split, prefix, d.data, "train", d.train_idx, views)
        val_acts = self.activations(split, prefix, d.data, "val", d.val_idx, 1)
        y_train, y_val = d.data.y_train[d.train_idx], d.data.y_train[d.val_idx]
        train = make_feature_dataset(
            train_acts, y_train, n_cls, bs, True, seed, views, first_epoch, epochs
        )
        val = make_feature_dataset(val_acts, y_val, n_cls, bs)
        description = f"activations of {split.cut} {split.activation_shape}"
        if augment.enabled:
            description += f", {views} augmented views per training image"
        if self.used_engine:
            description += f", extracted by {self.used_engine}"
        self.log(f"cache: phase {phase_name!r} trains on cached {description}")
        return PhaseInputs(
            split.tail, train, val, description, cached=True, arrays=(train_acts, val_acts)
        )

    def activations(
        self, split: ModelSplit, prefix: str, data: Any, name: str, rows: np.ndarray, views: int
    ) -> np.ndarray:
        """Activations at the cut for training images ``rows`` (``views`` > 1: augmented
        views), read from the cache or computed once and stored there."""
        cache = ActivationCache(self.cache_dir, log=self.log)
        augment = self.config.data.augment
        key = cache.make_key(
            images=data.content_digest(),
            rows=array_digest(np.asarray(rows)),
            rng=VIEWS_RNG,
            prefix=prefix,
            model=self.config.model.name,
            input_size=self.image_size,
            cut=split.cut,
            keras=keras.__version__,
            views=json.dumps(asdict(augment) if views > 1 else None, sort_keys=True),
            seed=self.config.seed if views > 1 else 0,
        )
        n = len(rows)

        def write(out: np.ndarray) -> None:
            self.extract(split, data, name, rows, views, out)

        return cache.get_or_build(
            key,
            (views * n, *split.activation_shape),
            write,
            dtype=self.config.cache_dtype,
            label=f"{name} {split.cut} activations",
        )

    def extract(
        self,
        split: ModelSplit,
        data: Any,
        name: str,
        rows: np.ndarray,
        views: int,
        out: np.ndarray,
    ) -> tuple[Engine, float]:
        """Run the prefix over every view of ``rows`` into ``out``: (engine, seconds).

        The seconds exclude choosing (and converting for) the engine, done once per cut.
        """
        augment = self.config.data.augment
        n = len(rows)

        def images(view: int, start: int) -> np.ndarray:
            augmenter = Augmenter(augment, seed=self.config.seed) if views > 1 else None
            chunk = data.x_train[rows[start : start + CHUNK]]
            key = stream_key(self.config.seed, VIEW_STREAM, view, start)
            return prepare_images(chunk, self.image_size, augmenter, key).numpy()

        engine = self._engine_for(split, images(0, 0))
        t0, done, total = time.perf_counter(), 0, views * n
        for view in range(views):
            for start in range(0, n, CHUNK):
                a = engine.run(images(view, start))
                out[view * n + start : view * n + start + len(a)] = a
                done += len(a)
                if done % (total // 5 or 1) < len(a) and done < total:
                    rate = done / (time.perf_counter() - t0)
                    self.log(f"cache: {name} activations {done}/{total} ({rate:.0f} images/s)")
            # Neither the photos read nor the activations written are needed again before
            # training reads them back: keep them out of the resident set (peak memory).
            if isinstance(out, np.memmap):
                out.flush()
            release_pages(data.x_train, out)
        seconds = time.perf_counter() - t0
        self.used_engine = engine.name
        self.log(
            f"cache: {name} activations for {total} images in {seconds:.1f} s "
            f"({total / seconds:.0f} images/s, {engine.name})"
        )
        return engine, seconds

    def _engine_for(self, split: ModelSplit, sample: np.ndarray) -> Engine:
        # One choice per cut: the train and validation caches of a phase share it.
        if self._engine is None or self._engine[0] != split.cut:
            engine = choose_engine(split.prefix, sample, self.config.cache_engine, self.log)
            self._engine = (split.cut, engine)
        return self._engine[1]
