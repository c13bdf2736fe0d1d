"""Every Keras Applications backbone of the registry, with random weights at small sizes.

Per backbone: its input scaling against Keras's own ``preprocess_input``, the head, the cached
path (tail(prefix(x)) equals the full model), one training step per phase policy, one export.
The offline weights folder is checked with a generated file (wrong content refused, right
content loaded exactly as Keras loads its official file).
"""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from cifar.activations import split_model
from cifar.errors import ModelError
from cifar.finetuning import backbone_of, get_policy, leaf_layers
from cifar.models import create_model, list_models
from cifar.models.backbones import BACKBONES
from cifar.models.weights import WEIGHTS_DIR_ENV, file_digest

ALL = sorted(BACKBONES)
# Cheap representatives run in every test session; the rest are slow-marked.
FAST = {"mobilenet_v3_small", "efficientnetv2_b0"}


def _params(names, fast=FAST):
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in names]


def _images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _to_backbone_output(model, x):
    """Our model from raw pixels up to the backbone's output (scaling layer included)."""
    for layer in model.layers[1:]:
        x = layer(x, training=False) if layer.name == "backbone" else layer(x)
        if layer.name == "backbone":
            return np.asarray(x)
    raise AssertionError("no backbone layer")


def test_registry_has_every_backbone():
    assert set(ALL) <= set(list_models())
    assert {
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        *(f"efficientnet_b{i}" for i in range(4)),
        *(f"efficientnetv2_b{i}" for i in range(4)),
        "resnet50",
        "vgg16",
        "convnext_tiny",
    } <= set(ALL)
    families = {BACKBONES[name].family for name in [*EXPORTS, "mobilenet_v2"]}
    assert families == {b.family for b in BACKBONES.values()}  # every family is exported


