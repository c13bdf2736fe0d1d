"""Decode any common image into RGB pixels, safely: the one image reader of the project.

Used by the image-folder loader, the :class:`cifar.inference.predictor.Predictor`, the Flask API
and the Gradio app, so an image gives the same pixels whichever way it comes in. Accepts bytes, a
path, a binary file object, a PIL image or a NumPy array; handles PNG, JPEG (incl. MPO), WebP, BMP,
GIF (first frame), TIFF and the HEIC/HEIF photos of phones (through ``pillow-heif``, registered
on first use); converts grayscale, palette, 16-bit and alpha images to RGB (transparent
pixels on white); applies the EXIF orientation; refuses empty, zero-pixel, truncated and oversized
(decompression-bomb) images with an :class:`ImageError` saying what is wrong.

Example:
    >>> pixels = load_image("cat.jpg", size=160)    # uint8 160 x 160 x 3, centre-cropped
    >>> batch = load_images([b"...png bytes...", "dog.webp"], size=32)
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from cifar.errors import CifarError
from cifar.image_fit import fit_square as _fit_square
from cifar.image_fit import upright_rgb

__all__ = [
    "FORMATS",
    "MAX_PIXELS",
    "ImageError",
    "ImageSource",
    "decode_rgb",
    "encode_png",
    "fit_square",
    "load_image",
    "load_images",
]

# Formats Pillow may open (its JPEG reader also opens the MPO JPEGs many phone cameras write;
# HEIF comes from the pillow-heif plugin, which applies the EXIF orientation while opening).
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "HEIF")
FORMAT_NAMES = "PNG, JPEG, WebP, BMP, GIF, TIFF or HEIC"
# 50 megapixels (a 48 MP phone photo fits): larger images are refused before decoding, since a
# small compressed file can claim a huge size and exhaust memory (a "decompression bomb").
MAX_PIXELS = 50_000_000

ImageSource = (
    bytes | bytearray | memoryview | str | os.PathLike | IO[bytes] | Image.Image | np.ndarray
)


class ImageError(CifarError):
    """An image could not be decoded or is unusable (empty, corrupt, too large, wrong format)."""


def load_image(
    source: ImageSource,
    size: int | None = None,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode ``source`` into uint8 H x W x 3 RGB pixels, resized to ``size`` squared if given.

    Args:
        source: encoded bytes, a file path, a binary file object, a PIL image, or a NumPy array
            (H x W, H x W x 1/3/4; uint8, or floats in 0..255).
        size: resize to ``size`` x ``size`` keeping the aspect ratio: the short side is
            resized (bilinear, antialiased) to ``size`` and the long side centre-cropped, as
            ImageNet models are evaluated; a square image is simply resized. Cropping rather
            than squeezing keeps shapes undistorted, and rather than padding adds no borders
            the network never saw. The same rule serves training folders and uploads, so a
            photo gives the same pixels either way. None keeps the size.
        name: how to call the image in error messages (default: the path, if any).
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).

    Returns:
        A uint8 array of shape (H, W, 3), or (size, size, 3).

    Raises:
        ImageError: the source is empty, not an image, truncated, zero-sized or too large.
    """
    return fit_square(decode_rgb(source, size, name, max_pixels), size)


def decode_rgb(
    source: ImageSource,
    size: int | None = None,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Decode ``source`` into an upright RGB PIL image (EXIF orientation applied), not resized.

    The first half of :func:`load_image`, for callers that also look at the whole picture
    before :func:`fit_square` crops it (the image-folder loader hashes it for near-copies).
    ``size`` lets a JPEG decode at a reduced scale whose short side is still >= ``size``.
    Raises ImageError as :func:`load_image` does.
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or str(source)
    label = f"{name}: " if name else ""
    if isinstance(source, np.ndarray):
        img = _from_array(source, label)
    elif isinstance(source, Image.Image):
        img = source
    else:
        img = _open(source, label, max_pixels)
    _check_size(img.size, label, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return upright_rgb(img, size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{label}image too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow's decoder failures
        raise ImageError(f"{label}truncated or corrupt image ({exc})") from exc


def fit_square(rgb: Image.Image, size: int | None) -> np.ndarray:
    """uint8 pixels of ``rgb``, short side resized to ``size`` and centre-cropped (None: as is).

    The resize rule of :func:`load_image`.
    """
    return np.asarray(_fit_square(rgb, size), dtype=np.uint8)


def load_images(
    sources: Sequence[ImageSource],
    size: int,
    names: Sequence[str] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode several images into one uint8 N x size x size x 3 batch (see :func:`load_image`)."""
    names = list(names) if names is not None else [None] * len(sources)
    if len(names) != len(sources):
        raise ValueError(f"{len(sources)} images but {len(names)} names")
    batch = np.empty((len(sources), size, size, 3), np.uint8)
    for i, (source, name) in enumerate(zip(sources, names, strict=True)):
        batch[i] = load_image(source, size=size, name=name, max_pixels=max_pixels)
    return batch


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of uint8 H x W x 3 (or H x W) pixels, e.g. a CIFAR-10 image."""
    out = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _open(source: ImageSource, label: str, max_pixels: int) -> Image.Image:
    """Open (header only) an encoded image from bytes, a path or a file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError(f"{label}empty image (0 bytes)")
        stream: IO[bytes] | str = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}no such image file")
        if path.stat().st_size == 0:
            raise ImageError(f"{label}empty image file (0 bytes)")
        # Read it whole: Pillow decodes lazily and must not keep the file open behind our back.
        stream = io.BytesIO(path.read_bytes())
    elif hasattr(source, "read"):
        data = source.read()
        if not data:
            raise ImageError(f"{label}empty image (0 bytes)")
        stream = io.BytesIO(data)
    else:
        raise ImageError(f"{label}cannot read an image from a {type(source).__name__}")
    Image.init()  # registers the WebP/MPO plugins that ``formats=`` looks up (idempotent)
    _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(stream, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"{label}image too large: {exc} (the limit is {max_pixels:,} pixels)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{label}not a recognised image: expected {FORMAT_NAMES} (or the header is corrupt, "
            "e.g. a zero-pixel size)"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{label}corrupt image header ({exc})") from exc


@functools.cache
def _register_heif() -> None:
    """Let Pillow open HEIC/HEIF (once; importing pillow-heif costs ~50 ms, so not at import)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _check_size(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{label}image has zero pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"{label}image too large: {width}x{height} = {width * height:,} pixels "
            f"(the limit is {max_pixels:,})"
        )


def _from_array(array: np.ndarray, label: str) -> Image.Image:
    """A PIL image of an H x W (x 1/3/4) array; floats are taken as 0..255."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageError(
            f"{label}expected an H x W, H x W x 3 or H x W x 4 image array, got shape {array.shape}"
        )
    if array.size == 0:
        raise ImageError(f"{label}image has zero pixels (shape {array.shape})")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            raise ImageError(f"{label}image array has non-numeric dtype {array.dtype}")
        array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return Image.fromarray(array)
