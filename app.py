"""Hugging Face Spaces entry point (Gradio SDK): serves the demo on the port Spaces expects.

The Space needs the model file in the repository (``models/*.tflite``, or set the ``CIFAR_MODEL``
variable in the Space settings) and this project installed from ``requirements.txt``; see
docs/serving.md. Example images are downloaded from CIFAR-10 by Keras at start-up.
"""

import os
import sys

from cifar.commands.serve import gradio_main

if __name__ == "__main__":
    port = os.environ.get("GRADIO_SERVER_PORT", "7860")
    args = ["--host", "0.0.0.0", "--port", port, "--download-examples", *sys.argv[1:]]
    sys.exit(gradio_main(args))
