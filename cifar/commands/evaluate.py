"""Re-evaluate a run's model (or an exported file) on the test set and rewrite its results."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifar.errors import CifarError, DataError, ModelError
from cifar.run_files import (
    BEST_MODEL,
    EVALUATION_FILE,
    LABELS_FILE,
    METRICS_FILE,
    read_json,
    read_labels,
    write_json,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cifar evaluate``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by `cifar train`")
    parser.add_argument(
        "--model",
        metavar="FILE",
        help="evaluate this .tflite, .onnx, .keras file or SavedModel folder instead of "
        "RUN_DIR/best_model.keras; results go beside the Keras ones (e.g. "
        "model_tflite_evaluation.json)",
    )
    parser.add_argument(
        "--data-dir", help="cifar-10-batches-py folder (default: the one the run was trained on)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")


def run(args: argparse.Namespace) -> int:
    """Load the run's test set and model, evaluate, write the files, refresh the report."""
    if args.batch_size < 1:
        raise CifarError(f"--batch-size must be >= 1, got {args.batch_size}")
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise CifarError(f"run directory {run_dir} does not exist")
    if args.model and not Path(args.model).exists():
        raise ModelError(f"model file {args.model} does not exist")
    # TensorFlow loads with these imports: only after the arguments are known to be usable.
    from cifar.evaluation import evaluate_and_save, file_prefix
    from cifar.inference.input_size import input_size
    from cifar.report import finalize_run
    from cifar.trainer import resume_trainer

    # Evaluating is one process: the run's training strategy (e.g. multiworker, which needs a
    # TF_CONFIG cluster) has no say here, as in `cifar export`.
    trainer = resume_trainer(run_dir, "default")
    if args.data_dir:
        trainer.config.data.data_dir = args.data_dir
    data = trainer.load_data()
    _check_labels(run_dir, data.class_names)
    if args.model:
        from cifar.inference.runtimes import load_runtime

        model = load_runtime(args.model)
        prefix, image_size, what = file_prefix(args.model), model.input_size, args.model
    else:
        model = _load_keras(run_dir / BEST_MODEL)
        prefix, image_size, what = "", input_size(model), BEST_MODEL
    print(f"evaluating {what} on {len(data.y_test)} test images from {data.source}")
    headline = evaluate_and_save(
        run_dir,
        model,
        data.x_test,
        data.y_test,
        data.class_names,
        image_size=image_size,
        batch_size=args.batch_size,
        prefix=prefix,
    )
    if not prefix:
        _update_metrics(run_dir / METRICS_FILE, headline)
    for key in ("accuracy", "loss", "top3_accuracy", "macro_f1", "weighted_f1"):
        print(f"{key:<15}{headline[key]:.4f}")
    print(f"{'n':<15}{headline['n']}  ({headline['images_per_second']} images/s)")
    print(f"wrote {run_dir / (prefix + EVALUATION_FILE)}")
    print(f"report: {finalize_run(run_dir)}")
    return 0


def _check_labels(run_dir: Path, class_names: list[str]) -> None:
    saved = read_labels(run_dir / LABELS_FILE)
    if saved is not None and saved != list(class_names):
        raise DataError(
            f"the test data's classes ({', '.join(class_names)}) differ from the run's "
            f"{LABELS_FILE} ({', '.join(saved)}); pass the data the run was trained on"
        )


def _load_keras(path: Path):
    from cifar.inference.runtimes import load_keras_model

    if not path.is_file():
        raise ModelError(f"{path} does not exist; did the run finish? (or pass --model FILE)")
    return load_keras_model(path)


def _update_metrics(path: Path, headline: dict) -> None:
    """Replace ``test`` in metrics.json so it agrees with the rewritten evaluation.json."""
    metrics = read_json(path, None)
    if metrics is not None:
        write_json(path, {**metrics, "test": headline})
