"""A monotone calibration map appended to a ``.tflite`` file: ``softmax(g(log_softmax(z)))``.

For a model shipped as a ``.tflite`` file only (``models/model_float16.tflite``), when one
temperature cannot calibrate it (:mod:`cifar.calibration.monotone`). ``g`` is not a scaling, so
unlike T (:mod:`exports.tflite_temperature`) it cannot be folded into the weights: the final
SOFTMAX becomes a LOG_SOFTMAX, followed by builtin element-wise ops only (EXPAND_DIMS, SUB,
RELU, MUL, SUM, MUL, ADD, SOFTMAX), which LiteRT, MediaPipe Tasks and the browser runtime all
have::

    l = log_softmax(z)                                   # the old SOFTMAX op, N x C
    g = a * l + sum_i steps[i] * relu(l - knots[i])      # N x C x K, summed over K
    p = softmax(g)                                       # the model's output tensor, as before

The output tensor keeps its index, name, shape and signature, so the TFLite metadata
(MediaPipe's score description and the packed ``labels.txt``) still describes it; the packed
files are re-appended after the re-serialised flatbuffer.
"""

from __future__ import annotations

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from cifar.calibration.monotone import MonotoneMap
from cifar.errors import ModelError
from exports.tflite_graph import op_name, serialise
from exports.tflite_metadata import append_files, packed_files

_OP = schema.BuiltinOperator


def _opcode(model: schema.ModelT, builtin: int) -> int:
    """The index of ``builtin``'s operator code in ``model``, added if the model has none."""
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, _OP.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


class _Graph:
    """Appends tensors and ops to the main subgraph of a ``ModelT``."""

    def __init__(self, model: schema.ModelT) -> None:
        self.model = model
        self.graph = model.subgraphs[0]

    def tensor(self, name: str, shape: list[int], signature: list[int], data=None) -> int:
        tensor = schema.TensorT()
        tensor.name = name.encode()
        tensor.shape = np.asarray(shape, dtype=np.int32)
        tensor.shapeSignature = np.asarray(signature, dtype=np.int32)
        integer = data is not None and data.dtype == np.int32
        tensor.type = schema.TensorType.INT32 if integer else schema.TensorType.FLOAT32
        tensor.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.model.buffers.append(buffer)
            tensor.buffer = len(self.model.buffers) - 1
        self.graph.tensors.append(tensor)
        return len(self.graph.tensors) - 1

    def constant(self, name: str, values: np.ndarray) -> int:
        return self.tensor(name, list(values.shape), list(values.shape), values)

    def op(self, builtin: int, inputs: list[int], outputs: list[int], options=None) -> None:
        op = schema.OperatorT()
        op.opcodeIndex = _opcode(self.model, builtin)
        op.inputs = np.asarray(inputs, dtype=np.int32)
        op.outputs = np.asarray(outputs, dtype=np.int32)
        if options is not None:
            op.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
            op.builtinOptions = options
        self.graph.operators.append(op)


def _final_softmax(model: schema.ModelT) -> schema.OperatorT:
    graph = model.subgraphs[0]
    softmaxes = [op for op in graph.operators if op_name(model, op) == "SOFTMAX"]
    if len(softmaxes) != 1 or int(softmaxes[0].outputs[0]) not in graph.outputs.tolist():
        raise ModelError(
            "expected the model to end in one SOFTMAX op writing its output: cannot append a "
            "calibration map"
        )
    output = graph.tensors[int(softmaxes[0].outputs[0])]
    if output.type != schema.TensorType.FLOAT32:  # a quantised output is int8/uint8
        raise ModelError("the model's output is quantised: append the map to a float model")
    return softmaxes[0]


def append_monotone_map(model_bytes: bytes, mapping: MonotoneMap) -> bytes:
    """``model_bytes`` whose output is ``softmax(g(log p))`` of the original output ``p``.

    Raises:
        ModelError: the model does not end in one float SOFTMAX op.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    softmax = _final_softmax(model)
    graph = _Graph(model)
    out_index = int(softmax.outputs[0])
    out = graph.graph.tensors[out_index]
    shape = [int(v) for v in out.shape]
    signature = [int(v) for v in (out.shapeSignature if out.shapeSignature is not None else shape)]
    a, knots, steps = mapping.relu_form()
    k = len(knots)

    log_p = graph.tensor("calibration/log_softmax", shape, signature)
    softmax.opcodeIndex = _opcode(model, _OP.LOG_SOFTMAX)
    softmax.builtinOptionsType = schema.BuiltinOptions.LogSoftmaxOptions
    softmax.builtinOptions = schema.LogSoftmaxOptionsT()
    softmax.outputs = np.asarray([log_p], dtype=np.int32)

    wide, wide_sig = [*shape, 1], [*signature, 1]
    stacked, stacked_sig = [*shape, k], [*signature, k]
    expanded = graph.tensor("calibration/expanded", wide, wide_sig)
    graph.op(
        _OP.EXPAND_DIMS,
        [log_p, graph.constant("calibration/axis", np.asarray([-1], np.int32))],
        [expanded],
        schema.ExpandDimsOptionsT(),
    )
    shifted = graph.tensor("calibration/shifted", stacked, stacked_sig)
    knots_t = graph.constant("calibration/knots", knots.astype(np.float32))
    graph.op(_OP.SUB, [expanded, knots_t], [shifted], schema.SubOptionsT())
    hinged = graph.tensor("calibration/hinged", stacked, stacked_sig)
    graph.op(_OP.RELU, [shifted], [hinged])
    weighted = graph.tensor("calibration/weighted", stacked, stacked_sig)
    steps_t = graph.constant("calibration/steps", steps.astype(np.float32))
    graph.op(_OP.MUL, [hinged, steps_t], [weighted], schema.MulOptionsT())
    bends = graph.tensor("calibration/bends", shape, signature)
    reducer = schema.ReducerOptionsT()
    reducer.keepDims = False
    axis = graph.constant("calibration/sum_axis", np.asarray([len(shape)], np.int32))
    graph.op(_OP.SUM, [weighted, axis], [bends], reducer)
    scaled = graph.tensor("calibration/scaled", shape, signature)
    slope = graph.constant("calibration/slope", np.asarray([a], np.float32))
    graph.op(_OP.MUL, [log_p, slope], [scaled], schema.MulOptionsT())
    mapped = graph.tensor("calibration/mapped", shape, signature)
    graph.op(_OP.ADD, [scaled, bends], [mapped], schema.AddOptionsT())
    options = schema.SoftmaxOptionsT()
    options.beta = 1.0
    graph.op(_OP.SOFTMAX, [mapped], [out_index], options)

    return append_files(serialise(model), packed_files(model_bytes))
