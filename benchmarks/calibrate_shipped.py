"""Calibrate the shipped CIFAR-10 model: T and "not sure" fitted on validation, measured on test.

Usage: python benchmarks/calibrate_shipped.py [--model models/model_float16.tflite]
       [--data-dir DIR] [--ood-dir DIR] [--out DIR] [--cache FILE.npz] [--write]

The validation split is the one the shipped model's run held out (``stratified_split`` of the
50,000 training images, 10%, seed 42: 5,000 images the model never trained on); T and
``min_confidence`` are fitted there only. The 10,000 test images measure them. With
``--ood-dir`` (an image folder of other things, e.g. ``../shared/data/clothing10``) it also
gives the AUROC of the top-1 probability separating CIFAR test images from those photos
(resized to 32x32). ``--cache`` keeps the probabilities, so a second run skips inference.
Writes ``calibration.json`` and the two charts to ``--out`` (default ``runs/calibration-shipped``).

With ``--write`` it folds T into the file itself (its final FULLY_CONNECTED weights and bias,
in place: :mod:`exports.tflite_temperature`; the MediaPipe metadata stays intact), measures
the rewritten file on the test set, and records ``calibration`` and ``selective`` in the
``metadata.json`` beside it. A file whose metadata already records a temperature is refused:
folding twice would divide by T twice.

``--method monotone`` fits a monotone map of the log-probabilities instead
(:mod:`cifar.calibration.monotone`: ``softmax(g(log p))``, the predicted class never changes),
for a model no single T calibrates; ``--write`` then appends it to the file's graph
(:mod:`exports.tflite_monotone`) and records it as ``calibration.monotone``. It is fitted on the
file as it is (a temperature already folded in included), and refused if one is recorded.

For reference it also measures what no single temperature can do: per-class vector scaling
(``softmax(z * w + b)``, foldable like T, fitted on validation by NLL), and an isotonic map of
the top-1 confidence fitted on validation (the predicted class kept, the other classes
rescaled), which does not fold.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
VAL_FRACTION, SEED = 0.1, 42  # results/mobilenetv2_finetune_deep-*/config.json


def predict_all(model: Path, data_dir: str | None, ood_dir: str | None) -> dict:
    """Validation, test and (optionally) other-things probabilities, with the labels."""
    from cifar.data import load_cifar10, stratified_split
    from cifar.inference.runtimes import load_runtime

    data = load_cifar10(data_dir)
    _, val_idx = stratified_split(data.y_train, VAL_FRACTION, SEED)
    runtime = load_runtime(model)
    arrays = {
        "val_probs": runtime.predict(data.x_train[val_idx]),
        "val_labels": data.y_train[val_idx],
        "test_probs": runtime.predict(data.x_test),
        "test_labels": data.y_test,
    }
    if ood_dir:
        from cifar.data.folder import load_image_folder

        with tempfile.TemporaryDirectory() as cache:
            other = load_image_folder(
                ood_dir, image_size=runtime.input_size, cache_dir=cache, log=lambda _: None
            )
            images = other.x_test if len(other.x_test) else other.x_train
            arrays["ood_probs"] = runtime.predict(images)
    return arrays


def isotonic_reference(val_p, val_y, test_p, test_y) -> dict:
    """Test ECE and NLL after an isotonic top-1 confidence map fitted on validation."""
    import numpy as np
    from sklearn.isotonic import IsotonicRegression

    from cifar.calibration import calibration_summary

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(val_p.max(axis=1), val_p.argmax(axis=1) == val_y)
    top, conf = test_p.argmax(axis=1), test_p.max(axis=1)
    mapped = np.clip(iso.predict(conf), 1e-6, 1 - 1e-6)
    out = test_p * ((1 - mapped) / np.maximum(1 - conf, 1e-12))[:, None]
    out[np.arange(len(out)), top] = mapped
    summary = calibration_summary(out, test_y)
    return {"test_ece": summary["ece"], "test_nll": summary["nll"], "foldable": False}


def vector_scaling_reference(val_p, val_y, test_p, test_y) -> dict:
    """Test figures of per-class vector scaling ``softmax(z * w + b)`` fitted on validation.

    It folds into the final layer like T (column j of the weights and bias j scaled by
    ``w_j``, ``b_j`` added to the bias), but unlike T it can change the predicted class.
    """
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    from cifar.calibration import calibration_summary, logits_from_probabilities, softmax

    val_z, test_z = logits_from_probabilities(val_p), logits_from_probabilities(test_p)
    n_cls = val_z.shape[1]

    def nll(params):
        log_p = log_softmax(val_z * params[:n_cls] + params[n_cls:], axis=1)
        return -log_p[np.arange(len(val_y)), val_y].mean()

    fit = minimize(nll, np.r_[np.ones(n_cls), np.zeros(n_cls)], method="L-BFGS-B")
    scale, shift = fit.x[:n_cls], fit.x[n_cls:]
    val = calibration_summary(softmax(val_z * scale + shift), val_y)
    test = calibration_summary(softmax(test_z * scale + shift), test_y)
    return {
        "validation_ece": val["ece"],
        "test_ece": test["ece"],
        "test_nll": test["nll"],
        "test_accuracy": test["accuracy"],
        "foldable": True,
    }


def _record_test(metadata: dict, model: Path, test_before: dict, measured: dict) -> tuple[int, str]:
    """The rewritten file's test figures (beside the step that made them: T, or the map),
    size and digest, into ``metadata`` (in place); returns ``(size, sha256)``."""
    from exports.metadata import artifact_digest

    size, sha = artifact_digest(model)
    step = metadata["calibration"].get("monotone", metadata["calibration"])
    step["test"] = {
        "n": measured["n"],
        "accuracy_before": round(test_before["accuracy"], 6),
        "accuracy_after": round(measured["accuracy"], 6),
        "ece_before": round(test_before["ece"], 6),
        "ece_after": round(measured["ece"], 6),
    }
    for artifact in metadata.get("artifacts", []):
        if artifact.get("file") == model.name:
            artifact.update(bytes=size, sha256=sha, accuracy=round(measured["accuracy"], 4))
            artifact["temperature"] = metadata["calibration"].get("temperature")
            if "monotone" in metadata["calibration"]:
                artifact["calibration_map"] = "monotone"
    return size, sha


def write_calibrated(
    model: Path, fit, sure, test_images, test_labels, test_before: dict, method: str
) -> dict:
    """Fold T (or append the monotone map) into ``model`` in place, measure the rewritten file
    on the test set and record ``calibration`` and ``selective`` in the ``metadata.json``
    beside it."""
    from cifar.calibration import calibration_summary
    from cifar.errors import ModelError
    from cifar.inference.runtimes import load_runtime
    from cifar.run_files import METADATA_FILE, read_json, write_json
    from exports.metadata import SELECTIVE_KEYS

    meta_path = model.parent / METADATA_FILE
    metadata = read_json(meta_path)
    recorded = metadata.get("calibration", {})
    if method == "temperature" and "temperature" in recorded:
        raise ModelError(
            f"{meta_path} already records a temperature ({recorded['temperature']}): "
            f"{model} is calibrated; not folding twice"
        )
    if method == "monotone" and "monotone" in recorded:
        raise ModelError(f"{meta_path} already records a monotone map: not appending twice")
    if method == "temperature":
        from exports.tflite_temperature import fold_temperature_tflite

        model.write_bytes(fold_temperature_tflite(model.read_bytes(), fit.temperature))
        metadata["calibration"] = {
            **fit.metadata(),
            "folded_into": f"{model.name}: final FULLY_CONNECTED weights and bias divided by T",
        }
    else:
        from exports.tflite_monotone import append_monotone_map

        model.write_bytes(append_monotone_map(model.read_bytes(), fit.mapping))
        metadata["calibration"] = {
            **recorded,
            "monotone": {
                **fit.metadata(),
                "appended_to": f"{model.name}: softmax(g(log_softmax(logits))) after the "
                "final layer",
            },
        }
    measured = calibration_summary(load_runtime(model).predict(test_images), test_labels)
    size, sha = _record_test(metadata, model, test_before, measured)
    selected = sure.metadata()
    metadata["selective"] = {key: selected.get(key) for key in SELECTIVE_KEYS}
    write_json(meta_path, metadata)
    return {"file": str(model), "sha256": sha, "bytes": size, **measured}


def main(argv: list[str] | None = None) -> dict:
    """Fit on validation, measure on test, print and write the figures."""
    import argparse

    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "model_float16.tflite"))
    parser.add_argument("--data-dir", help="CIFAR-10 folder (default: $CIFAR10_DIR or Keras)")
    parser.add_argument("--ood-dir", help="an image folder of things that are not CIFAR classes")
    parser.add_argument("--out", default="runs/calibration-shipped", help="output folder")
    parser.add_argument("--cache", help="npz file keeping the probabilities between runs")
    parser.add_argument(
        "--method",
        choices=("temperature", "monotone"),
        default="temperature",
        help="temperature scaling (folds into the final layer) or a monotone log-probability map",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="put the calibration into --model in place and record it in the metadata.json "
        "beside it",
    )
    args = parser.parse_args(argv)

    from cifar.calibration import (
        apply_temperature,
        calibrate,
        calibration_summary,
        choose_min_confidence,
        coverage_curve,
        evaluate_threshold,
        ood_auroc,
        reliability_bins,
    )
    from cifar.calibration.plots import coverage_figure, reliability_figure
    from cifar.plots import save_figure

    if args.cache and Path(args.cache).is_file():
        arrays = dict(np.load(args.cache))
    else:
        arrays = predict_all(Path(args.model), args.data_dir, args.ood_dir)
        if args.cache:
            Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.cache, **arrays)
    val_p, val_y = arrays["val_probs"], arrays["val_labels"]
    test_p, test_y = arrays["test_probs"], arrays["test_labels"]

    if args.method == "monotone":
        from cifar.calibration.monotone import fit_monotone_map

        fit = fit_monotone_map(val_p, val_y, fitted_on="validation")
        calibrated, label = fit.mapping.apply, "monotone map"
    else:
        fit = calibrate(val_p, val_y, fitted_on="validation")
        calibrated = partial(apply_temperature, temperature=fit.temperature)
        label = f"T = {fit.temperature:.3f}"
    test_cal = calibrated(test_p)
    sure = choose_min_confidence(calibrated(val_p), val_y)
    result = {
        "model": str(args.model),
        args.method: fit.metadata(),
        "test_before": calibration_summary(test_p, test_y),
        "test_after": calibration_summary(test_cal, test_y),
        "min_confidence_validation": sure.metadata(),
        "min_confidence_test": evaluate_threshold(
            test_cal, test_y, sure.min_confidence, chosen_by="validation"
        ).metadata(),
        "coverage_curve_area_test": coverage_curve(test_cal, test_y).area,
        "reference_vector_scaling": vector_scaling_reference(val_p, val_y, test_p, test_y),
        "reference_isotonic_top1": isotonic_reference(val_p, val_y, test_p, test_y),
    }
    if "ood_probs" in arrays:
        result["ood"] = {
            "folder": args.ood_dir,
            "n": len(arrays["ood_probs"]),
            "auroc_before": ood_auroc(test_p, arrays["ood_probs"]),
            "auroc_after": ood_auroc(test_cal, calibrated(arrays["ood_probs"])),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    panels = {
        "test, as shipped": reliability_bins(test_p, test_y),
        f"test, {label}": reliability_bins(test_cal, test_y),
    }
    save_figure(reliability_figure(panels), out / "reliability.png")
    test_sure = evaluate_threshold(test_cal, test_y, sure.min_confidence)
    curves = {"test (calibrated)": coverage_curve(test_cal, test_y)}
    save_figure(coverage_figure(curves, test_sure), out / "coverage.png")
    if args.write:
        from cifar.data import load_cifar10

        data = load_cifar10(args.data_dir)
        result["written"] = write_calibrated(
            Path(args.model),
            fit,
            sure,
            data.x_test,
            data.y_test,
            result["test_before"],
            args.method,
        )
        (out / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
