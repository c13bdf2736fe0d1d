"""ONNX export with tf2onnx from the inference graph (dynamic batch dimension)."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from exports.formats import ConversionError, failure_line
from exports.to_savedmodel import INPUT_NAME, OUTPUT_NAME

OPSET = 17
BATCH_DIM = "batch"


def write_onnx(inference_model: keras.Model, path: Path, opset: int = OPSET) -> dict:
    """Convert ``inference_model`` to ONNX at ``path``: float32 ``image`` in, ``probabilities`` out.

    The model is traced as a ``tf.function`` with an explicit signature and converted with
    ``from_function``: that names the input and output, keeps the batch dimension free, and
    does not depend on Keras-model internals (``from_keras`` broke on Keras 3 before,
    onnx/tensorflow-onnx#2329). ``training=False``: no random ops, which tf2onnx cannot convert.

    Returns:
        the opset and tensor names recorded in ``metadata.json``.

    Raises:
        ConversionError: TensorFlow cannot freeze the graph or tf2onnx cannot convert it (e.g.
            a stateful random op), or it has ops ONNX has no operator for (tf2onnx only logs
            those and leaves them in the file).
    """
    import onnx
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    size = int(inference_model.input_shape[1])
    spec = [tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_NAME)]
    fn = tf.function(lambda image: {OUTPUT_NAME: inference_model(image, training=False)})
    # Freeze first: tf2onnx's from_function takes every non-variable tensor the function
    # captures (e.g. the constant mean/variance of the Normalization layer in EfficientNetV2)
    # for an extra graph input, and the file would need three inputs.
    concrete = fn.get_concrete_function(*spec)
    try:
        frozen = convert_variables_to_constants_v2(concrete)
        names = {frozen.inputs[0].name: INPUT_NAME, frozen.outputs[0].name: OUTPUT_NAME}
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=list(names)[:1],
            output_names=list(names)[1:],
            opset=opset,
        )
    except ValueError as exc:  # how TensorFlow and tf2onnx refuse a graph they cannot convert
        raise ConversionError(f"tf2onnx cannot convert this graph: {failure_line(exc)}") from exc
    unknown = sorted(
        {
            n.op_type
            for n in proto.graph.node
            if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type)
        }
    )
    if unknown:
        raise ConversionError(f"ONNX opset {opset} has no operator for {', '.join(unknown)}")
    _rename(proto.graph, names)
    # tf2onnx names the free batch dimension "unk__N"; a stable name documents it.
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
    path.write_bytes(proto.SerializeToString())
    return {"opset": opset, "input_name": INPUT_NAME, "output_name": OUTPUT_NAME}


def _rename(graph, names: dict[str, str]) -> None:
    """Give the graph's input and output the project's names (``image``, ``probabilities``)."""
    for value in [*graph.input, *graph.output]:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
