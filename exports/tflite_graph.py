"""Lossless edits of ``.tflite`` flatbuffers: compact serialisation and float32 constants restored.

Both work on LiteRT's object API (``flatbuffer_utils``), so they change how a model is stored,
never what it computes:

- :func:`compact` writes every identical vector once. A per-channel quantised model repeats
  the same vectors many times (an all-zero int64 zero-point vector for each weight and each
  bias); sharing one copy is allowed by the FlatBuffers format, and the interpreter's outputs
  are bit-identical.
- :func:`restore_float32` takes a float16 model and puts chosen constants back in float32,
  from the float32 model converted from the same SavedModel: the ``DEQUANTIZE`` op that
  widened the float16 copy goes, and its output becomes the float32 constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

_FILE_IDENTIFIER = b"TFL3"


class _SharingBuilder(flatbuffers.Builder):
    """A FlatBuffers builder that stores each distinct numeric vector once."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._offsets: dict[tuple[str, bytes], int] = {}

    def CreateNumpyVector(self, x: np.ndarray) -> int:  # noqa: N802 - FlatBuffers' API name
        """Write ``x`` once; later identical vectors point at the first copy."""
        key = (x.dtype.str, x.tobytes())
        if key not in self._offsets:
            self._offsets[key] = super().CreateNumpyVector(x)
        return self._offsets[key]


def serialise(model: schema.ModelT) -> bytes:
    """``model`` (LiteRT's object API) as ``.tflite`` bytes, identical vectors stored once."""
    builder = _SharingBuilder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def compact(model_bytes: bytes) -> bytes:
    """``model_bytes`` re-serialised with identical vectors shared (same outputs, fewer bytes)."""
    return serialise(flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes)))


def custom_ops(model_bytes: bytes) -> list[str]:
    """Names of the non-builtin (custom or Flex, i.e. Select TF) ops in a ``.tflite`` model.

    MediaPipe Tasks and the browser runtime have only LiteRT's builtin kernels, so an exported
    file must have none: the converter here never enables ``SELECT_TF_OPS`` (unlike Keras's
    ``model.export(format="litert")``), and the Exporter fails a file that has any
    (:func:`exports.graph_checks.runtime_only_ops`).
    """
    model = schema.Model.GetRootAs(model_bytes, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Old files store small builtin codes in the deprecated byte field only.
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == schema.BuiltinOperator.CUSTOM:
            names.append((code.CustomCode() or b"?").decode())
    return names


@dataclass(frozen=True)
class Float16Constant:
    """A constant that a float16 model stores in float16 and widens with a ``DEQUANTIZE`` op.

    Args:
        dequantize_op: index of that ``DEQUANTIZE`` op in the float16 model's operator list.
        position: index of the consuming op among the model's other ops (graph order).
        consumer: the consuming op's type (``CONV_2D``, ``DEPTHWISE_CONV_2D``...).
        float32_tensor: index of the same constant in the float32 model.
        size: number of elements.
        vector: True for scalars and 1-D constants (biases, rescaling factors).
    """

    dequantize_op: int
    position: int
    consumer: str
    float32_tensor: int
    size: int
    vector: bool


def op_name(model: schema.ModelT, op: schema.OperatorT) -> str:
    """The builtin name (``SOFTMAX``...) of ``op`` in ``model`` (LiteRT's object API)."""
    return flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)


def float16_constants(float16_model: bytes, float32_model: bytes) -> list[Float16Constant]:
    """Every float16 constant of ``float16_model`` with its float32 twin in ``float32_model``.

    Raises:
        ValueError: the two models are not conversions of the same graph.
    """
    m16 = flatbuffer_utils.convert_bytearray_to_object(bytearray(float16_model))
    m32 = flatbuffer_utils.convert_bytearray_to_object(bytearray(float32_model))
    g16, g32 = m16.subgraphs[0], m32.subgraphs[0]
    widened = {
        op.outputs[0]: i for i, op in enumerate(g16.operators) if op_name(m16, op) == "DEQUANTIZE"
    }
    ops16 = [op for op in g16.operators if op_name(m16, op) != "DEQUANTIZE"]
    if len(ops16) != len(g32.operators):
        raise ValueError("the float16 and float32 models have different graphs")
    found = []
    for position, (a, b) in enumerate(zip(ops16, g32.operators, strict=True)):
        if op_name(m16, a) != op_name(m32, b):
            raise ValueError(f"op {position} differs: {op_name(m16, a)} vs {op_name(m32, b)}")
        for slot, tensor in enumerate(a.inputs):
            if tensor in widened:
                shape = list(g16.tensors[tensor].shape)
                found.append(
                    Float16Constant(
                        dequantize_op=widened[tensor],
                        position=position,
                        consumer=op_name(m16, a),
                        float32_tensor=int(b.inputs[slot]),
                        size=int(np.prod(shape)) if shape else 1,
                        vector=len(shape) <= 1,
                    )
                )
    return sorted(found, key=lambda c: (c.position, c.dequantize_op))


def restore_float32(
    float16_model: bytes, float32_model: bytes, constants: list[Float16Constant]
) -> bytes:
    """``float16_model`` with ``constants`` stored in float32 again (their float16 copies go)."""
    m16 = flatbuffer_utils.convert_bytearray_to_object(bytearray(float16_model))
    m32 = flatbuffer_utils.convert_bytearray_to_object(bytearray(float32_model))
    # m16 was parsed afresh above, so it is edited in place.
    graph, g32 = m16.subgraphs[0], m32.subgraphs[0]
    removed, float16_copies = set(), set()
    for constant in constants:
        op = graph.operators[constant.dequantize_op]
        buffer = schema.BufferT()
        buffer.data = m32.buffers[g32.tensors[constant.float32_tensor].buffer].data
        m16.buffers.append(buffer)
        graph.tensors[op.outputs[0]].buffer = len(m16.buffers) - 1
        float16_copies.add(graph.tensors[op.inputs[0]].buffer)
        removed.add(constant.dequantize_op)
    graph.operators = [op for i, op in enumerate(graph.operators) if i not in removed]
    # The converter stores identical constants once, so a float16 copy may also feed a
    # DEQUANTIZE that stays (a ConvNeXt file has several on one tensor): drop unread copies only.
    still_read = {graph.tensors[t].buffer for op in graph.operators for t in op.inputs if t >= 0}
    for index in float16_copies - still_read:
        m16.buffers[index].data = None
    return serialise(m16)
