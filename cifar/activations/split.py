"""Where to cut a model into a frozen prefix and a trainable tail."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from cifar.finetuning import BACKBONE
from cifar.models.folding import fold_frozen_batchnorm


class CannotSplit(Exception):
    """Keras cannot build a prefix and a tail at the cut found; the plain path still works."""


@dataclass
class ModelSplit:
    """A frozen ``prefix`` (raw images -> activations) and a ``tail`` (activations -> output).

    Both are built from the full model's own layer objects, so training the tail trains the
    full model. ``cut`` names the layer whose output is cached.
    """

    prefix: keras.Model
    tail: keras.Model
    cut: str

    @property
    def activation_shape(self) -> tuple[int, ...]:
        """Shape of one cached activation (without the batch dimension)."""
        return tuple(self.tail.input_shape[1:])


def _has_trainable(op) -> bool:
    # Plain ops (``x + y`` on symbolic tensors) have no weights and no ``trainable`` flag.
    return bool(getattr(op, "trainable", False) and getattr(op, "trainable_weights", None))


def _graph(backbone: keras.Model) -> tuple[list, list[set[int]], list]:
    """The backbone's operations in topological order, what each reads, and its output tensor.

    Operations, not just layers: Keras applications also apply plain ops to symbolic tensors
    (MobileNetV3's hard-sigmoid ``x + 3``, ConvNeXt's residual ``+``), which are nodes of the
    graph but not in ``backbone.layers``. Each op's first node is its call in the backbone.
    """
    ops = backbone.operations
    position = {id(op): i for i, op in enumerate(ops)}
    sources, outputs = [], []
    for op in ops:
        node = op._inbound_nodes[0]
        sources.append({position[id(t._keras_history.operation)] for t in node.input_tensors})
        outputs.append(node.output_tensors)
    return ops, sources, outputs


def split_model(model: keras.Model, fold_batchnorm: bool = True) -> ModelSplit | None:
    """Cut ``model`` at the last single-tensor boundary before its first trainable layer.

    Works for chain models whose pretrained part is a nested functional layer named
    ``backbone`` (the registry's transfer models), whatever branches the backbone has inside.
    Returns None when nothing at the input side is frozen (no gain) or the model has no such
    structure. With ``fold_batchnorm`` the tail's frozen BatchNorm layers are folded into
    their convolutions (:mod:`cifar.models.folding`): the same function, a faster step.

    Raises:
        CannotSplit: the backbone's graph has no tail Keras can build from the cut (e.g. a
            layer called twice whose later call reads from before the cut); the caller
            trains on images instead.
    """
    names = [layer.name for layer in model.layers]
    if BACKBONE not in names:
        return None
    b_index = names.index(BACKBONE)
    backbone = model.layers[b_index]
    pre = model.layers[1:b_index]  # layers[0] is the InputLayer
    post = model.layers[b_index + 1 :]
    if any(_has_trainable(layer) for layer in pre):
        return None
    if not _has_trainable(backbone):
        # Frozen base: cache after the base and any weightless layers that follow (pooling).
        first = next((i for i, layer in enumerate(post) if layer.trainable_weights), None)
        if first is None:
            return None
        prefix_post, tail_post = post[:first], post[first:]
        prefix = _chain(model.input, [*pre, _Frozen(backbone), *prefix_post])
        cut = prefix_post[-1].name if prefix_post else BACKBONE
        t_in = keras.Input(prefix.output_shape[1:], name="cached_activations")
        return ModelSplit(prefix, _chain(t_in, tail_post), cut)
    ops, sources, outputs = _graph(backbone)
    k = next(i for i, op in enumerate(ops) if _has_trainable(op))
    # A cut after op j is exact when nothing later reads from before j (residual adds and
    # squeeze-and-excitation branches rule out the points inside a block) and j has one output.
    earliest = [min(s, default=i) for i, s in enumerate(sources)]
    cut_index = next(
        (
            j
            for j in range(k - 1, 0, -1)
            if len(outputs[j]) == 1 and min(earliest[j + 1 :], default=j) >= j
        ),
        None,
    )
    if cut_index is None:
        return None
    cut_tensor = outputs[cut_index][0]
    cut_name = ops[cut_index].name
    try:
        inner_prefix = keras.Model(backbone.input, cut_tensor, name="backbone_prefix")
        inner_tail = keras.Model(cut_tensor, backbone.output, name="backbone_tail")
    except ValueError as exc:  # Keras: an output "is not connected to `inputs`"
        raise CannotSplit(f"cannot split the backbone at {cut_name}: {exc}") from exc
    if fold_batchnorm:
        inner_tail = fold_frozen_batchnorm(inner_tail)[0]
    prefix = _chain(model.input, [*pre, _Frozen(inner_prefix)])
    t_in = keras.Input(cut_tensor.shape[1:], name="cached_activations")
    # The tail's backbone part gets the training flag as the full model's backbone does: its
    # frozen BatchNorm stays in inference mode, a trainable one (train_bn) adapts.
    return ModelSplit(prefix, _chain(t_in, [inner_tail, *post]), cut_name)


class _Frozen:
    """Calls a nested model with ``training=False``: the cached prefix must compute the same
    activations every time, whatever the caller's mode."""

    def __init__(self, model: keras.Model):
        self.model = model

    def __call__(self, x):
        return self.model(x, training=False)


def _chain(inputs, layers) -> keras.Model:
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)
