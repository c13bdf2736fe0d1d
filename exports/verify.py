"""Run an artefact in its real runtime, compare it with the Keras model (parity), tabulate."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cifar.errors import ModelError
from cifar.inference.runtimes import Runtime


class ParityError(ModelError):
    """A converted artefact loads but does not reproduce the Keras model."""


@dataclass
class Verification:
    """How one artefact compares with the Keras model on the same test images."""

    format: str
    file: str
    runtime: str
    n_images: int
    agreement: float
    accuracy: float
    max_abs_diff: float
    latency_ms: float
    bytes: int | None = None
    # Top-1 agreement of MediaPipe's ImageClassifier with LiteRT on the same file (TFLite only).
    mediapipe_agreement: float | None = None

    def to_dict(self) -> dict:
        """Plain data for ``metadata.json`` (rounded for reading)."""
        data = asdict(self)
        data["agreement"] = round(self.agreement, 6)
        data["accuracy"] = round(self.accuracy, 6)
        data["max_abs_diff"] = float(f"{self.max_abs_diff:.3g}")
        data["latency_ms"] = round(self.latency_ms, 3)
        if self.mediapipe_agreement is None:
            del data["mediapipe_agreement"]
        else:
            data["mediapipe_agreement"] = round(self.mediapipe_agreement, 6)
        return data


def single_image_latency_ms(runtime: Runtime, image: np.ndarray, repeats: int = 30) -> float:
    """Median wall time of ``runtime.predict`` on one image, after warm-up calls."""
    batch = image[None]
    for _ in range(3):
        runtime.predict(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runtime.predict(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def verify_runtime(
    name: str,
    runtime: Runtime,
    images: np.ndarray,
    labels: np.ndarray,
    reference: np.ndarray,
    file: str | None = None,
    size_bytes: int | None = None,
) -> Verification:
    """Predict ``images`` with ``runtime`` and compare with the ``reference`` probabilities."""
    probs = runtime.predict(images)
    if probs.shape != reference.shape:
        raise ValueError(f"output shape {probs.shape} differs from Keras's {reference.shape}")
    top1 = probs.argmax(axis=1)
    return Verification(
        format=name,
        file=file or Path(runtime.path).name,
        runtime=runtime.kind,
        n_images=len(images),
        agreement=float(np.mean(top1 == reference.argmax(axis=1))),
        accuracy=float(np.mean(top1 == labels)),
        max_abs_diff=float(np.max(np.abs(probs - reference))) if len(images) else 0.0,
        latency_ms=single_image_latency_ms(runtime, images[0]),
        bytes=size_bytes,
    )


def parity_failure(result: Verification, min_agreement: float, max_abs_diff: float | None) -> str:
    """Why ``result`` fails its gate, or "" when it passes."""
    if result.agreement < min_agreement:
        return (
            f"top-1 agreement with Keras {result.agreement:.2%} is below the required "
            f"{min_agreement:.1%} on {result.n_images} test images"
        )
    if max_abs_diff is not None and result.max_abs_diff > max_abs_diff:
        return (
            f"probabilities differ from Keras by up to {result.max_abs_diff:.3g} "
            f"(allowed {max_abs_diff:g})"
        )
    return ""


def format_table(rows: list[Verification], failures: dict[str, str] | None = None) -> str:
    """The verification table printed after every export."""
    header = (
        f"{'format':<15} {'file':<22} {'agree':>8} {'accuracy':>8} {'max|dp|':>9} "
        f"{'size':>9} {'latency':>9} {'mediapipe':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        size = f"{r.bytes / 1e6:.2f} MB" if r.bytes is not None else "-"
        mediapipe = f"{r.mediapipe_agreement:.2%}" if r.mediapipe_agreement is not None else "-"
        lines.append(
            f"{r.format:<15} {r.file:<22} {r.agreement:>8.2%} {r.accuracy:>8.2%} "
            f"{r.max_abs_diff:>9.2g} {size:>9} {r.latency_ms:>6.2f} ms {mediapipe:>9}"
        )
    for name, cause in (failures or {}).items():
        lines.append(f"{name:<15} FAILED: {cause}")
    return "\n".join(lines)