@pytest.mark.parametrize("name", _params(ALL))
def test_backbone_scaling_head_and_cached_path(name):
    """Raw 0-255 in: equals Keras's application on ``preprocess_input``; the split is exact."""
    entry = BACKBONES[name]
    keras.utils.set_random_seed(0)
    model = create_model(name, weights=None, input_size=64, num_classes=7)
    base = backbone_of(model)
    assert model.input_shape == (None, 64, 64, 3)
    assert [type(la).__name__ for la in model.layers[-4:]] == [
        "GlobalAveragePooling2D",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert (model.layers[-3].units, model.layers[-2].rate, model.output_shape) == (
        128,
        0.3,
        (None, 7),
    )

    # Keras's documented use: application(preprocess_input(raw RGB)), same weights.
    reference = entry.constructor()(input_shape=(64, 64, 3), include_top=False, weights=None)
    reference.set_weights(base.get_weights())
    family = getattr(keras.applications, entry.family)
    x = _images(3, 64)
    expected = np.asarray(reference(family.preprocess_input(x.copy()), training=False))
    np.testing.assert_allclose(_to_backbone_output(model, x), expected, rtol=1e-4, atol=1e-4)

    # Cached path: a cut inside the backbone (residual and SE branches) and after the pooling.
    n = max(2, len(base.layers) // 3)
    get_policy(f"unfreeze_last({n})").apply(model)
    split = split_model(model)
    assert split is not None and split.cut not in ("pool", "backbone")
    full = np.asarray(model(x, training=False))
    tail = np.asarray(split.tail(split.prefix(x, training=False), training=False))
    np.testing.assert_allclose(tail, full, rtol=1e-5, atol=1e-6)
    assert {id(v) for v in split.tail.trainable_variables} == {
        id(v) for v in model.trainable_variables
    }
    get_policy("frozen_base").apply(model)
    split = split_model(model)
    assert split.cut == "pool"
    np.testing.assert_allclose(
        np.asarray(split.tail(split.prefix(x, training=False), training=False)),
        np.asarray(model(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def _paths(variables):
    return {v.path for v in variables}


def _bn_means(base):
    return [
        np.asarray(la.moving_mean).copy()
        for la in leaf_layers(base)
        if isinstance(la, keras.layers.BatchNormalization)
    ]


# One width of each family trains a step per policy: EfficientNet B1-B3 and EfficientNetV2
# B1-B3 are B0's code at other widths and depths (each costs about 20 s here), and every
# backbone is built and its cached path checked above.
STEP = [n for n in ALL if not n.endswith(("_b1", "_b2", "_b3"))]


@pytest.mark.parametrize("name", _params(STEP, fast={"mobilenet_v3_small"}))
def test_one_training_step_per_policy(name):
    """Each policy trains what it claims; frozen BatchNorm keeps its statistics."""
    keras.utils.set_random_seed(0)
    model = create_model(name, weights=None, input_size=32)
    base = backbone_of(model)
    x, y = _images(4, 32), np.eye(10)[np.arange(4)]
    bn_types = (keras.layers.BatchNormalization,)
    # The output layer's bias always gets a gradient; its kernel may not (see below).
    layers = {
        "head": model.get_layer("probabilities"),
        "first": next(la for la in base.layers if la.trainable_weights),
        "last": next(
            la for la in reversed(base.layers[-5:]) if la.weights and not isinstance(la, bn_types)
        ),
    }
    for policy in ("frozen_base", "unfreeze_last(5)", "all"):
        get_policy(policy).apply(model)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
        trains = {
            key: la.weights[0].path in _paths(model.trainable_weights) for key, la in layers.items()
        }
        assert trains == {
            "head": True,
            "first": policy == "all",
            "last": policy != "frozen_base",
        }, policy
        before = {key: np.asarray(la.weights[-1]).copy() for key, la in layers.items()}
        bn = _bn_means(base)
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss), policy
        # Random weights with frozen BatchNorm give some backbones vanishing activations (and
        # gradients), so only the output bias must move; what does not train must not move.
        assert not np.array_equal(np.asarray(layers["head"].weights[-1]), before["head"])
        for key, la in layers.items():
            if not trains[key]:
                np.testing.assert_array_equal(np.asarray(la.weights[-1]), before[key])
        for a, b in zip(bn, _bn_means(base), strict=True):
            np.testing.assert_array_equal(a, b)  # BatchNorm stays frozen under every policy


def _write_keras_h5(model, path):
    """Weights in the legacy h5 layout of Keras's official application files."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def test_weights_folder_refuses_a_file_with_the_wrong_hash(tmp_path, monkeypatch):
    from keras.src.applications import efficientnet_v2

    (tmp_path / "efficientnetv2-b0_notop.h5").write_bytes(b"not the official weights")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    expected = efficientnet_v2.WEIGHTS_HASHES["b0"][1]
    assert expected == "893217f2bb855e2983157299931e43ff"  # what Keras publishes for the file
    with pytest.raises(ModelError, match=rf"efficientnetv2-b0_notop\.h5.*expected {expected}"):
        create_model("efficientnetv2_b0", input_size=32)


def test_weights_folder_without_the_file_names_it_and_its_url(tmp_path):
    with pytest.raises(ModelError, match=r"has no efficientnetb0_notop\.h5.*https://"):
        create_model("efficientnet_b0", input_size=32, weights=str(tmp_path))


def test_weights_folder_loads_the_official_file_as_keras_does(tmp_path, monkeypatch):
    """A file with the published hash is loaded through Keras's own "imagenet" path.

    The official file cannot be downloaded here, so a generated file stands in for it and its
    md5 is patched into Keras's table, which is where the expected hash comes from.
    """
    from keras.src.applications import efficientnet

    keras.utils.set_random_seed(1)
    source = keras.applications.EfficientNetB0(
        input_shape=(32, 32, 3), include_top=False, weights=None
    )
    path = tmp_path / "efficientnetb0_notop.h5"
    _write_keras_h5(source, path)
    table = dict(efficientnet.WEIGHTS_HASHES)
    table["b0"] = (table["b0"][0], file_digest(path, "0" * 32))
    monkeypatch.setattr(efficientnet, "WEIGHTS_HASHES", table)

    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    for weights in ("imagenet", str(path)):  # the folder, or the official file by its path
        base = backbone_of(create_model("efficientnet_b0", input_size=32, weights=weights))
        for a, b in zip(source.weights, base.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        # Keras's ImageNet graph: one more rescaling layer than the random-weights graph.
        assert len(base.layers) == len(source.layers) + 1

    (tmp_path / "efficientnetb0_notop.h5").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelError, match="does not match the md5"):
        create_model("efficientnet_b0", input_size=32)


def test_unofficial_weights_file_loads_by_path(tmp_path):
    """A file under another name is the user's own weights: loaded by path, as before."""
    keras.utils.set_random_seed(2)
    source = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), include_top=False, weights=None
    )
    path = tmp_path / "my_backbone.h5"
    _write_keras_h5(source, path)
    base = backbone_of(create_model("mobilenet_v3_small", input_size=32, weights=str(path)))
    np.testing.assert_array_equal(np.asarray(base.weights[0]), np.asarray(source.weights[0]))


# One format per backbone family (B1-B3 are B0's code at other widths and depths; exporting
# each costs minutes), so that between them the formats meet every kind of backbone: caffe
# input layer, in-graph scaling, squeeze-and-excitation, LayerNorm/GELU. MobileNetV2 is
# exported in every format by test_exports.py; selective float16 (the slowest, a search) is
# also covered by test_precision.py, including the shared constants ConvNeXt's file has.
EXPORTS = {
    "mobilenet_v3_large": "tflite-int8",
    "efficientnet_b0": "tflite",
    "efficientnetv2_b0": "onnx",
    "resnet50": "tflite-dynamic",
    "vgg16": "tflite-int8",
    "convnext_tiny": "savedmodel",
}


@pytest.mark.parametrize("name", _params(sorted(EXPORTS), fast=set()))
def test_export_is_verified_in_its_runtime(name, tmp_path):
    from conftest import synthetic_data

    from exports import Exporter

    keras.utils.set_random_seed(0)
    model = create_model(name, weights=None, input_size=32)
    fmt = EXPORTS[name]
    result = Exporter(
        model, data=synthetic_data(40, 40), verify_n=40, representative_n=20, log=None
    ).export([fmt], out_dir=tmp_path)
    assert not result.failures and (tmp_path / result.artifacts[fmt].name).exists()
    row = next(v for v in result.verifications if v.format == fmt)
    assert row.n_images == 40 and row.agreement >= 0.6
    if fmt == "onnx":  # EfficientNetV2's Normalization constants are frozen, not extra inputs
        import onnx

        graph = onnx.load(str(tmp_path / result.artifacts[fmt].name)).graph
        assert [i.name for i in graph.input] == ["image"]
        assert [o.name for o in graph.output] == ["probabilities"]


def test_report_names_the_backbone_and_its_scaling():
    from cifar.report.sections.architecture import backbone_line

    (line,) = backbone_line("resnet50")
    assert "`keras.applications.ResNet50`" in line and "caffe style" in line
    assert "[-1, 1]" in backbone_line("mobilenet_v2")[0]
    assert backbone_line("custom_cnn") == []
