"""Load any model file and predict: the one home of inference.

- :mod:`cifar.inference.runtimes`: ``load_runtime(path)`` for ``.keras``, SavedModel, ``.tflite``
  and ``.onnx`` files, all taking raw stored-size RGB images and returning probabilities.
- :mod:`cifar.inference.predictor`: the ``Predictor`` behind ``cifar predict``, the API and the
  demo (model lookup, class names, any image format in).
- :mod:`cifar.inference.keras_model`: a Keras model wrapped for inference (resize inside,
  ``training=False``) and its compiled predict step.
- :mod:`cifar.inference.tflite_runner`: the LiteRT runner a device copies with
  ``cifar/image_fit.py``, its only import from this project (no TensorFlow).

Nothing is imported here, so ``python -m cifar.inference.tflite_runner`` stays light.
"""
