"""Evaluation metrics against a hand-computed example, and the streamed Keras/runtime paths."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cifar.evaluation import compute_metrics, evaluate_and_save, file_prefix, predict_images

NAMES = ["cat", "dog", "ship", "frog"]
# Six images of three classes (frog has none, so it must count as F1 0 in the macro average).
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
PROBS = np.array(
    [
        [0.60, 0.20, 0.10, 0.10],  # cat  -> cat
        [0.05, 0.50, 0.25, 0.20],  # cat  -> dog; cat is not even in the top 3
        [0.10, 0.80, 0.05, 0.05],  # dog  -> dog
        [0.60, 0.30, 0.05, 0.05],  # dog  -> cat, the most confident error
        [0.10, 0.10, 0.70, 0.10],  # ship -> ship
        [0.20, 0.05, 0.70, 0.05],  # ship -> ship
    ]
)


def test_metrics_match_a_hand_computed_example():
    result = compute_metrics(Y_TRUE, PROBS, NAMES)
    h = result["headline"]
    assert h["n"] == 6
    assert h["accuracy"] == pytest.approx(4 / 6)
    assert h["top3_accuracy"] == pytest.approx(5 / 6)
    expected_loss = -(
        math.log(0.6) + math.log(0.05) + math.log(0.8) + math.log(0.3) + 2 * math.log(0.7)
    )
    assert h["loss"] == pytest.approx(expected_loss / 6)
    # cat: P = 1/2, R = 1/2; dog: P = 1/2, R = 1/2; ship: P = R = 1; frog: no support -> 0.
    assert [result["per_class"][n]["f1"] for n in NAMES] == pytest.approx([0.5, 0.5, 1.0, 0.0])
    assert [result["per_class"][n]["support"] for n in NAMES] == [2, 2, 2, 0]
    assert h["macro_f1"] == pytest.approx((0.5 + 0.5 + 1.0 + 0.0) / 4)
    assert h["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.5 + 2 * 1.0) / 6)
    assert result["confusion_matrix"] == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    assert result["confusion_matrix_normalized"][0] == pytest.approx([0.5, 0.5, 0, 0])
    assert result["confusion_matrix_normalized"][3] == [0, 0, 0, 0]
    assert result["confused_pairs"] == [
        {"a": "cat", "b": "dog", "count": 2, "a_as_b": 1, "b_as_a": 1}
    ]
    errors = result["most_confident_errors"]
    assert [(e["index"], e["true"], e["predicted"]) for e in errors] == [
        (3, "dog", "cat"),
        (1, "cat", "dog"),
    ]
    assert errors[0]["confidence"] == pytest.approx(0.6)
    assert errors[1]["true_class_probability"] == pytest.approx(0.05)
    assert "cat" in result["classification_report"]["text"]
    json.dumps(result)  # plain data, ready for evaluation.json


def test_loss_equals_keras_categorical_crossentropy():
    import keras

    one_hot = np.eye(len(NAMES))[Y_TRUE]
    keras_loss = float(np.mean(keras.losses.categorical_crossentropy(one_hot, PROBS)))
    assert compute_metrics(Y_TRUE, PROBS, NAMES)["headline"]["loss"] == pytest.approx(keras_loss)


def test_mismatched_shapes_are_a_clear_error():
    with pytest.raises(ValueError, match="do not match"):
        compute_metrics(Y_TRUE[:5], PROBS, NAMES)
    with pytest.raises(ValueError, match="do not match"):
        compute_metrics(Y_TRUE, PROBS[:, :3], NAMES)


def test_streamed_keras_evaluation_matches_keras_predict(trained_cnn, tmp_path):
    model, data = trained_cnn
    headline = evaluate_and_save(
        tmp_path, model, data.x_test, data.y_test, data.class_names, image_size=32, batch_size=48
    )
    reference = model.predict(data.x_test.astype("float32"), batch_size=128, verbose=0)
    assert headline["n"] == len(data.y_test)
    assert headline["accuracy"] == pytest.approx(float((reference.argmax(1) == data.y_test).mean()))
    assert headline["accuracy"] > 0.2  # trained for 3 epochs: clearly above chance
    for key in ("loss", "top3_accuracy", "macro_f1", "weighted_f1", "seconds"):
        assert isinstance(headline[key], float)

    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved["headline"] == headline
    cm = np.array(saved["confusion_matrix"])
    assert cm.sum() == len(data.y_test)
    assert np.trace(cm) == round(headline["accuracy"] * len(data.y_test))
    assert cm.sum(axis=1).tolist() == np.bincount(data.y_test, minlength=10).tolist()
    with np.load(tmp_path / "predictions.npz") as npz:
        np.testing.assert_allclose(npz["probabilities"], reference, atol=1e-5)
        worst = npz["worst_indices"]
        assert worst.tolist() == [e["index"] for e in saved["most_confident_errors"]]
        np.testing.assert_array_equal(npz["worst_images"], data.x_test[worst])
    assert all(reference[i].argmax() != data.y_test[i] for i in worst)


def test_resizing_model_streams_batches_at_its_input_size(trained_cnn):
    import keras

    model, data = trained_cnn
    # A 64x64-input model in front of the CNN: the pipeline must resize each batch to 64.
    inputs = keras.Input((64, 64, 3))
    big = keras.Model(inputs, model(keras.layers.Resizing(32, 32)(inputs)))
    probs = predict_images(big, data.x_test[:100], image_size=64, batch_size=32)
    assert probs.shape == (100, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_exported_tflite_file_gets_the_same_metrics(trained_cnn, tmp_path):
    import tensorflow as tf

    from cifar.inference.keras_model import build_inference_model
    from cifar.inference.runtimes import load_runtime

    model, data = trained_cnn
    build_inference_model(model).export(tmp_path / "saved", format="tf_saved_model", verbose=False)
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert())
    runtime = load_runtime(tflite)

    keras_h = evaluate_and_save(tmp_path, model, data.x_test, data.y_test, data.class_names, 32)
    prefix = file_prefix(tflite)
    lite_h = evaluate_and_save(
        tmp_path, runtime, data.x_test, data.y_test, data.class_names, 32, prefix=prefix
    )
    assert prefix == "model_tflite_"
    assert lite_h["model_kind"] == "tflite"
    assert (tmp_path / "model_tflite_evaluation.json").is_file()
    assert json.loads((tmp_path / "evaluation.json").read_text())["headline"] == keras_h
    # Same float32 graph in another runtime: at most one borderline image may flip.
    assert abs(lite_h["accuracy"] - keras_h["accuracy"]) <= 1 / keras_h["n"] + 1e-9
    assert lite_h["loss"] == pytest.approx(keras_h["loss"], abs=1e-3)


def test_objects_without_predict_are_rejected():
    with pytest.raises(TypeError, match="keras.Model or an object"):
        predict_images(object(), np.zeros((2, 32, 32, 3), np.uint8), 32)
