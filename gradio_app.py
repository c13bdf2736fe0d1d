"""Gradio demo of the CIFAR-10 classifier: ``python gradio_app.py [--model] [--host] [--port]``.

Upload or paste an image for the top-3 classes, classify a batch, see the model's metrics.
Binds 127.0.0.1:7860 by default; ``--share`` (off by default) also opens a public link.
The app itself lives in :mod:`cifar.serving.demo`, its start-up in
:mod:`cifar.commands.serve` (also ``cifar serve gradio``).
"""

import sys

from cifar.commands.serve import gradio_main

if __name__ == "__main__":
    sys.exit(gradio_main())
