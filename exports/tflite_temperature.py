"""A temperature folded into a ``.tflite`` file: its last FULLY_CONNECTED weights and bias / T.

For a model shipped as a ``.tflite`` file only (no ``.keras`` file to fold into and re-export,
e.g. ``models/model_float16.tflite``): ``softmax((x W + b) / T) = softmax(x (W / T) + b / T)``,
as :mod:`cifar.calibration.fold` does for a Keras model.

The constants are scaled where they lie in the file, byte for byte: nothing else changes, so
the TFLite metadata (MediaPipe's name, normalisation and the ``labels.txt`` packed after the
flatbuffer) stays intact, and the file keeps its size. A weight stored in float16 (widened by
a ``DEQUANTIZE`` op) is scaled in float16, so it is rounded again like every other float16
weight of the file. Quantised (int8) layers are refused: fold before quantising.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from cifar.errors import ConfigError, ModelError

_DTYPES = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16}


@dataclass(frozen=True)
class FoldTarget:
    """The constants of the final classifier layer, as stored in the file.

    Args:
        fully_connected: index of the FULLY_CONNECTED op feeding the SOFTMAX.
        weights: index of the tensor holding the weights (the float16 source of a DEQUANTIZE
            if the weights are widened at run time).
        bias: the same for the bias (None: the layer has no bias).
        dtypes: the stored dtype of each (``"float32"`` or ``"float16"``).
    """

    fully_connected: int
    weights: int
    bias: int | None
    dtypes: tuple[str, ...]


def _op_name(model: schema.Model, op: schema.Operator) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(number, str(number))


def find_final_layer(model_bytes: bytes | bytearray) -> FoldTarget:
    """The FULLY_CONNECTED op whose output the (single) SOFTMAX of the main graph reads.

    Raises:
        ModelError: no such pair, or its constants are not float32/float16 constants.
    """
    model = schema.Model.GetRootAs(model_bytes, 0)
    graph = model.Subgraphs(0)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    producer = {
        int(op.Outputs(j)): i for i, op in enumerate(ops) for j in range(op.OutputsLength())
    }
    softmaxes = [op for op in ops if _op_name(model, op) == "SOFTMAX"]
    if len(softmaxes) != 1:
        raise ModelError(
            f"expected one SOFTMAX op in the model, found {len(softmaxes)}: cannot fold a "
            "temperature into it"
        )
    fc_index = producer.get(int(softmaxes[0].Inputs(0)))
    if fc_index is None or _op_name(model, ops[fc_index]) != "FULLY_CONNECTED":
        what = "a graph input" if fc_index is None else _op_name(model, ops[fc_index])
        raise ModelError(f"the SOFTMAX reads {what}, not a FULLY_CONNECTED op")
    fc = ops[fc_index]
    stored = []
    for slot in (1, 2):
        tensor = int(fc.Inputs(slot)) if fc.InputsLength() > slot else -1
        if tensor < 0:
            stored.append(None)
            continue
        source = producer.get(tensor)
        if source is not None and _op_name(model, ops[source]) == "DEQUANTIZE":
            tensor = int(ops[source].Inputs(0))
        elif source is not None:
            raise ModelError(
                f"the final FULLY_CONNECTED's input {slot} is computed by "
                f"{_op_name(model, ops[source])}, not a constant"
            )
        quantization = graph.Tensors(tensor).Quantization()
        scaled = quantization is not None and quantization.ScaleLength() > 0
        if graph.Tensors(tensor).Type() not in _DTYPES or scaled:
            raise ModelError(
                "the final FULLY_CONNECTED layer is quantised: fold the temperature into the "
                ".keras model before quantising (cifar.calibration.fold), then export"
            )
        stored.append(tensor)
    if stored[0] is None:
        raise ModelError("the final FULLY_CONNECTED op has no weights tensor")
    dtypes = tuple(np.dtype(_DTYPES[graph.Tensors(t).Type()]).name for t in stored if t is not None)
    return FoldTarget(fc_index, stored[0], stored[1], dtypes)


def _constant(buf: bytearray, model: schema.Model, tensor_index: int) -> np.ndarray:
    """A writable view of a constant tensor's values inside ``buf``."""
    graph = model.Subgraphs(0)
    tensor = graph.Tensors(tensor_index)
    users = sum(
        1
        for s in range(model.SubgraphsLength())
        for t in range(model.Subgraphs(s).TensorsLength())
        if model.Subgraphs(s).Tensors(t).Buffer() == tensor.Buffer()
    )
    if users != 1:
        raise ModelError(
            f"tensor {tensor_index}'s values are shared with {users - 1} other tensor(s): "
            "scaling them in place would change those too"
        )
    buffer = model.Buffers(tensor.Buffer())
    dtype = np.dtype(_DTYPES[tensor.Type()])
    if buffer.DataLength():
        # DataAsNumpy is a view into ``buf``: its address gives the values' position.
        start = buffer.DataAsNumpy().__array_interface__["data"][0] - _address(buf)
        size = buffer.DataLength()
    elif buffer.Offset() > 1:  # files over 2 GB keep constants after the flatbuffer
        start, size = int(buffer.Offset()), int(buffer.Size())
    else:
        raise ModelError(f"tensor {tensor_index} holds no constant values")
    return np.frombuffer(memoryview(buf)[start : start + size], dtype=dtype)


def _address(buf: bytearray) -> int:
    return np.frombuffer(buf, dtype=np.uint8).__array_interface__["data"][0]


def fold_temperature_tflite(model_bytes: bytes, temperature: float) -> bytes:
    """``model_bytes`` with the final layer's weights and bias divided by ``temperature``.

    The result's probabilities are ``softmax(logits / temperature)`` of the original's; every
    byte outside those two constants is unchanged.

    Raises:
        ConfigError: ``temperature`` is not a finite positive number.
        ModelError: the model does not end in FULLY_CONNECTED + SOFTMAX with float constants.
    """
    value = float(temperature)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"temperature must be a finite positive number, got {temperature!r}")
    buf = bytearray(model_bytes)
    target = find_final_layer(buf)
    model = schema.Model.GetRootAs(buf, 0)
    for tensor in (target.weights, target.bias):
        if tensor is not None:
            values = _constant(buf, model, tensor)  # a writable view into buf
            values[:] = (values.astype(np.float64) / value).astype(values.dtype)
    return bytes(buf)
