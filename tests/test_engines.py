"""Extraction engines for the activation cache: exact to float16 rounding, chosen by speed,
falling back to TensorFlow; cached phases run several steps per execution with exact epochs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import HAVE_WEIGHTS, WEIGHTS

from cifar.activations import engines, split_model
from cifar.activations.engines import FLOAT16_ROUNDING, choose_engine, relative_difference
from cifar.config import load_config
from cifar.data.pipeline import prepare_images
from cifar.errors import ConfigError
from cifar.execution import phase_steps_per_execution, steps_per_execution
from cifar.finetuning import get_policy
from cifar.models import create_model
from cifar.trainer import Trainer

WEIGHTS_OR_NONE = str(WEIGHTS) if HAVE_WEIGHTS else None


@pytest.fixture(scope="module")
def mobilenet():
    """MobileNetV2 at 64x64 (ImageNet weights when ../shared has them)."""
    return create_model("mobilenet_v2", input_size=64, weights=WEIGHTS_OR_NONE)


@pytest.fixture(scope="module")
def images(small_data):
    """64 real CIFAR-10 training images (synthetic without ../shared), resized to 64x64."""
    return prepare_images(small_data.x_train[:64], 64).numpy()


@pytest.mark.parametrize("policy", ["frozen_base", "unfreeze_last(100)"])
@pytest.mark.parametrize("name", ["litert", "onnxruntime"])
def test_engine_matches_tensorflow_within_float16_rounding(mobilenet, images, name, policy):
    get_policy(policy).apply(mobilenet)
    split = split_model(mobilenet)
    engine = choose_engine(split.prefix, images, name, log=lambda m: None)
    assert engine.name == name  # converted, ran, and was exact enough to be kept
    reference = engines.tensorflow_engine(split.prefix)(images)
    values = engine.run(images[:37])  # a partial last chunk too
    assert values.shape == (37, *split.activation_shape)
    difference = relative_difference(values, reference[:37])
    assert difference < FLOAT16_ROUNDING / 4, difference
    stored = reference.astype(np.float16).astype(np.float32)
    assert (
        relative_difference(values, reference[:37])
        <= relative_difference(stored, reference) + FLOAT16_ROUNDING / 4
    )


def test_a_training_step_on_either_cache_gives_the_same_loss(mobilenet, images, small_data):
    get_policy("frozen_base").apply(mobilenet)
    split = split_model(mobilenet)
    y = keras.utils.to_categorical(small_data.y_train[:64], 10)
    losses = {}
    for name in ("tensorflow", "litert", "onnxruntime"):
        engine = choose_engine(split.prefix, images, name, log=lambda m: None)
        assert engine.name == name
        cache = engine.run(images).astype(np.float16)  # what the cache stores
        keras.utils.set_random_seed(0)
        tail = keras.models.clone_model(split.tail)
        tail.set_weights(split.tail.get_weights())
        tail.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
        tail.train_on_batch(cache.astype(np.float32), y)
        losses[name] = float(tail.evaluate(cache.astype(np.float32), y, verbose=0))
    assert losses["litert"] == pytest.approx(losses["tensorflow"], abs=1e-3)
    assert losses["onnxruntime"] == pytest.approx(losses["tensorflow"], abs=1e-3)


def test_an_engine_that_is_not_exact_is_skipped(mobilenet, images, monkeypatch):
    get_policy("frozen_base").apply(mobilenet)
    split = split_model(mobilenet)
    exact = engines.onnxruntime_engine

    def noisy(prefix):
        run = exact(prefix)
        return lambda x: run(x) * (1 + 4 * FLOAT16_ROUNDING)

    monkeypatch.setattr(engines, "onnxruntime_engine", noisy)
    monkeypatch.setattr(engines, "litert_engine", lambda *a: 1 / 0)  # fails to convert
    messages = []
    engine = choose_engine(split.prefix, images, "auto", log=messages.append)
    assert engine.name == "tensorflow"
    assert any("engine litert unavailable (ZeroDivisionError" in m for m in messages)
    assert any("engine onnxruntime differs from TensorFlow" in m for m in messages)
    assert "extraction engine tensorflow" in messages[-1]


def test_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match="cache_engine: must be one of auto, litert"):
        load_config({"cache_engine": "tpu"})


def test_steps_per_execution_divides_the_epoch():
    assert steps_per_execution(1407, 64) == 21  # 45,000 images at batch 32
    assert steps_per_execution(1024, 64) == 64
    assert steps_per_execution(13, 64) == 13
    assert steps_per_execution(127, 64) == 1  # a prime: one step per call
    assert phase_steps_per_execution(0, 1407, cached=False) == 1
    assert phase_steps_per_execution(0, 1407, cached=True) == 21
    assert phase_steps_per_execution(7, 1407, cached=False) == 7


def test_cached_phase_runs_several_steps_per_execution_with_exact_epochs(tmp_path, small_data):
    class Recording(Trainer):
        def on_phase_begin(self, phase, index):
            self.executions = self.phase_inputs.model.steps_per_execution

    config = load_config(
        {
            "name": "spe",
            "runs_dir": str(tmp_path),
            "report": False,
            "data": {"batch_size": 32},
            "model": {"name": "mobilenet_v2", "input_size": 32, "weights": WEIGHTS_OR_NONE},
            "phases": [{"name": "frozen", "trainable": "frozen_base", "epochs": 3}],
            "callbacks": {"confusion_matrix_every": 0, "tensorboard": False},
        }
    )
    trainer = Recording(config, data=small_data.subset(train=1350, test=50))  # 1,215 train
    metrics = trainer.fit()
    steps = trainer.datasets.steps_per_epoch
    assert trainer.executions == steps_per_execution(steps, 64) == steps  # one call an epoch
    assert "activations of pool" in metrics["phases"][0]["cache"]
    assert int(trainer.phase_inputs.model.optimizer.iterations) == 3 * steps
    history = (trainer.run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 3  # one row per epoch, as with one step per call
