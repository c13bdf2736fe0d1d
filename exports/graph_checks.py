"""Checks on an exported file's graph: no training-only ops, no TensorFlow-only (Flex) ops."""

from __future__ import annotations

from pathlib import Path

# Op types that only exist in training graphs (random augmentation, dropout masks).
_ONNX_TRAINING_OPS = {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike",
                      "Multinomial", "Bernoulli", "Dropout"}  # fmt: skip


def training_ops(path: Path, kind: str) -> list[str]:
    """Training-only op types present in a SavedModel or ONNX graph (should be empty)."""
    if kind == "onnx":
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        return sorted({n.op_type for n in graph.node} & _ONNX_TRAINING_OPS)
    if kind == "savedmodel":
        from tensorflow.core.protobuf import saved_model_pb2

        proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        ops = set()
        for graph in proto.meta_graphs:
            ops |= {n.op for n in graph.graph_def.node}
            for fn in graph.graph_def.library.function:
                ops |= {n.op for n in fn.node_def}
        return sorted(op for op in ops if "Random" in op or "Dropout" in op)
    return []


def runtime_only_ops(path: Path, kind: str) -> list[str]:
    """TensorFlow-only (Flex, i.e. Select TF) and custom ops of a ``.tflite`` file.

    MediaPipe Tasks, the browser runtime and the TF-free runner have only LiteRT's builtin
    kernels, so an exported file must have none; other formats have no such ops.
    """
    if kind != "tflite":
        return []
    from exports.tflite_graph import custom_ops

    return sorted(set(custom_ops(Path(path).read_bytes())))


def graph_failure(path: Path, kind: str) -> str:
    """Why the graph of ``path`` must not be shipped, or "" when it is clean."""
    found = training_ops(path, kind)
    if found:
        return f"graph contains training-only ops {', '.join(found)}"
    found = runtime_only_ops(path, kind)
    if found:
        return (
            f"file contains TensorFlow-only (Flex/custom) ops {', '.join(found)}, which "
            "LiteRT's builtin kernels, MediaPipe Tasks and the browser cannot run"
        )
    return ""
