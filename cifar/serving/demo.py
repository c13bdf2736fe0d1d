"""The Gradio demo: classify one image or a batch, and show the served model's metrics.

Tabs: **Classify** (upload or paste an image -> the top-3 classes with confidences, example
images from the CIFAR-10 test set), **Batch** (several images -> a results table) and **Model**
(what is served, its run's test metrics and confusion matrix). All predictions go through one
:class:`cifar.inference.predictor.Predictor`, loaded and warmed up before the server starts.

Run it with ``python gradio_app.py`` or ``cifar serve gradio`` (both take the options of
:func:`add_arguments`); ``app.py`` is the Hugging Face Spaces entry.

Example:
    >>> demo = build_demo(Predictor.load("model.tflite"), examples=write_examples("examples"))
    >>> demo.launch(server_name="127.0.0.1", server_port=7860)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cifar.inference.predictor import Predictor

__all__ = [
    "MAX_BATCH_FILES",
    "add_arguments",
    "build_demo",
    "main",
    "model_summary_markdown",
    "write_examples",
]

MAX_BATCH_FILES = 64
TOP_K = 3
BATCH_HEADERS = ["file", "top-1", "p1", "top-2", "p2", "top-3", "p3"]


def write_examples(
    out_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    per_class: int = 1,
    download: bool = False,
    run_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Write example test images of the served model's data set (``per_class`` per class).

    A model trained on an image folder (its ``run_dir``'s metrics say so) gets copies of that
    folder's test (or validation) photos as they are. Otherwise they are CIFAR-10 test images
    as PNG, from the data this machine can load: ``data_dir`` / ``$CIFAR10_DIR``, the Keras
    cache (``~/.keras/datasets``), or, only with ``download``, a fresh Keras download.
    Returns the written paths (``NN_<class>.<ext>``), or ``[]`` when no copy is available.
    Without ``out_dir`` they go to a new temporary folder, so two demos never share one.
    """
    import numpy as np

    if out_dir is None:
        out_dir = tempfile.mkdtemp(prefix="cifar-gradio-examples-")
    folder_examples = _folder_examples(run_dir, per_class)
    if folder_examples is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("[0-9][0-9]_*"):
            old.unlink()
        paths = []
        for name, file in folder_examples:
            path = out / f"{len(paths):02d}_{name}{file.suffix.lower()}"
            shutil.copyfile(file, path)
            paths.append(path)
        return paths

    from cifar.data import load_cifar10
    from cifar.data.cifar10 import FOLDER_NAME, resolve_data_dir
    from cifar.imageio import encode_png

    source = resolve_data_dir(data_dir)
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / FOLDER_NAME
    if source is None and cached.is_dir():
        source = cached
    if source is None and not download:
        return []
    data = load_cifar10(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, name in enumerate(data.class_names):
        for i in np.flatnonzero(data.y_test == label)[:per_class]:
            path = out / f"{len(paths):02d}_{name}.png"
            path.write_bytes(encode_png(data.x_test[i]))
            paths.append(path)
    return paths


def _folder_examples(run_dir: str | os.PathLike | None, per_class: int) -> list | None:
    """``(class, file)`` test photos of the image folder a run trained on; None if not one."""
    if run_dir is None:
        return None
    data = (_read_json(Path(run_dir) / "metrics.json") or {}).get("data", {})
    if data.get("dataset") != "folder" or not Path(str(data.get("source"))).is_dir():
        return None
    from cifar.data.folder_layout import scan_folder
    from cifar.errors import DataError

    try:
        layout = scan_folder(data["source"])
    except DataError:
        return None
    split = next((s for s in ("test", "val", "train") if s in layout.splits), "train")
    chosen, seen = [], {}
    for rel, label in layout.splits[split]:
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            chosen.append((layout.class_names[label], layout.root / rel))
    return chosen


def model_summary_markdown(predictor: Predictor) -> str:
    """Markdown describing the served model and, when its run has them, its test metrics."""
    info = predictor.info()
    lines = [
        "### Served model",
        f"- file: `{info['path']}` ({info['kind']}, input {info['input_size']}x"
        f"{info['input_size']} RGB, {info['num_classes']} classes)",
        f"- class names from: {info['labels_source']}",
        f"- package version: {info['version']}",
    ]
    run_dir = predictor.run_dir
    if run_dir is None:
        lines.append("\nThis model file is not inside a training run, so no metrics are shown.")
        return "\n".join(lines)
    lines.append(f"- training run: `{run_dir}`")
    metrics = _read_json(run_dir / "metrics.json")
    if metrics:
        model, data = metrics.get("model", {}), metrics.get("data", {})
        params = model.get("total_params")
        params_text = f", {params:,} parameters" if isinstance(params, int) else ""
        lines += [
            f"- architecture: {model.get('name', '?')} at {model.get('input_size', '?')}px"
            + params_text,
            f"- data: {data.get('source', data.get('dataset', '?'))} "
            f"({data.get('n_train', '?')} train / {data.get('n_val', '?')} validation images)",
        ]
    evaluation, evaluated = _evaluation(predictor)
    if evaluation is None:
        lines.append("\nNo test evaluation in this run yet (`cifar evaluate RUN_DIR` writes one).")
        return "\n".join(lines)
    head = evaluation.get("headline", {})
    lines += ["", f"### Test set ({evaluated})", "| metric | value |", "| --- | --- |"]
    for key in ("accuracy", "top3_accuracy", "loss", "macro_f1", "n"):
        value = head.get(key)
        if value is not None:
            lines.append(
                f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |"
            )
    return "\n".join(lines)


def build_demo(
    predictor: Predictor,
    examples: Sequence[str | os.PathLike] = (),
    title: str = "CIFAR-10 image classifier",
) -> Any:
    """The Gradio Blocks app over ``predictor`` (not launched)."""
    import gradio as gr

    from cifar.imageio import ImageError

    def classify(image: str | None) -> dict[str, float] | None:
        if image is None:
            return None
        try:
            return predictor.predict_one(image, name=Path(image).name).confidences()
        except ImageError as exc:
            raise gr.Error(str(exc)) from exc

    def classify_batch(files: list[str] | None) -> list[list[Any]]:
        if not files:
            raise gr.Error("Upload one or more images first.")
        if len(files) > MAX_BATCH_FILES:
            raise gr.Error(f"{len(files)} files: at most {MAX_BATCH_FILES} per batch.")
        names = [Path(f).name for f in files]
        try:
            results = predictor.predict(files, names=names)
        except ImageError as exc:
            raise gr.Error(str(exc)) from exc
        rows = []
        for name, result in zip(names, results, strict=True):
            row: list[Any] = [name]
            for label, p in result.top_k(TOP_K):
                row += [label, round(p, 4)]
            rows.append(row)
        return rows

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(
            f"# {title}\nThe model sees every image as {predictor.input_size}x"
            f"{predictor.input_size} RGB (short side resized, then centre-cropped) and tells "
            f"{', '.join(predictor.class_names)} apart."
        )
        with gr.Tab("Classify"):
            with gr.Row():
                with gr.Column():
                    image = gr.Image(
                        type="filepath",
                        image_mode=None,  # pass the file untouched: cifar.imageio decodes it
                        sources=["upload", "clipboard"],
                        label="Image (PNG, JPEG, WebP, BMP, GIF)",
                        height=280,
                        elem_id="image-input",
                    )
                    button = gr.Button("Classify", variant="primary", elem_id="classify")
                label = gr.Label(num_top_classes=TOP_K, label="Top-3 classes", elem_id="top3")
            if examples:
                gr.Examples(
                    examples=[[str(p)] for p in examples],
                    inputs=image,
                    label="CIFAR-10 test images",
                    examples_per_page=len(examples),
                )
            button.click(classify, inputs=image, outputs=label, api_name="classify")
            image.upload(classify, inputs=image, outputs=label, api_visibility="private")
        with gr.Tab("Batch"):
            files = gr.File(
                file_count="multiple", file_types=["image"], type="filepath", label="Images"
            )
            batch_button = gr.Button("Classify all", variant="primary")
            table = gr.Dataframe(headers=BATCH_HEADERS, label="Results", interactive=False)
            batch_button.click(classify_batch, inputs=files, outputs=table, api_name="batch")
        with gr.Tab("Model"):
            gr.Markdown(model_summary_markdown(predictor))
            figure = _confusion_figure(predictor)
            if figure is not None:
                gr.Plot(figure, label="Confusion matrix (test set)")
    return demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python gradio_app.py`` and ``cifar serve gradio``."""
    parser.add_argument(
        "--model", help="model file (default: $CIFAR_MODEL, else the newest run's model)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default local)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument(
        "--share", action="store_true", help="also open a public gradio.live link (off)"
    )
    parser.add_argument(
        "--data-dir", help="CIFAR-10 folder for the example images (default: $CIFAR10_DIR)"
    )
    parser.add_argument(
        "--download-examples",
        action="store_true",
        help="download CIFAR-10 with Keras for the examples when no local copy is found",
    )


def launch(args: argparse.Namespace) -> None:
    """Load the model (refusing to start without one), write the examples, serve the app."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from cifar.errors import CifarError
    from cifar.inference.predictor import Predictor

    predictor = Predictor.load(args.model, top_k=TOP_K)
    try:
        examples = write_examples(
            data_dir=args.data_dir, download=args.download_examples, run_dir=predictor.run_dir
        )
    except CifarError as exc:  # the examples are a nicety: serve without them
        print(f"no example images: {exc}")
        examples = []
    if not examples:
        print("no example images found (for CIFAR-10 set --data-dir or $CIFAR10_DIR)")
    demo = build_demo(predictor, examples)
    print(f"serving {predictor.path} ({predictor.kind}) on http://{args.host}:{args.port}")
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            allowed_paths=[str(Path(p).parent) for p in examples[:1]],
            ssr_mode=False,
        )
    except OSError as exc:  # e.g. the port is taken
        raise CifarError(f"cannot serve on {args.host}:{args.port}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python gradio_app.py``: user errors print one line and exit 2."""
    import sys

    from cifar.errors import CifarError

    parser = argparse.ArgumentParser(description="Gradio demo of a CIFAR-10 classifier.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        launch(args)
    except CifarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _evaluation(predictor: Predictor) -> tuple[dict | None, str]:
    """The run's evaluation of the served file itself, else of the Keras model it came from."""
    from cifar.evaluation import EVALUATION_FILE, file_prefix
    from cifar.inference.predictor import BEST_MODEL

    run_dir = predictor.run_dir
    if run_dir is None:
        return None, ""
    if predictor.path.name != BEST_MODEL:
        own = _read_json(run_dir / f"{file_prefix(predictor.path)}{EVALUATION_FILE}")
        if own:
            return own, f"{predictor.path.name} itself"
    return _read_json(run_dir / EVALUATION_FILE), f"the run's {BEST_MODEL}"


def _confusion_figure(predictor: Predictor) -> Any:
    evaluation, _ = _evaluation(predictor)
    if not evaluation or "confusion_matrix" not in evaluation:
        return None
    from cifar.plots import confusion_matrix_figure

    names = evaluation.get("class_names") or list(predictor.class_names)
    return confusion_matrix_figure(evaluation["confusion_matrix"], names)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None
