"""Run configuration as plain dataclasses; defaults reproduce the reference recipe.

Experiment files (TOML, in ``experiments/``) and ``--set key=value`` overrides are applied on
top of these defaults and validated before anything trains: an unknown key, a value of the wrong
type or out of range gives one :class:`~cifar.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cifar.data.augment import AugmentConfig
from cifar.data.duplicates import DUPLICATE_POLICIES, NEAR_COPY_POLICIES
from cifar.errors import ConfigError
from cifar.phases import Phase, reference_phases

# What cifar.distributed.make_strategy builds for each name is decided there.
STRATEGY_NAMES = ("default", "mirrored", "multiworker")


@dataclass
class DataConfig:
    """Where the images come from and how they are batched.

    Args:
        dataset: ``"auto"`` (CIFAR-10 without ``data_dir``, else recognised from the folder),
            ``"cifar10"`` or ``"folder"`` (an image folder, see :mod:`cifar.data.folder_layout`).
        data_dir: local ``cifar-10-batches-py`` folder or image folder; None uses
            ``$CIFAR10_DIR`` and then the Keras download of CIFAR-10.
        val_fraction: stratified share of the training set held out for early stopping (unless
            an image folder brings its own validation folder).
        test_fraction: share of each class held out as the test set for an image folder with
            neither a test nor a validation folder.
        skip_bad_images: train without unreadable images of an image folder (listed in a
            warning) instead of stopping with the list.
        duplicates: identical files of an image folder: ``"drop"`` keeps one copy of a photo
            filed twice in one class (a test copy over a training one) and leaves out every
            copy of a photo filed under two classes; ``"error"`` refuses them; ``"keep"`` does
            not look.
        near_copies: photos that are one picture resized, recompressed, cropped or mirrored
            (perceptual hash): ``"group"`` keeps each group inside one split and drops the
            training copies of given test/validation photos; ``"report"`` only reports those;
            ``"off"`` does not hash.
        exclude: a text file of photos (paths relative to the image folder) to leave out, e.g.
            written by ``cifar audit --write-exclude``.
        class_weight: ``"balanced"`` weights each class's loss by ``n / (classes * count)``
            (scikit-learn's rule) for imbalanced data; None weights every image alike.
        batch_size: images per training step.
        stored_size: decode image-folder photos once at this size (short side, centre
            square) instead of the input size, so random-resized crops
            (``augment.crop_scale``) keep full resolution; validation, test and prediction
            see the whole stored square resized to the input. None stores at the input size.
        train_subset: use about this many training images (stratified); None uses all.
        test_subset: evaluate on about this many test images; None uses all.
        augment: training-only augmentation.
    """

    dataset: str = "auto"
    data_dir: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    skip_bad_images: bool = False
    duplicates: str = "drop"
    near_copies: str = "group"
    exclude: str | None = None
    class_weight: str | None = None
    batch_size: int = 32
    stored_size: int | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    """Which registered model to build and with what options.

    Args:
        name: a name from the model registry (``cifar.models.list_models()``).
        input_size: square input size; None uses the model's default (160 or 32).
        weights: ``"imagenet"`` (``$MOBILENETV2_WEIGHTS`` for mobilenet_v2, else
            ``$KERAS_WEIGHTS_DIR``, else the Keras download), a folder of Keras's official
            weight files (hash-checked), a path to an ``.h5`` weights file, or None for random
            initialisation.
        head_units: width of the Dense layer of the classification head; 0 leaves it out (a
            linear head); None = model default.
        dropout: dropout rate before the output layer; None = model default.
        eval_size: the square size the trained network is calibrated, evaluated and saved at
            (FixRes, see :mod:`cifar.eval_size`): None keeps ``input_size``; ``"auto"``
            chooses on the validation split among ``input_size`` and larger multiples of 32
            up to ``data.stored_size``; a number fixes it. The weights are the same at every
            size, so only models ending in global pooling can change size.
    """

    name: str = "mobilenet_v2"
    input_size: int | None = None
    weights: str | None = "imagenet"
    head_units: int | None = None
    dropout: float | None = None
    eval_size: int | str | None = None

    def options(self) -> dict[str, Any]:
        """Keyword options for :func:`cifar.models.create_model` (unset ones left out)."""
        extra = {"head_units": self.head_units, "dropout": self.dropout}
        return {"weights": self.weights, **{k: v for k, v in extra.items() if v is not None}}


@dataclass
class CallbacksConfig:
    """Which of the built-in callbacks run, plus user callbacks by import path.

    Args:
        tensorboard: write TensorBoard scalars (per epoch, phase and learning rate).
        confusion_matrix_every: log the validation confusion matrix every N epochs (0 = off).
        progress: print one line per epoch with the ETA of the run.
        extra: ``"package.module:ClassName"`` callbacks constructed without arguments.
    """

    tensorboard: bool = True
    confusion_matrix_every: int = 1
    progress: bool = True
    extra: list[str] = field(default_factory=list)


@dataclass
class CalibrationConfig:
    """What happens after the last phase: calibrated confidence and the "not sure" threshold.

    Args:
        temperature: fit a temperature on the validation split (never the test set) and fold
            it into the final Dense layer of ``best_model.keras``, so every export gives
            calibrated probabilities; False keeps the trained probabilities.
        min_confidence: the "not sure" threshold; None chooses it on the calibrated validation
            probabilities (:func:`cifar.calibration.choose_min_confidence`).
        target_accuracy: the accuracy the accepted validation predictions must reach when the
            threshold is chosen; None halves the validation error rate.
        ood_dir: an image folder of other things (classes the model does not know) for the
            out-of-distribution AUROC; None uses CIFAR-10 from ``$CIFAR10_DIR`` for a photo
            run (never downloaded) and nothing for a CIFAR-10 run.
        top_losses: how many highest-loss test images the run records with heatmaps (0: none).
    """

    temperature: bool = True
    min_confidence: float | None = None
    target_accuracy: float | None = None
    ood_dir: str | None = None
    top_losses: int = 12


@dataclass
class TrainConfig:
    """Everything a run needs; ``TrainConfig()`` is the reference MobileNetV2 recipe.

    Args:
        name: run name, used in ``runs/<name>-<timestamp>/``.
        seed: seeds Python, NumPy, TensorFlow and Keras.
        runs_dir: parent folder of run directories.
        cache: ``"auto"`` uses cached frozen activations when exact, ``"off"`` never does.
        cache_dtype: storage type of cached activations (``float16`` halves memory and disk).
        cache_engine: what runs the frozen prefix that fills the cache: ``"auto"`` (the
            fastest of LiteRT, ONNX Runtime and TensorFlow whose output is within float16
            rounding of TensorFlow's), or ``"litert"``, ``"onnxruntime"``, ``"tensorflow"``.
        steps_per_execution: training steps per call of the train function; 0 chooses (64 on
            cached activations, 1 on images), rounded down to a divisor of the epoch's steps.
        jit_compile: XLA-compile the train step (Keras ``jit_compile``).
        report: write plots, TensorBoard images and REPORT.md/HTML when the run ends.
        tta: also measure test-time augmentation over this many views of each test image
            (1: off); the headline stays the single pass an export delivers.
        strategy: ``"default"`` (one device), ``"mirrored"`` (every GPU of this machine) or
            ``"multiworker"`` (one process per machine, cluster from ``TF_CONFIG``).
    """

    name: str = "mobilenetv2_finetune"
    seed: int = 42
    runs_dir: str = "runs"
    cache: str = "auto"
    cache_dtype: str = "float16"
    cache_engine: str = "auto"
    steps_per_execution: int = 0
    jit_compile: bool = False
    report: bool = True
    tta: int = 1
    strategy: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    phases: list[Phase] = field(default_factory=reference_phases)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what ``config.json`` in the run directory holds)."""
        return asdict(self)

    def validate(self) -> TrainConfig:
        """Check ranges and names; raise ConfigError naming the first bad key."""
        from callbacks.extra import callback_class
        from cifar.activations.engines import ENGINES
        from cifar.models import list_models
        from cifar.models.registry import get_spec

        _check(self.seed >= 0, "seed", "must be >= 0")
        _check(self.cache in ("auto", "off"), "cache", "must be 'auto' or 'off'")
        _check(
            self.cache_engine in ENGINES,
            "cache_engine",
            f"must be one of {', '.join(ENGINES)}",
        )
        _check(1 <= self.tta <= 12, "tta", "must be between 1 (off) and 12 views")
        _check(self.steps_per_execution >= 0, "steps_per_execution", "must be >= 0 (0: automatic)")
        _check(
            self.strategy in STRATEGY_NAMES,
            "strategy",
            f"must be one of {', '.join(STRATEGY_NAMES)}",
        )
        _check(
            self.cache_dtype in ("float16", "float32"), "cache_dtype", "must be float16 or float32"
        )
        _check(
            self.data.dataset in ("auto", "cifar10", "folder"),
            "data.dataset",
            "must be 'auto', 'cifar10' or 'folder'",
        )
        _check(0 < self.data.val_fraction < 1, "data.val_fraction", "must be between 0 and 1")
        _check(0 < self.data.test_fraction < 1, "data.test_fraction", "must be between 0 and 1")
        _check(
            self.data.duplicates in DUPLICATE_POLICIES,
            "data.duplicates",
            f"must be one of {', '.join(DUPLICATE_POLICIES)}",
        )
        _check(
            self.data.near_copies in NEAR_COPY_POLICIES,
            "data.near_copies",
            f"must be one of {', '.join(NEAR_COPY_POLICIES)}",
        )
        _check(
            self.data.exclude is None or bool(str(self.data.exclude).strip()),
            "data.exclude",
            "must be a file path (or unset)",
        )
        _check(
            self.data.class_weight in (None, "balanced"),
            "data.class_weight",
            "must be 'balanced' or unset",
        )
        _check(
            not (self.data.class_weight and self.strategy == "multiworker"),
            "data.class_weight",
            "not supported with strategy 'multiworker' (its train step has no sample weights)",
        )
        _check(self.data.batch_size >= 1, "data.batch_size", "must be >= 1")
        stored = self.data.stored_size
        _check(stored is None or stored >= 32, "data.stored_size", "must be >= 32 or unset")
        for key in ("train_subset", "test_subset"):
            value = getattr(self.data, key)
            _check(value is None or value >= 10, f"data.{key}", "must be >= 10 or unset")
        aug = self.data.augment
        _check(aug.crop_padding >= 0, "data.augment.crop_padding", "must be >= 0")
        _check(aug.cached_views >= 0, "data.augment.cached_views", "must be >= 0")
        _check(0 <= aug.crop_scale < 1, "data.augment.crop_scale", "must be in [0, 1)")
        _check(aug.crop_aspect >= 1, "data.augment.crop_aspect", "must be >= 1")
        _check(0 <= aug.color < 1, "data.augment.color", "must be in [0, 1)")
        _check(0 <= aug.randaugment <= 1, "data.augment.randaugment", "must be in [0, 1]")
        _check(aug.mixup >= 0 and aug.cutmix >= 0, "data.augment.mixup", "alphas must be >= 0")
        known = list_models()
        _check(
            self.model.name in known,
            "model.name",
            f"unknown model {self.model.name!r}; known models: {', '.join(known)}",
        )
        size = self.model.input_size
        _check(size is None or size >= 32, "model.input_size", "must be >= 32")
        units = self.model.head_units
        _check(units is None or units >= 0, "model.head_units", "must be >= 0 (0: a linear head)")
        drop = self.model.dropout
        _check(drop is None or 0 <= drop < 1, "model.dropout", "must be in [0, 1)")
        ev = self.model.eval_size
        _check(
            ev is None or ev == "auto" or (isinstance(ev, int) and ev >= 32),
            "model.eval_size",
            f"must be 'auto', a size >= 32 or unset, got {ev!r}",
        )
        _check(
            ev is None or get_spec(self.model.name).any_input_size,
            "model.eval_size",
            f"{self.model.name}'s weights depend on its input size (a Flatten head), so it "
            "cannot be evaluated at another size: leave eval_size unset",
        )
        _check(bool(self.phases), "phases", "at least one phase is required")
        names = set()
        for i, phase in enumerate(self.phases):
            phase.validate(f"phases.{i}")
            _check(
                phase.name not in names, f"phases.{i}.name", f"duplicate phase name {phase.name!r}"
            )
            names.add(phase.name)
        _check(
            self.callbacks.confusion_matrix_every >= 0,
            "callbacks.confusion_matrix_every",
            "must be >= 0",
        )
        for i, path in enumerate(self.callbacks.extra):
            callback_class(path, f"callbacks.extra.{i}")  # imported now: a typo fails here
        cal = self.calibration
        _check(
            cal.min_confidence is None or 0 <= cal.min_confidence <= 1,
            "calibration.min_confidence",
            "must be in [0, 1] or unset (chosen on validation)",
        )
        _check(
            cal.target_accuracy is None or 0 < cal.target_accuracy <= 1,
            "calibration.target_accuracy",
            "must be in (0, 1] or unset (half the validation error rate)",
        )
        _check(
            cal.ood_dir is None or bool(str(cal.ood_dir).strip()),
            "calibration.ood_dir",
            "must be a folder path (or unset)",
        )
        _check(cal.top_losses >= 0, "calibration.top_losses", "must be >= 0")
        return self


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"invalid configuration: {key}: {message}")


# --------------------------------------------------------------------------- loading


def load_config(
    source: str | Path | dict | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Validated TrainConfig: defaults, then an experiment (name, file or dict), then overrides."""
    data: dict[str, Any] = {}
    if isinstance(source, dict):
        data = source
    elif source is not None:
        data = read_experiment(source)
    for item in overrides or []:
        apply_override(data, item)
    config = from_dict(TrainConfig, data, "")
    return config.validate()


def read_experiment(source: str | Path) -> dict[str, Any]:
    """Parse an experiment TOML given as a path or as a name in the ``experiments/`` package."""
    from experiments import experiment_path

    path = experiment_path(source)
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as TOML, else taken as a string)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. data.batch_size=64")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if raw.strip().lower() in ("none", "null"):
        value = None
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if part == "phases" and "phases" not in node:
            node["phases"] = [asdict(p) for p in reference_phases()]
        if isinstance(node, list):
            node = _list_item(node, part, key)
        else:
            node = node.setdefault(part, [] if nxt.isdigit() else {})
    last = parts[-1]
    if isinstance(node, list):
        index = _index(node, last, key)
        node[index] = value
    else:
        node[last] = value


def _index(seq: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(seq):
        raise ConfigError(f"--set {key}: {part!r} is not an index of a list of {len(seq)} items")
    return int(part)


def _list_item(seq: list, part: str, key: str) -> Any:
    return seq[_index(seq, part, key)]


def from_dict(cls: type, data: Any, prefix: str) -> Any:
    """Recursively build dataclass ``cls`` from ``data``, checking keys and types."""
    if dataclasses.is_dataclass(data) and isinstance(data, cls):
        return data
    where = prefix or "configuration"
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration: {where}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"invalid configuration: unknown key {_join(prefix, unknown[0])!r} "
            f"(known keys: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, _join(prefix, name))
    return cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"invalid configuration: {key}: expected a list, got {value!r}")
        return [_convert(item_tp, v, f"{key}.{i}") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if isinstance(value, bool) != (tp is bool) or not isinstance(value, tp):
            raise ConfigError(
                f"invalid configuration: {key}: expected {tp.__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
        return value
    return value
