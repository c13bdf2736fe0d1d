"""Freeze/unfreeze policies: which layers train in a phase (cf. Lightning's ``BaseFinetuning``).

A policy is an object with ``apply(model)``; phases name one (``"frozen_base"``,
``"unfreeze_last(50)"``, ``"all"``) or carry an instance, so users swap or subclass the policy
instead of editing the Trainer. Models expose their pretrained part as a layer named
``backbone``; BatchNormalization layers stay frozen by default even where the block trains,
as the Keras fine-tuning guide recommends.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import keras

from cifar.errors import ConfigError, ModelError

BACKBONE = "backbone"
TRAIN_BN = "train_bn"  # the suffix a description carries when BatchNorm trains too
_POLICIES: dict[str, Callable[..., FinetuningPolicy]] = {}


def register_policy(name: str) -> Callable[[type], type]:
    """Class decorator adding a policy under ``name`` (usable as ``name`` or ``name(arg)``)."""

    def decorate(cls: type) -> type:
        _POLICIES[name] = cls
        return cls

    return decorate


def get_policy(spec: str | FinetuningPolicy) -> FinetuningPolicy:
    """Resolve ``"frozen_base"``, ``"unfreeze_last(50)"``/``"unfreeze_last:50"`` or an instance.

    A trailing ``", train_bn"`` (as :meth:`FinetuningPolicy.describe` writes it into run
    records) sets ``train_bn``, so a recorded description resolves to the same policy.
    """
    if isinstance(spec, FinetuningPolicy):
        return spec
    match = re.fullmatch(
        rf"\s*([a-z_]+)\s*(?:[(:]\s*(\d+)\s*\)?)?\s*(,\s*{TRAIN_BN}\s*)?", str(spec)
    )
    if not match or match.group(1) not in _POLICIES:
        raise ConfigError(
            f"unknown trainable policy {spec!r}; known: "
            + ", ".join(f"{n}(N)" if n == "unfreeze_last" else n for n in sorted(_POLICIES))
        )
    name, arg, train_bn = match.groups()
    cls = _POLICIES[name]
    try:
        policy = cls(int(arg)) if arg is not None else cls()
    except TypeError as exc:
        raise ConfigError(f"trainable policy {spec!r}: {exc}") from exc
    if train_bn:
        policy.train_bn = True
    return policy


def backbone_of(model: keras.Model) -> keras.Model:
    """The model's pretrained base (the layer named ``backbone``)."""
    try:
        return model.get_layer(BACKBONE)
    except ValueError:
        raise ModelError(
            f"model {model.name!r} has no '{BACKBONE}' layer, so it has no pretrained base to "
            'freeze; use trainable = "all" for it'
        ) from None


class FinetuningPolicy:
    """Base class: sets ``layer.trainable`` flags on a model before a phase compiles it.

    Subclass and override :meth:`apply`; helper methods mirror Lightning's ``BaseFinetuning``.

    Example:
        >>> class UnfreezeTopConv(FinetuningPolicy):
        ...     def apply(self, model):
        ...         self.make_trainable(model)
        ...         base = backbone_of(model)
        ...         self.freeze(base.layers[:-3])
    """

    train_bn: bool = False

    def apply(self, model: keras.Model) -> None:
        """Set the trainable flags of ``model`` for this phase."""
        raise NotImplementedError

    def describe(self) -> str:
        """Short name for logs and run records, e.g. ``unfreeze_last(50), train_bn``."""
        return self.with_train_bn(type(self).__name__)

    def with_train_bn(self, name: str) -> str:
        """``name`` plus ``", train_bn"`` when this policy also trains BatchNorm layers."""
        return f"{name}, {TRAIN_BN}" if self.train_bn else name

    @staticmethod
    def make_trainable(model: keras.Model) -> None:
        """Mark every layer (recursively) trainable."""
        # Keras 3 does not propagate ``trainable`` into nested functional models; walk them.
        for layer in _walk(model):
            layer.trainable = True

    def freeze(self, layers: list[keras.layers.Layer]) -> None:
        """Freeze ``layers`` (recursively)."""
        for top in layers:
            for layer in _walk(top):
                layer.trainable = False

    def freeze_batchnorm(self, model: keras.Model) -> None:
        """Freeze every BatchNormalization layer unless ``train_bn`` is set."""
        if self.train_bn:
            return
        for layer in _walk(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False

    def __repr__(self) -> str:
        return self.describe()


@register_policy("frozen_base")
class FrozenBase(FinetuningPolicy):
    """Train everything except the pretrained base (phase 1 of the reference recipe)."""

    def apply(self, model: keras.Model) -> None:
        self.make_trainable(model)
        backbone_of(model).trainable = False

    def describe(self) -> str:
        return "frozen_base"  # the base is frozen whole: train_bn changes nothing here


@register_policy("unfreeze_last")
class UnfreezeLast(FinetuningPolicy):
    """Train the head and the last ``n`` layers of the base (BatchNorm stays frozen).

    Args:
        n: number of base layers (counted from the end of ``backbone.layers``) that train.
        train_bn: also train BatchNormalization layers inside those ``n`` layers.
    """

    def __init__(self, n: int = 50, train_bn: bool = False):
        if n < 1:
            raise TypeError(f"n must be >= 1, got {n}")
        self.n = n
        self.train_bn = train_bn

    def apply(self, model: keras.Model) -> None:
        self.make_trainable(model)
        base = backbone_of(model)
        if self.n > len(base.layers):
            raise ModelError(f"cannot unfreeze {self.n} layers: the base has {len(base.layers)}")
        self.freeze(base.layers[: len(base.layers) - self.n])
        self.freeze_batchnorm(base)

    def describe(self) -> str:
        return self.with_train_bn(f"unfreeze_last({self.n})")


@register_policy("all")
class TrainAll(FinetuningPolicy):
    """Train every layer (BatchNorm of the pretrained base stays frozen unless ``train_bn``)."""

    def __init__(self, train_bn: bool = False):
        self.train_bn = train_bn

    def apply(self, model: keras.Model) -> None:
        self.make_trainable(model)
        # Models without a pretrained base train their BatchNorm normally.
        with contextlib.suppress(ModelError):
            self.freeze_batchnorm(backbone_of(model))

    def describe(self) -> str:
        return self.with_train_bn("all")


def _walk(layer: keras.layers.Layer):
    yield layer
    for sub in getattr(layer, "layers", []) or []:
        yield from _walk(sub)


def leaf_layers(layer: keras.layers.Layer):
    """Every non-container layer inside ``layer`` (nested models expanded), in order."""
    subs = getattr(layer, "layers", None)
    if not subs:
        yield layer
        return
    for sub in subs:
        yield from leaf_layers(sub)
