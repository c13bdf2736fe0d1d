"""Cached frozen activations: exactness, invalidation, fallback and corruption handling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HAVE_WEIGHTS, WEIGHTS

from cifar.activations import ActivationCache, split_model
from cifar.config import load_config
from cifar.finetuning import get_policy
from cifar.models import create_model
from cifar.trainer import Trainer

WEIGHTS_OR_NONE = str(WEIGHTS) if HAVE_WEIGHTS else None


def mnv2_config(tmp_path, phases, **top):
    return load_config(
        {
            "name": "cache",
            "runs_dir": str(tmp_path),
            "report": False,
            "data": {"batch_size": 32},
            "model": {"name": "mobilenet_v2", "input_size": 32, "weights": WEIGHTS_OR_NONE},
            "phases": phases,
            "callbacks": {"confusion_matrix_every": 0, "progress": False, "tensorboard": False},
            **top,
        }
    )


class Recording(Trainer):
    """Keeps the log lines so tests can see the cache decisions."""

    def log(self, message):
        self.messages = [*getattr(self, "messages", []), message]


FROZEN = [{"name": "frozen", "trainable": "frozen_base", "epochs": 1, "patience": 0}]
FINETUNE = [
    {"name": "frozen", "trainable": "frozen_base", "epochs": 1, "patience": 0},
    {
        "name": "finetune",
        "trainable": "unfreeze_last(50)",
        "learning_rate": 1e-4,
        "epochs": 1,
        "patience": 0,
    },
]


def _head_weights(trainer):
    return [
        np.asarray(w)
        for name in ("dense", "probabilities")
        for w in trainer.model.get_layer(name).weights
    ]


def test_cached_head_training_equals_end_to_end(tmp_path, small_data):
    data = small_data.subset(train=300, test=50)
    runs = {}
    for cache in ("off", "auto"):
        # TensorFlow extracts: this checks the cached path itself (the engines' closeness to
        # TensorFlow is tested in test_engines.py).
        cfg = mnv2_config(
            tmp_path / cache, FROZEN, cache=cache, cache_dtype="float32", cache_engine="tensorflow"
        )
        trainer = Recording(cfg, data=data)
        metrics = trainer.fit()
        runs[cache] = (trainer, metrics)
    plain, cached = runs["off"][0], runs["auto"][0]
    assert runs["off"][1]["phases"][0]["cache"] == "off"
    assert runs["auto"][1]["phases"][0]["cache"].startswith("activations of pool")
    for a, b in zip(_head_weights(plain), _head_weights(cached), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert runs["off"][1]["test"]["accuracy"] == pytest.approx(runs["auto"][1]["test"]["accuracy"])


def test_tail_on_cached_prefix_equals_full_model():
    model = create_model("mobilenet_v2", weights=WEIGHTS_OR_NONE, input_size=160)
    get_policy("unfreeze_last(50)").apply(model)
    split = split_model(model, fold_batchnorm=False)
    assert split.cut == "block_10_project_BN" and split.activation_shape == (10, 10, 96)
    x = np.random.default_rng(0).uniform(0, 255, (4, 160, 160, 3)).astype("float32")
    full = np.asarray(model(x, training=False))
    tail = np.asarray(split.tail(split.prefix(x, training=False), training=False))
    np.testing.assert_allclose(tail, full, atol=1e-6)
    # folding frozen BatchNorm reorders float32 arithmetic only
    split = split_model(model)
    folded = np.asarray(split.tail(split.prefix(x, training=False), training=False))
    np.testing.assert_allclose(folded, full, atol=1e-5)
    # the tail trains the full model's own variables
    full_ids = {id(v) for v in model.trainable_variables}
    assert {id(v) for v in split.tail.trainable_variables} == full_ids
    get_policy("frozen_base").apply(model)
    assert split_model(model).cut == "pool"
    get_policy("all").apply(model)
    assert split_model(model) is None  # nothing frozen at the input side


def test_tail_trains_batchnorm_as_the_full_model_does():
    """With train_bn the tail normalises with batch statistics exactly like the full model."""
    from cifar.finetuning import UnfreezeLast

    model = create_model("mobilenet_v2", weights=WEIGHTS_OR_NONE, input_size=96, dropout=0.0)
    UnfreezeLast(50, train_bn=True).apply(model)
    split = split_model(model)
    x = np.random.default_rng(1).uniform(0, 255, (4, 96, 96, 3)).astype("float32")
    cached = split.prefix(x, training=False)
    full = np.asarray(model(x, training=True))
    tail = np.asarray(split.tail(cached, training=True))
    np.testing.assert_allclose(tail, full, atol=1e-5)
    assert not np.allclose(full, np.asarray(model(x, training=False)), atol=1e-3)


class Snapshots(Recording):
    """Keeps the full model's weights (by path) at the start and the end of each phase."""

    def on_phase_begin(self, phase, index):
        self.trainable = {v.path for v in self.model.trainable_variables}
        self.before = self._weights()

    def on_phase_end(self, phase, index, summary):
        self.after = self._weights()

    def _weights(self):
        weights = {v.path: np.array(v) for v in self.model.weights}
        assert len(weights) == len(self.model.weights)
        return weights


