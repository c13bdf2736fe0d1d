"""Quiet start-up: TensorFlow/absl/CUDA/XNNPACK start-up lines are dropped, real lines kept."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import HAVE_WEIGHTS, ROOT, WEIGHTS, make_folder

from cifar.quiet import filtered_stderr, is_startup_line

# What a user saw before (see cifar/quiet.py): none of it may reach the terminal.
NOISE = re.compile(
    r"oneDNN custom operations|Could not find cuda drivers|cuInit|cudart_stub|port\.cc"
    r"|cpu_feature_guard|absl::InitializeLog|XNNPACK delegate|^[IWE]\d{4} \d\d:\d\d",
    re.MULTILINE,
)
STARTUP_SAMPLES = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796462256.648464   11821 port.cc:153] oneDNN custom operations are on. You "
    b"may see slightly different numerical results due to floating-point round-off errors.",
    b"I0000 00:00:1796462256.648763   11821 cudart_stub.cc:31] Could not find cuda drivers on "
    b"your machine, GPU will not be used.",
    b"E0000 00:00:1796462343.764732   12671 cuda_platform.cc:52] failed call to cuInit: "
    b"INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
REAL_LINES = [
    b"E0000 00:00:1796462343.764732   12671 op_kernel.cc:1857] OP_REQUIRES failed: OOM",
    b"UserWarning: `input_shape` is undefined or non-square",
    b"error: cat.png: not a recognised image",
]


def test_known_startup_lines_and_only_those_are_recognised():
    assert all(is_startup_line(line + b"\n") for line in STARTUP_SAMPLES)
    assert not any(is_startup_line(line) for line in REAL_LINES)


def test_filtered_stderr_drops_startup_lines_and_keeps_the_rest_in_order(capfd):
    with filtered_stderr():
        os.write(2, b"\n".join([STARTUP_SAMPLES[0], REAL_LINES[0], STARTUP_SAMPLES[1]]) + b"\n")
        os.write(2, b"python warning\n")
        os.write(2, STARTUP_SAMPLES[4] + b"\n" + REAL_LINES[2] + b"\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert err.splitlines() == [
        REAL_LINES[0].decode(),
        "python warning",
        REAL_LINES[2].decode(),
        "after",
    ]


def test_filtered_stderr_restores_the_descriptor_on_an_exception(capfd):
    with pytest.raises(ValueError), filtered_stderr():
        os.write(2, REAL_LINES[1] + b"\n")
        raise ValueError("boom")
    os.write(2, b"still here\n")
    assert capfd.readouterr().err.splitlines() == [REAL_LINES[1].decode(), "still here"]


def _cifar(args: list[str], cwd) -> subprocess.CompletedProcess:
    """``cifar ARGS`` started directly with a clean environment (no TF_CPP_MIN_LOG_LEVEL)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's package, as an installed one would be
    return subprocess.run(
        [sys.executable, "-m", "cifar.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _assert_quiet(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert NOISE.search(output) is None, output[-3000:]


def test_cifar_predict_on_the_shipped_tflite_is_quiet(tmp_path):
    from cifar.imageio import encode_png

    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_png(np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)))
    bad = tmp_path / "bad.png"
    bad.write_text("not a photo")
    model = ROOT / "models" / "model_float16.tflite"
    result = _cifar(["predict", str(model), str(photo), str(bad)], tmp_path)
    assert result.returncode == 2  # the bad photo, reported and not fatal
    _assert_quiet(result)
    assert result.stdout.startswith(f"{photo}: ") and result.stdout.count("\n") == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {bad}: not a recognised image")


def test_cifar_data_is_quiet(tmp_path):
    folder = make_folder(tmp_path / "photos", per_class=4)
    result = _cifar(["data", "--data-dir", str(folder)], tmp_path)
    assert result.returncode == 0, result.stderr
    _assert_quiet(result)
    assert "data: image folder photos" in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_WEIGHTS, reason=f"MobileNetV2 weights not found at {WEIGHTS}")
def test_cifar_train_smoke_is_quiet(tmp_path):
    folder = make_folder(tmp_path / "photos", per_class=5)
    result = _cifar(
        [
            "train",
            "smoke",
            "--data-dir",
            str(folder),
            "--set",
            "model.input_size=96",
            "--set",
            f'model.weights="{WEIGHTS}"',
            "--set",
            f'runs_dir="{tmp_path / "runs"}"',
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_quiet(result)
    assert "test accuracy" in result.stdout
