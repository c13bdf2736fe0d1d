"""CIFAR-10 transfer learning with Keras 3: data, models, Trainer, evaluation and serving."""

__version__ = "0.1.0"