def test_cached_finetune_updates_the_full_model(tmp_path, small_data):
    """The cached phase trains the full model's own variables: every trainable one of the
    unfrozen part moves, every frozen one (the cached prefix, frozen BatchNorm) stays."""
    data = small_data.subset(train=100, test=20)
    trainer = Snapshots(mnv2_config(tmp_path, FINETUNE, cache_dtype="float32"), data=data)
    metrics = trainer.fit()
    assert metrics["phases"][1]["cache"].startswith("activations of block_10_project_BN")
    before, after = trainer.before, trainer.after  # of the last phase: the cached one
    assert before.keys() == after.keys()
    trained = [path for path in before if path in trainer.trainable]
    frozen = [path for path in before if path not in trainer.trainable]
    assert len(trained) > 20 and len(frozen) > 100
    assert [path for path in trained if np.array_equal(before[path], after[path])] == []
    assert [path for path in frozen if not np.array_equal(before[path], after[path])] == []
    reloaded = __import__("keras").saving.load_model(trainer.run_dir / "best_model.keras")
    x = data.x_test[:8].astype("float32")
    np.testing.assert_allclose(reloaded(x), trainer.model(x, training=False), atol=1e-6)


def _other_weights(tmp_path):
    """A MobileNetV2 weights file unlike both the ImageNet file and the seeded random init."""
    import keras

    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None)
    base.set_weights([0.5 * w for w in base.get_weights()])
    path = tmp_path / "other.weights.h5"
    base.save_weights(path)
    return str(path)


def test_cache_reused_and_invalidated(tmp_path, small_data):
    data = small_data.subset(train=200, test=50)

    def cache_lines(images=data, **top):
        trainer = Recording(mnv2_config(tmp_path, FROZEN, **top), data=images)
        trainer.prepare()
        phase = trainer.config.phases[0]
        phase.policy.apply(trainer.model)
        trainer.build_phase_inputs(phase, 0)
        return [m for m in trainer.messages if m.startswith("cache:")]

    assert sum("wrote" in m for m in cache_lines()) == 2  # train and validation
    assert sum("reusing" in m for m in cache_lines()) == 2
    changed = {
        "split": cache_lines(data={"val_fraction": 0.2, "batch_size": 32}),
        "input size": cache_lines(
            model={"name": "mobilenet_v2", "input_size": 48, "weights": WEIGHTS_OR_NONE}
        ),
        "weights": cache_lines(
            model={"name": "mobilenet_v2", "input_size": 32, "weights": _other_weights(tmp_path)}
        ),
        "data": cache_lines(images=data.subset(train=150, test=50, seed=3)),
    }
    for what, lines in changed.items():
        assert sum("wrote" in m for m in lines) == 2, what


def test_auto_falls_back_when_augmenting(tmp_path, small_data):
    cfg = mnv2_config(
        tmp_path, FROZEN, data={"batch_size": 32, "augment": {"flip": True, "crop_padding": 2}}
    )
    trainer = Recording(cfg, data=small_data.subset(train=100, test=20))
    trainer.prepare()
    trainer.config.phases[0].policy.apply(trainer.model)
    inputs = trainer.build_phase_inputs(trainer.config.phases[0], 0)
    assert inputs.description == "off" and inputs.model is trainer.model
    assert any("training images are augmented" in m for m in trainer.messages)


def test_corrupted_or_truncated_cache_is_rebuilt(tmp_path):
    logs = []
    cache = ActivationCache(tmp_path, log=logs.append)
    calls = []

    def write(out):
        calls.append(1)
        out[:] = np.arange(out.size, dtype=out.dtype).reshape(out.shape)

    key = cache.make_key(a=1)
    first = np.array(cache.get_or_build(key, (50, 8), write))
    assert len(calls) == 1
    np.testing.assert_array_equal(cache.get_or_build(key, (50, 8), write), first)
    assert len(calls) == 1  # reused

    path = tmp_path / f"{key}.npy"
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the data: same size, wrong content
    path.write_bytes(bytes(raw))
    np.testing.assert_array_equal(cache.get_or_build(key, (50, 8), write), first)
    assert len(calls) == 2 and "corrupted" in logs[-2]

    path.write_bytes(path.read_bytes()[:300])  # truncated
    np.testing.assert_array_equal(cache.get_or_build(key, (50, 8), write), first)
    assert len(calls) == 3 and "unreadable" in logs[-2]

    (tmp_path / f"{key}.json").unlink()  # no checksum record: never trusted
    cache.get_or_build(key, (50, 8), write)
    assert len(calls) == 4 and "no matching checksum record" in logs[-2]


