"""Configuration defaults, experiment files, overrides and validation messages."""

from __future__ import annotations

import pytest

from cifar.config import TrainConfig, load_config
from cifar.errors import ConfigError
from cifar.finetuning import FrozenBase, UnfreezeLast
from experiments import list_experiments


def test_defaults_are_the_reference_recipe():
    cfg = TrainConfig().validate()
    assert cfg.model.name == "mobilenet_v2" and cfg.model.weights == "imagenet"
    assert cfg.data.batch_size == 32 and cfg.data.val_fraction == 0.1
    frozen, finetune = cfg.phases
    assert isinstance(frozen.policy, FrozenBase)
    assert (frozen.optimizer, frozen.learning_rate, frozen.monitor) == ("adam", 1e-3, "val_loss")
    assert isinstance(finetune.policy, UnfreezeLast) and finetune.policy.n == 50
    assert (finetune.learning_rate, finetune.epochs) == (1e-5, 10)


def test_reference_experiment_file_equals_the_defaults():
    assert (
        load_config("mobilenetv2_finetune").to_dict()
        == TrainConfig(model=TrainConfig().model.__class__(input_size=160)).to_dict()
    )


@pytest.mark.parametrize("name", list_experiments())
def test_every_shipped_experiment_is_valid(name):
    assert load_config(name).name == name


def test_overrides_with_dotted_keys_and_list_indices():
    cfg = load_config(
        "smoke",
        [
            "data.batch_size=8",
            "phases.1.learning_rate=2e-4",
            "model.weights=none",
            "seed=7",
            "data.augment.flip=true",
            "data.data_dir=/tmp/x",
        ],
    )
    assert cfg.data.batch_size == 8 and cfg.phases[1].learning_rate == 2e-4
    assert cfg.model.weights is None and cfg.seed == 7 and cfg.data.augment.flip
    assert cfg.data.data_dir == "/tmp/x"


def test_override_phases_without_experiment_starts_from_reference():
    cfg = load_config(None, ["phases.0.epochs=2"])
    assert [p.epochs for p in cfg.phases] == [2, 10]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.bach_size=64"], "unknown key 'data.bach_size'"),
        (["data.batch_size=big"], "data.batch_size: expected int, got str 'big'"),
        (["phases.0.epochs=-1"], "phases.0.epochs: must be >= 1, got -1"),
        (
            ["model.name=resnet9000"],
            "unknown model 'resnet9000'; known models: convnext_tiny, custom_cnn, efficientnet_b0",
        ),
        (["phases.1.trainable=unfreeze_some"], "phases.1.trainable: unknown trainable policy"),
        (["phases.0.learning_rate=0"], "phases.0.learning_rate: must be > 0"),
        (["phases.5.epochs=1"], "'5' is not an index of a list of 2 items"),
        (["data.val_fraction=1.5"], "data.val_fraction: must be between 0 and 1"),
        (["seed"], "expected KEY=VALUE"),
        (["data.augment.flip=3"], "data.augment.flip: expected bool"),
        (["model.head_units=-1"], "model.head_units: must be >= 0 (0: a linear head)"),
    ],
)
def test_invalid_configuration_names_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config("smoke", overrides)
    assert message in str(err.value)


def test_unknown_experiment_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown experiment 'nope'; known: .*smoke"):
        load_config("nope")


def test_bad_toml_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("callbacks.progress:ProgresLogger", "has no attribute 'ProgresLogger'"),
        ("callbaks.progress:ProgressLogger", "No module named 'callbaks'"),
        ("callbacks.progress", "expected 'package.module:ClassName'"),
        ("cifar.config:TrainConfig", "is not a keras.callbacks.Callback subclass"),
    ],
)
def test_a_bad_extra_callback_is_refused_before_any_work(entry, message):
    """A typo in callbacks.extra fails in validate(), not minutes into the run."""
    with pytest.raises(ConfigError, match="callbacks.extra.0") as err:
        load_config("smoke", [f'callbacks.extra=["{entry}"]'])
    assert message in str(err.value) and entry in str(err.value)


def test_a_real_extra_callback_is_accepted():
    cfg = load_config("smoke", ['callbacks.extra=["keras.callbacks:TerminateOnNaN"]'])
    assert cfg.callbacks.extra == ["keras.callbacks:TerminateOnNaN"]
