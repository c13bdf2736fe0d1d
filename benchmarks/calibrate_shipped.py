"""Calibrate the shipped CIFAR-10 model: T and "not sure" fitted on validation, measured on test.

Usage: python benchmarks/calibrate_shipped.py [--model models/model_float16.tflite]
       [--data-dir DIR] [--ood-dir DIR] [--out DIR] [--cache FILE.npz]

The validation split is the one the shipped model's run held out (``stratified_split`` of the
50,000 training images, 10%, seed 42: 5,000 images the model never trained on); T and
``min_confidence`` are fitted there only. The 10,000 test images measure them. With
``--ood-dir`` (an image folder of other things, e.g. ``../shared/data/clothing10``) it also
gives the AUROC of the top-1 probability separating CIFAR test images from those photos
(resized to 32x32). ``--cache`` keeps the probabilities, so a second run skips inference.
Writes ``calibration.json`` and the two charts to ``--out`` (default ``runs/calibration-shipped``).

For reference it also measures what no single temperature can do: an isotonic map of the
top-1 confidence fitted on validation (the predicted class kept, the other classes rescaled),
which does not fold into a Dense layer.
"""

from __future__ import annotations

import json
import os
import tempfile
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

    fit = calibrate(val_p, val_y, fitted_on=f"validation ({len(val_y)} training images)")
    t = fit.temperature
    test_cal = apply_temperature(test_p, t)
    sure = choose_min_confidence(apply_temperature(val_p, t), val_y)
    result = {
        "model": str(args.model),
        "temperature": fit.metadata(),
        "test_before": calibration_summary(test_p, test_y),
        "test_after": calibration_summary(test_cal, test_y),
        "min_confidence_validation": sure.metadata(),
        "min_confidence_test": evaluate_threshold(
            test_cal, test_y, sure.min_confidence, chosen_by="validation"
        ).metadata(),
        "coverage_curve_area_test": coverage_curve(test_cal, test_y).area,
        "reference_isotonic_top1": isotonic_reference(val_p, val_y, test_p, test_y),
    }
    if "ood_probs" in arrays:
        result["ood"] = {
            "folder": args.ood_dir,
            "n": len(arrays["ood_probs"]),
            "auroc_before": ood_auroc(test_p, arrays["ood_probs"]),
            "auroc_after": ood_auroc(test_cal, apply_temperature(arrays["ood_probs"], t)),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    panels = {
        "test, as shipped": reliability_bins(test_p, test_y),
        f"test, T = {t:.3f}": reliability_bins(test_cal, test_y),
    }
    save_figure(reliability_figure(panels), out / "reliability.png")
    test_sure = evaluate_threshold(test_cal, test_y, sure.min_confidence)
    curves = {"test (calibrated)": coverage_curve(test_cal, test_y)}
    save_figure(coverage_figure(curves, test_sure), out / "coverage.png")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
