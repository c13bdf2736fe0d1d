"""The one owner of a run folder's files: atomic writers, one reader with one error rule."""

from __future__ import annotations

import json

import pytest

from cifar import cli
from cifar.errors import CifarError, RunFileError
from cifar.run_files import (
    LABELS_FILE,
    RunFiles,
    read_json,
    read_labels,
    read_optional_json,
    read_test_files,
    run_dir_of,
    write_json,
    write_labels,
    write_test_files,
)


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2, "path": tmp_path})  # a Path is written as text
    assert json.loads(path.read_text()) == {"a": 2, "path": str(tmp_path)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_read_json_names_the_file_when_it_is_missing_corrupt_or_of_the_wrong_kind(tmp_path):
    path = tmp_path / "metrics.json"
    assert read_json(path, {}) == {}
    with pytest.raises(RunFileError, match="metrics.json does not exist"):
        read_json(path)
    path.write_text('{"test": {"accuracy": 0.9')  # cut short, as by a crash mid-write
    with pytest.raises(RunFileError, match="metrics.json.*was the run interrupted"):
        read_json(path, {})
    assert read_optional_json(path) is None
    path.write_text("[1, 2]")
    with pytest.raises(RunFileError, match="does not hold a JSON object"):
        read_json(path)
    assert read_json(path, kind=list) == [1, 2]
    assert issubclass(RunFileError, CifarError)  # the CLI prints it as one line


def test_labels_round_trip(tmp_path):
    assert read_labels(tmp_path / LABELS_FILE) is None
    write_labels(tmp_path, ["cat", "dog house"])
    (tmp_path / LABELS_FILE).write_text((tmp_path / LABELS_FILE).read_text() + "\n\n")
    assert read_labels(tmp_path / LABELS_FILE) == ["cat", "dog house"]


def test_test_files_round_trip(tmp_path):
    assert read_test_files(tmp_path) is None
    write_test_files(tmp_path, "../photos", [("cats/a.jpg", "cats"), ("dogs/b.png", "dogs")])
    root, files = read_test_files(tmp_path)
    assert str(root) == "../photos" and files == [("cats/a.jpg", "cats"), ("dogs/b.png", "dogs")]


def test_run_dir_of_a_model_file(tmp_path):
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    assert run_dir_of(run / "best_model.keras") is None  # no config.json: not a run
    (run / "config.json").write_text("{}")
    assert run_dir_of(run / "best_model.keras") == run
    assert run_dir_of(run / "export" / "model.onnx") == run
    assert run_dir_of(tmp_path / "model.onnx") is None


def test_a_corrupt_run_file_is_one_clear_error_but_optional_ones_are_skipped(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    write_json(run / "config.json", {"name": "x"})
    (run / "export" / "metadata.json").write_text("{not json")
    (run / "model_tflite_evaluation.json").write_text("")
    loaded = RunFiles.load(run)
    assert loaded.export_metadata == {} and loaded.extra_evaluations == {}
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(RunFileError, match="metrics.json"):
        RunFiles.load(run)
    assert cli.main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "metrics.json" in err and "Traceback" not in err
