"""The on-device runner: LiteRT + NumPy + Pillow only, int8 (de)quantisation, top-3 output."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar.inference.tflite_runner import (
    Quantization,
    RunnerError,
    TFLiteClassifier,
    load_images,
    read_labels,
    top_k,
)

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "cifar" / "inference" / "tflite_runner.py"
IMAGE_FIT = ROOT / "cifar" / "image_fit.py"


@pytest.fixture(scope="module")
def device_dir(tmp_path_factory, trained_cnn) -> Path:
    """What goes on the device: int8 and float32 models and labels.txt (~4 s to build)."""
    from cifar.inference.keras_model import build_inference_model
    from exports.to_savedmodel import write_savedmodel
    from exports.to_tflite import write_tflite

    model, data = trained_cnn
    root = tmp_path_factory.mktemp("device")
    write_savedmodel(build_inference_model(model, 32), root / "sm")
    write_tflite(root / "sm", root / "model_int8.tflite", "int8", data.x_train[:64])
    write_tflite(root / "sm", root / "model_float32.tflite", "float32")
    shutil.rmtree(root / "sm")
    (root / "labels.txt").write_text("\n".join(data.class_names) + "\n")
    return root


@pytest.fixture(scope="module")
def image_files(tmp_path_factory, trained_cnn) -> list[Path]:
    """Three test images as files: a 32x32 PNG, an upscaled JPEG, and a grey PNG."""
    _, data = trained_cnn
    root = tmp_path_factory.mktemp("images")
    paths = [root / "a.png", root / "b.jpg", root / "c_grey.png"]
    Image.fromarray(data.x_test[0]).save(paths[0])
    Image.fromarray(data.x_test[1]).resize((96, 96), Image.Resampling.BILINEAR).save(paths[1])
    Image.fromarray(data.x_test[2]).convert("L").save(paths[2])
    return paths


def _run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_quantization_round_trip_and_clipping():
    q = Quantization(np.dtype(np.uint8), scale=0.5, zero_point=10)
    values = np.array([0.0, 1.0, 100.0, -10.0, 500.0], np.float32)
    quantized = q.quantize(values)
    assert quantized.dtype == np.uint8
    assert quantized.tolist() == [10, 12, 210, 0, 255]  # clipped at both ends
    np.testing.assert_allclose(q.dequantize(quantized)[:3], values[:3])
    plain = Quantization(np.dtype(np.float32), 0.0, 0)
    assert not plain.quantized and plain.quantize(values).dtype == np.float32


def test_int8_classifier_applies_the_file_quantisation(device_dir, trained_cnn):
    model, data = trained_cnn
    clf = TFLiteClassifier(device_dir / "model_int8.tflite")
    assert clf.input_quant.quantized and clf.input_dtype == np.uint8
    assert clf.output_quant.quantized and clf.input_size == 32 and clf.num_classes == 10
    images = data.x_test[:100]
    probs = clf.predict(images, batch_size=32)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.05)
    keras_probs = model.predict(images.astype(np.float32), verbose=0)
    assert np.mean(probs.argmax(1) == keras_probs.argmax(1)) >= 0.85
    assert np.abs(probs - keras_probs).max() < 0.15


def test_images_are_read_as_rgb_at_the_model_size(image_files, trained_cnn):
    _, data = trained_cnn
    batch = load_images(image_files, 32)
    assert batch.shape == (3, 32, 32, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[0], data.x_test[0])  # PNG at 32x32 is lossless
    assert np.all(batch[2, ..., 0] == batch[2, ..., 1])  # grey image -> equal RGB channels


def test_labels_and_top_k(device_dir, tmp_path):
    labels = read_labels(device_dir / "labels.txt", 10)
    assert labels[3] == "cat"
    assert read_labels(tmp_path / "absent.txt", 2) == ["class_0", "class_1"]
    with pytest.raises(RunnerError, match="lists 10 classes"):
        read_labels(device_dir / "labels.txt", 5)
    probs = np.array([0.1, 0.6, 0.05, 0.25])
    assert top_k(probs, ["a", "b", "c", "d"], 3) == [("b", 0.6), ("d", 0.25), ("a", 0.1)]


@pytest.mark.parametrize("model_file", ["model_int8.tflite", "model_float32.tflite"])
def test_runner_module_never_imports_tensorflow(device_dir, image_files, model_file):
    """``python -m cifar.inference.tflite_runner`` in a fresh interpreter; modules checked after."""
    code = textwrap.dedent(
        f"""
        import runpy, sys
        sys.argv = ["tflite_runner", {str(device_dir / model_file)!r},
                    *{[str(p) for p in image_files]!r}]
        try:
            runpy.run_module("cifar.inference.tflite_runner", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            assert not exc.code, exc.code
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print("HEAVY", heavy)
        """
    )
    out = _run(["-c", code])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "HEAVY []"
    predictions = lines[:-1]
    assert len(predictions) == 3
    for path, line in zip(image_files, predictions, strict=True):
        assert line.startswith(f"{path}: ") and len(line.split(", ")) == 3
    # The printed top-1 is the classifier's own answer for the same files.
    clf = TFLiteClassifier(device_dir / model_file)
    labels = read_labels(device_dir / "labels.txt", 10)
    best = clf.predict(load_images(image_files, 32)).argmax(1)
    assert [line.split(": ")[1].split(" ")[0] for line in predictions] == [labels[i] for i in best]


def test_runner_file_works_alone_on_a_device_folder(device_dir, image_files, tmp_path):
    """Copied next to the model with its decode rule, the project not importable: a device."""
    device = tmp_path / "pi"
    shutil.copytree(device_dir, device)
    shutil.copy(RUNNER, device / "tflite_runner.py")
    shutil.copy(IMAGE_FIT, device / "image_fit.py")
    # The venv has the project installed (editable): hide it, as on a device.
    code = textwrap.dedent(
        f"""
        import runpy, sys
        sys.modules["cifar"] = None
        sys.argv = ["tflite_runner.py", "model_int8.tflite", {str(image_files[1])!r}, "--top", "2"]
        try:
            runpy.run_path("tflite_runner.py", run_name="__main__")
        except SystemExit as exc:
            assert not exc.code, exc.code
        print("RULE", sys.modules["image_fit"].__file__)
        """
    )
    out = _run(["-c", code], cwd=device)
    assert out.returncode == 0, out.stderr
    prediction, rule = out.stdout.strip().splitlines()
    assert prediction.count(", ") == 1 and str(image_files[1]) in prediction
    assert rule == f"RULE {device / 'image_fit.py'}"


def test_runner_reports_bad_files_in_one_line(device_dir, image_files, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = _run(
        ["-m", "cifar.inference.tflite_runner", str(device_dir / "model_int8.tflite"), str(broken)]
    )
    assert out.returncode == 2 and "cannot read image" in out.stderr
    assert "Traceback" not in out.stderr
    out = _run(
        ["-m", "cifar.inference.tflite_runner", str(tmp_path / "none.tflite"), str(image_files[0])]
    )
    assert out.returncode == 2 and "does not exist" in out.stderr
    with pytest.raises(RunnerError, match="takes N x 32 x 32 x 3"):
        TFLiteClassifier(device_dir / "model_int8.tflite").predict(np.zeros((1, 8, 8, 3)))


def test_runner_decodes_photos_as_the_rest_of_the_project(tmp_path):
    """A sideways phone photo (EXIF orientation 6), not square: the same pixels both ways."""
    from cifar.imageio import load_image

    rng = np.random.default_rng(0)
    stored = Image.fromarray(rng.integers(0, 256, (48, 80, 3), np.uint8))  # 80 wide, 48 high
    stored.paste((255, 0, 0), (0, 0, 20, 48))  # a red band on the stored left edge
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the band ends on top
    path = tmp_path / "sideways.jpg"
    stored.save(path, "JPEG", exif=exif.tobytes(), quality=95)

    runner = load_images([path], 32)[0]
    np.testing.assert_array_equal(runner, load_image(path, size=32))
    assert runner[:4, :, 0].mean() > 200 and runner[:4, :, 1].mean() < 60  # upright: band on top
