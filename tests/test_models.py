"""Model registry, the two architectures and the freeze/unfreeze policies."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cifar.errors import ConfigError, ModelError
from cifar.finetuning import FinetuningPolicy, backbone_of, get_policy
from cifar.models import create_model, list_models, register_model


def _types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_unknown_model_lists_known_ones():
    with pytest.raises(
        ModelError,
        match="unknown model 'vgg'; known models: convnext_tiny, custom_cnn, efficientnet_b0, ",
    ):
        create_model("vgg")


def test_register_a_new_model_by_decorator():
    @register_model("test_tiny", default_input_size=32)
    def tiny(num_classes=10, input_size=32, **_):
        inputs = keras.Input((input_size, input_size, 3))
        x = keras.layers.GlobalAveragePooling2D()(inputs)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    assert "test_tiny" in list_models()
    assert create_model("test_tiny", num_classes=4).output_shape == (None, 4)


def test_custom_cnn_architecture():
    model = create_model("custom_cnn")
    assert model.input_shape == (None, 32, 32, 3)
    assert _types(model) == ["InputLayer", "Rescaling"] + ["Conv2D", "MaxPooling2D"] * 3 + [
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    dense, dropout, out = model.layers[-3:]
    assert (dense.units, dense.activation.__name__) == (256, "relu")
    assert dropout.rate == 0.5
    assert (out.units, out.activation.__name__) == (10, "softmax")


def test_mobilenet_head_and_scaling():
    model = create_model("mobilenet_v2", weights=None, input_size=64)
    assert model.input_shape == (None, 64, 64, 3)
    scale = model.get_layer("scale_minus1_1")
    assert np.allclose(scale(np.array([[0.0, 127.5, 255.0]])), [[-1, 0, 1]])
    head = model.layers[-4:]
    assert _types(model)[-4:] == ["GlobalAveragePooling2D", "Dense", "Dropout", "Dense"]
    assert (head[1].units, head[1].activation.__name__, head[2].rate) == (128, "relu", 0.3)
    assert (head[3].units, head[3].activation.__name__) == (10, "softmax")
    assert backbone_of(model).name == "backbone"


def test_head_units_zero_is_a_linear_head():
    model = create_model("mobilenet_v2", weights=None, input_size=32, head_units=0, dropout=0.2)
    assert _types(model)[-3:] == ["GlobalAveragePooling2D", "Dropout", "Dense"]
    assert model.layers[-2].rate == 0.2 and model.output_shape == (None, 10)
    # The calibration fold still finds the final softmax Dense layer.
    from cifar.calibration.fold import final_softmax_dense

    assert final_softmax_dense(model).name == "probabilities"


def test_imagenet_weights_load_from_file(weights_path):
    model = create_model("mobilenet_v2", weights=weights_path, input_size=96)
    kernel = backbone_of(model).get_layer("Conv1").kernel
    assert float(np.std(np.asarray(kernel))) > 0.05  # trained filters, not a fresh init


def test_imagenet_weights_from_env(monkeypatch, weights_path):
    monkeypatch.setenv("MOBILENETV2_WEIGHTS", weights_path)
    a = create_model("mobilenet_v2", input_size=64)
    b = create_model("mobilenet_v2", weights=weights_path, input_size=64)
    ka, kb = (backbone_of(m).get_layer("Conv1").kernel for m in (a, b))
    assert np.array_equal(np.asarray(ka), np.asarray(kb))


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        create_model("mobilenet_v2", weights=str(tmp_path / "w.h5"), input_size=64)


def _count(model):
    base = backbone_of(model)
    bn = [la for la in base.layers if isinstance(la, keras.layers.BatchNormalization)]
    return (
        sum(la.trainable for la in base.layers),
        sum(la.trainable for la in bn),
        sum(int(np.prod(w.shape)) for w in model.trainable_weights),
    )


def test_policies_freeze_exactly_what_they_claim():
    model = create_model("mobilenet_v2", weights=None, input_size=32)
    base = backbone_of(model)
    head_params = sum(
        int(np.prod(w.shape)) for la in model.layers[-4:] for w in la.trainable_weights
    )
    get_policy("frozen_base").apply(model)
    assert _count(model) == (0, 0, head_params)

    get_policy("unfreeze_last(50)").apply(model)
    last50 = base.layers[-50:]
    n_bn = sum(isinstance(la, keras.layers.BatchNormalization) for la in last50)
    trainable_layers, trainable_bn, params = _count(model)
    assert (trainable_layers, trainable_bn) == (50 - n_bn, 0)
    assert all(not la.trainable for la in base.layers[:-50])
    expected = head_params + sum(
        int(np.prod(w.shape))
        for la in last50
        if not isinstance(la, keras.layers.BatchNormalization)
        for w in la.weights
    )
    assert params == expected

    get_policy("all").apply(model)
    assert _count(model)[1] == 0  # BatchNorm of the pretrained base stays frozen
    get_policy("frozen_base").apply(model)  # and back: policies are idempotent, not cumulative
    assert _count(model) == (0, 0, head_params)


def test_batchnorm_stays_in_inference_mode_while_finetuning():
    model = create_model("mobilenet_v2", weights=None, input_size=32)
    get_policy("unfreeze_last(50)").apply(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    bn = backbone_of(model).get_layer("Conv_1_bn")
    before = np.asarray(bn.moving_mean).copy()
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.train_on_batch(x, np.eye(10)[np.arange(8)])
    assert np.array_equal(np.asarray(bn.moving_mean), before)


def test_train_bn_phase_lets_the_unfrozen_batchnorm_adapt():
    from cifar.phases import Phase

    model = create_model("mobilenet_v2", weights=None, input_size=32)
    phase = Phase(name="finetune", trainable="unfreeze_last(50)", train_bn=True)
    phase.policy.apply(model)
    assert get_policy("unfreeze_last(50)").train_bn is False  # the named policy is not changed
    base = backbone_of(model)
    head_bn, early_bn = base.get_layer("Conv_1_bn"), base.get_layer("bn_Conv1")
    assert head_bn.trainable and not early_bn.trainable
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    before = [np.asarray(bn.moving_mean).copy() for bn in (head_bn, early_bn)]
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.train_on_batch(x, np.eye(10)[np.arange(8)])
    assert not np.array_equal(np.asarray(head_bn.moving_mean), before[0])  # batch statistics
    assert np.array_equal(np.asarray(early_bn.moving_mean), before[1])  # frozen: inference mode


@pytest.mark.parametrize(
    ("trainable", "train_bn", "described"),
    [
        ("unfreeze_last(100)", True, "unfreeze_last(100), train_bn"),
        ("unfreeze_last(50)", False, "unfreeze_last(50)"),
        ("all", True, "all, train_bn"),
        ("frozen_base", True, "frozen_base"),  # the whole base is frozen: no BatchNorm trains
    ],
)
def test_policy_description_says_whether_batchnorm_trained(trainable, train_bn, described):
    """What metrics.json and config.json record, and it resolves back to the same policy."""
    from cifar.phases import Phase

    policy = Phase(trainable=trainable, train_bn=train_bn).policy
    assert policy.describe() == described
    again = get_policy(described)
    assert type(again) is type(policy) and again.describe() == described
    resumed = Phase(trainable=described, train_bn=train_bn).policy  # config.json read back
    assert resumed.describe() == described


def test_custom_policy_object_and_bad_names():
    class HeadOnly(FinetuningPolicy):
        def apply(self, model):
            self.make_trainable(model)
            self.freeze(model.layers[:-1])

    model = create_model("custom_cnn")
    get_policy(HeadOnly()).apply(model)
    assert len(model.trainable_weights) == 2
    with pytest.raises(ConfigError, match="known: all, frozen_base, unfreeze_last"):
        get_policy("unfreeze_most")
    with pytest.raises(ModelError, match="no 'backbone' layer"):
        get_policy("frozen_base").apply(model)


def test_unusable_weights_files_are_one_line_errors(tmp_path):
    """A corrupt file and another model's weights: ModelError naming the file, no traceback."""
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not an HDF5 file" * 64)
    with pytest.raises(ModelError, match=r"could not load MobileNetV2 weights from .*corrupt\.h5"):
        create_model("mobilenet_v2", weights=str(corrupt), input_size=32)
    other = tmp_path / "other.weights.h5"
    create_model("custom_cnn").save_weights(other)
    with pytest.raises(ModelError, match=r"could not load MobileNetV2 weights from .*other"):
        create_model("mobilenet_v2", weights=str(other), input_size=32)


@pytest.mark.parametrize("weights", [None, "file"])
def test_a_bug_building_the_model_keeps_its_traceback(tmp_path, weights_path, weights):
    """Only loading the weights file is the user's business; a broken constructor is ours."""
    from cifar.models.weights import build_with_weights, resolve_weights

    def broken(weights):  # a defect: an option MobileNetV2 does not have
        return keras.applications.MobileNetV2(
            input_shape=(32, 32, 3), include_top=False, weights=weights, depth_multiplyer=2
        )

    source = resolve_weights(weights_path if weights == "file" else None)
    with pytest.raises(TypeError, match="depth_multiplyer"):
        build_with_weights(broken, source, "MobileNetV2")
