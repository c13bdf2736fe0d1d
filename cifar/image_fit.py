"""The one rule that turns a decoded photo into a model's square RGB input: Pillow + NumPy only.

:mod:`cifar.imageio` (training folders, ``cifar predict``, the API, the demo) and the on-device
:mod:`cifar.inference.tflite_runner` both call :func:`fit_image`, so a photo gives the same
pixels on a server and on a device. This file imports nothing from the project and never
TensorFlow: a device copies it next to ``tflite_runner.py``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

__all__ = ["fit_image", "fit_square", "to_rgb", "upright_rgb"]


def fit_image(img: Image.Image, size: int | None = None) -> Image.Image:
    """An opened image decoded upright (EXIF orientation), in RGB, fitted to ``size`` squared.

    :func:`upright_rgb` then :func:`fit_square`. Pillow's decoding errors (``OSError``,
    ``ValueError``, decompression-bomb errors) propagate to the caller.
    """
    return fit_square(upright_rgb(img, size), size)


def upright_rgb(img: Image.Image, size: int | None = None) -> Image.Image:
    """Decode an opened image upright (EXIF orientation applied) in RGB, not resized.

    ``size`` lets a JPEG decode at a reduced scale whose short side is still >= ``size``.
    """
    if size is not None and img.format in ("JPEG", "MPO"):
        # Let libjpeg decode at 1/2..1/8 scale when the result is still >= size: much faster
        # for photos, and the bilinear resize of fit_square does the rest.
        img.draft("RGB", (size, size))
    img.load()
    return to_rgb(ImageOps.exif_transpose(img))


def fit_square(rgb: Image.Image, size: int | None) -> Image.Image:
    """``rgb`` with its short side resized to ``size`` and the long side centre-cropped.

    The short side is resized (bilinear, antialiased) and the long side centre-cropped, as
    ImageNet models are evaluated; a square image is simply resized. Cropping rather than
    squeezing keeps shapes undistorted, and rather than padding adds no borders the network
    never saw. None keeps the size.
    """
    if size is not None and rgb.size != (size, size):
        rgb = ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR)
    return rgb


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB of any Pillow mode: alpha composited on white, 16/32-bit scaled to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow's own I -> L conversion clips at 255 instead of scaling 16-bit values.
        values = np.asarray(img, dtype=np.float64)
        values = values / 257.0 if values.max(initial=0) > 255 else values
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
