"""The ``cifar`` command line: data summary, train validation, errors without tracebacks."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig

import pytest
from conftest import CIFAR_DIR, ROOT, requires_cifar

from cifar.cli import main


def test_train_list_shows_the_experiments(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out.split()
    assert {"custom_cnn", "mobilenetv2_frozen", "mobilenetv2_finetune", "smoke"} <= set(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "smoke", "--set", "phases.0.epochs=-2"], "phases.0.epochs: must be >= 1"),
        (["train", "smoke", "--set", "model.name=resnet"], "unknown model 'resnet'"),
        (["train", "smoke", "--set", "data.batchsize=3"], "unknown key 'data.batchsize'"),
        (["train", "nope"], "unknown experiment 'nope'"),
        (["train", "--data-dir", "/nonexistent/photos"], "does not exist"),
        (["train", "--resume", "/nonexistent/run"], "is not a run directory"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


@requires_cifar
def test_data_command_prints_summary_and_writes_grid(tmp_path, capsys):
    out_png = tmp_path / "grid.png"
    assert main(["data", "--data-dir", str(CIFAR_DIR), "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "5000" in out and "1000" in out and "50000" in out and "truck" in out
    assert out_png.stat().st_size > 20_000


def test_every_listed_command_is_available():
    """A command module that cannot be imported is a bug, never a silently missing command."""
    from cifar.cli import COMMANDS, build_parser

    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    assert list(sub.choices) == [name for name, _ in COMMANDS]


def test_console_script_is_installed():
    """The ``cifar`` script pip wrote beside this interpreter (``[project.scripts]``) runs."""
    scripts = sysconfig.get_path("scripts")
    script = shutil.which("cifar", path=scripts)
    assert script, f"no cifar console script in {scripts}: install the package (make setup)"
    result = subprocess.run(
        [script, "train", "--list"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "smoke" in result.stdout.split()
    help_text = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert help_text.returncode == 0 and "any photo set" in help_text.stdout


def test_data_command_decodes_at_the_configured_models_input_size(tmp_path, capsys, monkeypatch):
    """No --image-size: photos are decoded at the size the model of the config takes."""
    import dataclasses

    from conftest import make_folder

    from cifar.models import registry

    spec = registry.get_spec("mobilenet_v2")
    monkeypatch.setitem(
        registry._REGISTRY, "mobilenet_v2", dataclasses.replace(spec, default_input_size=40)
    )
    folder = make_folder(tmp_path / "photos")
    out_png = tmp_path / "out" / "grid.png"
    assert main(["data", "--folder", str(folder), "--out", str(out_png)]) == 0
    assert "at 40x40" in capsys.readouterr().out


def test_a_full_disk_is_one_line_not_a_traceback(tmp_path, capsys):
    """The sample grid lands on /dev/full (ENOSPC on every write): one line naming the path."""
    from conftest import make_folder

    folder = make_folder(tmp_path / "photos")
    out_png = tmp_path / "out" / "grid.png"
    out_png.parent.mkdir()
    out_png.symlink_to("/dev/full")
    assert main(["data", "--folder", str(folder), "--out", str(out_png), "--image-size", "32"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ") and "No space left on device" in err
    assert str(out_png) in err or "/dev/full" in err
