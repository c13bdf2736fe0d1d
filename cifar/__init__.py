"""Transfer learning for any photo set with Keras 3: data, models, Trainer, evaluation, serving."""

__version__ = "0.1.0"