@pytest.mark.parametrize(
    ("augment", "size"),
    [
        ({"flip": True, "crop_padding": 4, "cached_views": 3}, 32),
        # the photo recipe's views: random-resized crops drawn from the stored images and
        # resized straight to a larger input, with colour changes
        ({"flip": True, "crop_scale": 0.4, "color": 0.2, "cached_views": 3}, 48),
    ],
)
def test_cached_augmented_views(tmp_path, small_data, augment, size):

    from cifar.data.augment import Augmenter
    from cifar.data.order import VIEW_STREAM, stream_key
    from cifar.data.pipeline import prepare_images

    cfg = mnv2_config(
        tmp_path,
        FROZEN,
        data={"batch_size": 16, "augment": augment},
        cache_dtype="float32",
        cache_engine="tensorflow",  # compared with the TensorFlow prefix below, to 1e-4
    )
    cfg.model.input_size = size
    trainer = Recording(cfg, data=small_data.subset(train=60, test=20))
    trainer.prepare()
    phase = trainer.config.phases[0]
    phase.policy.apply(trainer.model)
    inputs = trainer.build_phase_inputs(phase, 0)
    assert "3 augmented views per training image" in inputs.description
    assert inputs.model is not trainer.model
    d = trainer.datasets
    n = len(d.train_idx)
    # view v of image i is the prefix applied to that image augmented by the view's seed
    split = split_model(trainer.model)
    images = d.data.x_train[d.train_idx]  # one batch of 64 or fewer, as the Trainer drew it
    assert n <= 64
    for view in range(3):
        aug = Augmenter(trainer.config.data.augment, seed=trainer.config.seed)
        key = stream_key(trainer.config.seed, VIEW_STREAM, view, 0)
        expected = split.prefix(prepare_images(images, size, aug, key))
        cached = np.load(
            next(
                p
                for p in (tmp_path / ".cache").glob("*.npy")
                if np.load(p, mmap_mode="r").shape[0] == 3 * n
            ),
            mmap_mode="r",
        )
        np.testing.assert_allclose(
            cached[view * n : (view + 1) * n], expected, atol=1e-4, rtol=1e-4
        )
    # an epoch shows every image once, as one of its views; views vary across images
    labels = np.concatenate([np.argmax(y, 1) for _, y in inputs.train])
    assert len(labels) == n and sorted(labels) == sorted(d.data.y_train[d.train_idx])
    if size != 32:
        return
    cfg_mix = mnv2_config(tmp_path, FROZEN, data={"augment": {"mixup": 0.2, "cached_views": 3}})
    mixer = Recording(cfg_mix, data=small_data.subset(train=60, test=20))
    mixer.prepare()
    mixer.config.phases[0].policy.apply(mixer.model)
    assert mixer.build_phase_inputs(mixer.config.phases[0], 0).description == "off"
    assert any("MixUp/CutMix" in m for m in mixer.messages)


def unsplittable_model(size: int = 32):
    """A transfer-style model whose backbone Keras cannot cut where the analysis says.

    The backbone calls one layer twice; the second call reads the backbone input again, an
    edge the cut analysis (each operation's first call) does not see, so the tail it picks is
    disconnected from the backbone input.
    """
    import keras

    inp = keras.Input((size, size, 3))
    x = keras.layers.Reshape((size * size, 3))(inp)
    shared = keras.layers.ReLU(name="shared_relu")
    frozen = keras.layers.Dense(4, name="frozen_dense")
    frozen.trainable = False
    attention = keras.layers.MultiHeadAttention(num_heads=1, key_dim=4, name="attention")
    backbone = keras.Model(inp, attention(frozen(shared(x)), shared(x)), name="backbone")
    m_in = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling1D()(backbone(m_in))
    return keras.Model(m_in, keras.layers.Dense(10, activation="softmax")(pooled))


def test_a_backbone_that_cannot_be_split_trains_on_images(tmp_path, small_data):
    """The phase falls back to the plain path with one line saying why, the run goes on."""
    cfg = load_config(
        {
            "name": "unsplittable",
            "runs_dir": str(tmp_path),
            "report": False,
            "model": {"name": "custom_cnn", "weights": None},
            "phases": FROZEN,
            "callbacks": {"confusion_matrix_every": 0, "progress": False, "tensorboard": False},
        }
    )
    trainer = Recording(cfg, data=small_data.subset(train=100, test=20))
    trainer.prepare()
    trainer.model = unsplittable_model()
    inputs = trainer.build_phase_inputs(trainer.config.phases[0], 0)
    assert inputs.description == "off" and inputs.model is trainer.model and not inputs.cached
    why = [m for m in trainer.messages if m.startswith("cache: off")]
    assert len(why) == 1 and "cannot split the backbone at shared_relu" in why[0]
