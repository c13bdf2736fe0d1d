"""The Gradio demo's UI: classify one image or a batch, and show the served model's metrics.

Tabs: **Classify** (upload or paste an image -> the top-3 classes with confidences, example
test images of the model's data set), **Batch** (several images -> a results table) and
**Model** (what is served, its run's test metrics and confusion matrix). All predictions go
through one :class:`cifar.inference.predictor.Predictor`, loaded and warmed up before the
server starts. The examples come from :mod:`cifar.serving.examples`.

Run it with ``python gradio_app.py`` or ``cifar serve gradio`` (both take the options of
:func:`cifar.commands.serve.add_gradio_arguments`); ``app.py`` is the Hugging Face Spaces entry.

Example:
    >>> demo = build_demo(Predictor.load("model.tflite"), examples=write_examples("examples"))
    >>> demo.launch(server_name="127.0.0.1", server_port=7860)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cifar.run_files import (
    BEST_MODEL,
    EVALUATION_FILE,
    METRICS_FILE,
    read_optional_json,
)

if TYPE_CHECKING:
    from cifar.inference.predictor import Predictor

__all__ = ["MAX_BATCH_FILES", "TOP_K", "build_demo", "model_summary_markdown"]

MAX_BATCH_FILES = 64
TOP_K = 3
BATCH_HEADERS = ["file", "top-1", "p1", "top-2", "p2", "top-3", "p3"]


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
    metrics = read_optional_json(run_dir / METRICS_FILE)
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
                    label="Test images",
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


def _evaluation(predictor: Predictor) -> tuple[dict | None, str]:
    """The run's evaluation of the served file itself, else of the Keras model it came from."""
    from cifar.evaluation import file_prefix

    run_dir = predictor.run_dir
    if run_dir is None:
        return None, ""
    if predictor.path.name != BEST_MODEL:
        own = read_optional_json(run_dir / f"{file_prefix(predictor.path)}{EVALUATION_FILE}")
        if own:
            return own, f"{predictor.path.name} itself"
    return read_optional_json(run_dir / EVALUATION_FILE), f"the run's {BEST_MODEL}"


def _confusion_figure(predictor: Predictor) -> Any:
    evaluation, _ = _evaluation(predictor)
    if not evaluation or "confusion_matrix" not in evaluation:
        return None
    from cifar.plots import confusion_matrix_figure

    names = evaluation.get("class_names") or list(predictor.class_names)
    return confusion_matrix_figure(evaluation["confusion_matrix"], names)
