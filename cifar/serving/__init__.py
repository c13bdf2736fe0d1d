"""Serving a trained model: the Flask prediction API (:mod:`cifar.serving.api`) and the Gradio
demo (:mod:`cifar.serving.demo`), both over one :class:`cifar.inference.predictor.Predictor`.

The limits live here so the CLI can show them without importing Flask or Gradio.
"""

DEFAULT_MAX_BATCH = 32  # images in one POST /predict/batch
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # largest request body (larger: 413)
