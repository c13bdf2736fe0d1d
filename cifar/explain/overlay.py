"""A heatmap drawn over its image in a colour map: what ``cifar explain`` saves as PNG."""

from __future__ import annotations

import numpy as np

# Perceptually ordered and readable in grey print, unlike the "jet" of the Keras example.
COLORMAP = "inferno"
ALPHA = 0.6


def colorize(heatmap: np.ndarray, colormap: str = COLORMAP) -> np.ndarray:
    """uint8 H x W x 3 RGB of an H x W heatmap in [0, 1]."""
    from matplotlib import colormaps

    rgba = colormaps[colormap](np.clip(np.asarray(heatmap, np.float32), 0.0, 1.0))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def overlay_heatmap(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = ALPHA, colormap: str = COLORMAP
) -> np.ndarray:
    """uint8 H x W x 3: ``image`` blended with the coloured ``heatmap`` (same H x W).

    Where the heatmap is zero the photo shows through almost untouched, so the map marks
    places instead of hiding the picture.
    """
    image = np.asarray(image)
    heatmap = np.asarray(heatmap, np.float32)
    if image.shape[:2] != heatmap.shape:
        raise ValueError(f"image {image.shape[:2]} and heatmap {heatmap.shape} sizes differ")
    weight = alpha * np.clip(heatmap, 0.0, 1.0)[..., None]
    blended = (1.0 - weight) * image.astype(np.float32) + weight * colorize(heatmap, colormap)
    return np.clip(blended, 0, 255).round().astype(np.uint8)
