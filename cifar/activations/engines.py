"""Run the frozen prefix that fills the activation cache on the fastest exact CPU engine.

TensorFlow's eager CPU kernels run MobileNetV2's depthwise blocks well below what the CPU can
do; LiteRT with XNNPACK and ONNX Runtime run the same network 1.2-2.5x faster on the
development machines. The prefix is converted on the fly (a few seconds), every candidate runs
a batch of the real images being cached, and the fastest engine whose output stays within
float16 rounding of TensorFlow's (the cache stores float16) is used; TensorFlow is the fallback
when no engine converts or none is exact, and ``cache_engine = "tensorflow"`` forces it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

ENGINES = ("auto", "litert", "onnxruntime", "tensorflow")
# Half a float16 ulp relative to the value: what storing an activation as float16 may lose.
FLOAT16_ROUNDING = 2.0**-11

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass
class Engine:
    """A prefix runner: float32 images (N x S x S x 3, 0..255) -> float32 activations."""

    name: str
    run: Runner
    images_per_second: float = 0.0
    difference: float = 0.0  # max |engine - tensorflow| / max |tensorflow| on the probe batch


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _concrete(prefix: keras.Model, batch: int | None):
    # Inference mode: BatchNorm uses its moving statistics and Dropout is off, as in the
    # TensorFlow path; the traced graph has no random ops.
    fn = tf.function(lambda x: prefix(x, training=False))
    return fn, fn.get_concrete_function(tf.TensorSpec([batch, *prefix.input_shape[1:]], tf.float32))


def tensorflow_engine(prefix: keras.Model) -> Runner:
    """The reference: the Keras prefix as one traced TensorFlow function (any batch size)."""
    _, concrete = _concrete(prefix, None)
    return lambda x: concrete(tf.constant(x, tf.float32)).numpy()


def litert_engine(prefix: keras.Model, batch: int) -> Runner:
    """LiteRT float32 with the XNNPACK delegate, converted from the traced prefix."""
    from ai_edge_litert.interpreter import Interpreter

    from cifar.quiet import filtered_stderr

    fn, concrete = _concrete(prefix, batch)
    model = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn).convert()
    with filtered_stderr():  # LiteRT prints its XNNPACK line when tensors are allocated
        interpreter = Interpreter(model_content=model, num_threads=_threads())
        interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        n = len(x)
        if n < batch:  # the converted graph has a fixed batch: pad the last chunk
            x = np.concatenate([x, np.zeros((batch - n, *x.shape[1:]), x.dtype)])
        interpreter.set_tensor(inp, np.ascontiguousarray(x, dtype=np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(out)[:n].copy()

    return run


def onnxruntime_engine(prefix: keras.Model) -> Runner:
    """ONNX Runtime on CPU, converted by tf2onnx from the frozen traced prefix."""
    import onnxruntime as ort
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    _, concrete = _concrete(prefix, None)
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # tf2onnx's TF1-API deprecation warnings, printed per conversion
    try:
        frozen = convert_variables_to_constants_v2(concrete)
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs],
            opset=17,
        )
    finally:
        logger.setLevel(level)
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def relative_difference(values: np.ndarray, reference: np.ndarray) -> float:
    """``max |values - reference|`` relative to the reference's largest magnitude."""
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(values.astype(np.float64) - reference))) / scale


def _rate(run: Runner, sample: np.ndarray, repeats: int = 2) -> tuple[np.ndarray, float]:
    out = run(sample)  # warm-up: first calls allocate and pack weights
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = run(sample)
    return out, repeats * len(sample) / (time.perf_counter() - t0)


def choose_engine(
    prefix: keras.Model,
    sample: np.ndarray,
    engine: str = "auto",
    log: Callable[[str], None] = print,
) -> Engine:
    """The fastest engine within float16 rounding of TensorFlow on ``sample`` (one batch).

    ``engine`` names the engine to use (TensorFlow if it fails to convert or is not exact), or
    ``"auto"`` times LiteRT and ONNX Runtime against TensorFlow and keeps the fastest exact
    one.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown cache engine {engine!r}; expected one of {', '.join(ENGINES)}")
    reference = Engine("tensorflow", tensorflow_engine(prefix))
    expected, reference.images_per_second = _rate(reference.run, sample)
    if engine == "tensorflow":
        return reference
    builders = {
        "litert": lambda: litert_engine(prefix, len(sample)),
        "onnxruntime": lambda: onnxruntime_engine(prefix),
    }
    names = list(builders) if engine == "auto" else [engine]
    candidates = [reference]
    for name in names:
        try:
            run = builders[name]()
            values, rate = _rate(run, sample)
        except Exception as exc:  # a converter or runtime that cannot take this graph
            log(f"cache: engine {name} unavailable ({type(exc).__name__}: {exc}); skipped")
            continue
        difference = relative_difference(values, expected)
        if values.shape != expected.shape or not difference < FLOAT16_ROUNDING:
            log(
                f"cache: engine {name} differs from TensorFlow by {difference:.1e} "
                f"(float16 rounding: {FLOAT16_ROUNDING:.1e}); skipped"
            )
            continue
        candidates.append(Engine(name, run, rate, difference))
    # A named engine is used whenever it is exact; "auto" keeps the fastest.
    best = (
        candidates[-1] if engine != "auto" else max(candidates, key=lambda e: e.images_per_second)
    )
    rates = ", ".join(f"{e.name} {e.images_per_second:.0f}" for e in candidates)
    log(
        f"cache: extraction engine {best.name} (images/s on {len(sample)} images: {rates}; "
        f"max relative difference from TensorFlow {best.difference:.1e})"
    )
    return best
