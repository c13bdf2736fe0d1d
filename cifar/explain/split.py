"""A classifier cut in two at the feature map its head reads, so gradients can be taken there.

The registry's transfer models nest the Keras Application as one layer named ``backbone``.
``keras.Model(model.inputs, backbone.get_layer(name).output)`` fails or silently builds a
disconnected graph (keras-team/keras#16123), because that tensor belongs to the nested model's
own graph, not to the outer one. The cut here is made in the outer graph instead: the input of
the first top-level layer that turns a 4-D feature map into a vector (GlobalAveragePooling or
Flatten) is a tensor of the outer graph, and Keras 3 builds a model from it onwards by cloning
the graph from that tensor. The two stages compose to exactly the original model.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import ops

from cifar.errors import ModelError


@dataclass(frozen=True)
class FeatureSplit:
    """``model`` as two stages: ``features`` (image -> feature map) and ``head`` (feature map ->
    the input of the last layer), plus the last Dense layer whose pre-softmax scores are used.

    Attributes:
        features: raw 0-255 images (the model's input size) -> N x h x w x k feature maps.
        head: feature maps -> N x d, the input of ``output_layer``.
        output_layer: the final Dense layer (softmax) of the classifier.
        layer_name: the top-level layer whose output is the feature map (e.g. ``backbone``).
    """

    features: keras.Model
    head: keras.Model
    output_layer: keras.layers.Dense
    layer_name: str

    def scores(self, feature_maps, training: bool = False):
        """Pre-softmax class scores (logits) and probabilities of ``feature_maps``."""
        hidden = self.head(feature_maps, training=training)
        kernel, bias = self.output_layer.kernel, self.output_layer.bias
        # float32 so that a mixed-precision model's small score gradients do not underflow.
        logits = ops.matmul(ops.cast(hidden, "float32"), ops.cast(kernel, "float32"))
        if bias is not None:
            logits = logits + ops.cast(bias, "float32")
        return logits, ops.softmax(logits, axis=-1)


def split_at_feature_map(model: keras.Model) -> FeatureSplit:
    """Cut ``model`` where its head starts: at the last 4-D feature map of the top-level graph.

    For a registry transfer model that is the backbone's output (its last convolutional
    feature map, what Grad-CAM is defined on); for the custom CNN it is the last pooling output.

    Raises:
        ModelError: the model is not a functional classifier ending in a softmax Dense layer
            with a 4-D feature map before it.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "operations"):
        raise ModelError(f"{getattr(model, 'name', model)!r} is not a functional Keras model")
    output_layer = model.layers[-1]
    activation = getattr(output_layer, "activation", None)
    if (
        not isinstance(output_layer, keras.layers.Dense)
        or activation is not keras.activations.softmax
    ):
        raise ModelError(
            f"model {model.name!r} does not end in a softmax Dense layer "
            f"(its last layer is {output_layer.name!r}); a heatmap needs the class scores"
        )
    head_start = next(
        (layer for layer in model.layers if _is_map(layer.input) and not _is_map(layer.output)),
        None,
    )
    if head_start is None:
        raise ModelError(f"model {model.name!r} has no 4-D feature map before its head")
    cut = head_start.input
    model_input = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    features = keras.Model(model_input, cut, name=f"{model.name}_features")
    head = keras.Model(cut, output_layer.input, name=f"{model.name}_head")
    # The producing layer's name, for messages; Keras records it on every symbolic tensor.
    producer = cut._keras_history[0].name
    return FeatureSplit(features, head, output_layer, producer)


def _is_map(tensor) -> bool:
    """True for one N x h x w x k tensor (lists of tensors are never a feature map)."""
    return not isinstance(tensor, (list, tuple)) and len(tensor.shape) == 4
