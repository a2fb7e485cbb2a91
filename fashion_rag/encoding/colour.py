"""Colour statistics of the garment region of a picture: what a colour word is about.

Product shots stand on white and uploads on beds and floors, so the region is what differs from
the picture's border colour, weighted towards the centre. The histogram feeds the photo reader's
colour head and, beside the backbone's features, the image tower: ImageNet features are trained
to ignore colour shifts, and shoppers ask for colours.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SIDE = 48  # pixel statistics are taken on a thumbnail: colour needs no detail
HUES, ACHROMATIC = 12, 4
HISTOGRAM = HUES * 4 + ACHROMATIC


def border(rgb: np.ndarray) -> np.ndarray:
    """The pixels of a 2-pixel frame around the picture, (n, 3)."""
    return np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                           rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])


def thumbnail(image: Image.Image) -> np.ndarray:
    """The (SIDE, SIDE, 3) float RGB thumbnail that colour and scene are read from."""
    return np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR), dtype=np.float32)


def garment_mask(rgb: np.ndarray) -> np.ndarray:
    """Weights (h, w) of the pixels that belong to the garment: far from the border's colour (the
    background), and towards the centre. Falls back to the centre when nothing stands out."""
    h, w, _ = rgb.shape
    background = np.median(border(rgb), axis=0)
    distance = np.linalg.norm(rgb - background, axis=-1)
    yy, xx = np.mgrid[0:h, 0:w]
    centre = np.exp(-(((yy - h / 2) / (0.35 * h)) ** 2 + ((xx - w / 2) / (0.35 * w)) ** 2))
    foreground = np.clip((distance - 25.0) / 40.0, 0.0, 1.0)
    if foreground.mean() < 0.04:
        foreground = np.ones_like(foreground)
    return foreground * centre


def pixel_features(rgb: np.ndarray) -> np.ndarray:
    """A (HISTOGRAM,) histogram of the garment region of a thumbnail: hue x
    (saturation, value) for coloured pixels, brightness bins for black / grey / white ones. Sums to 1."""
    weights = garment_mask(rgb).ravel()
    hue, sat, val = _hsv(rgb.reshape(-1, 3) / 255.0)
    grey = (sat < 0.22) | (val < 0.18)
    bins = np.where(grey, HUES * 4 + np.minimum((val * ACHROMATIC).astype(int), ACHROMATIC - 1),
                    (np.minimum((hue * HUES).astype(int), HUES - 1) * 4
                     + (sat > 0.55) * 2 + (val > 0.6)))
    histogram = np.bincount(bins, weights=weights, minlength=HISTOGRAM)
    return (histogram / max(histogram.sum(), 1e-9)).astype(np.float32)


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """colorsys.rgb_to_hsv for an (n, 3) array in [0, 1]: hue, saturation, value in [0, 1]."""
    top, low = rgb.max(1), rgb.min(1)
    spread = np.maximum(top - low, 1e-9)
    r, g, b = rgb.T
    hue = np.select([top == r, top == g], [(g - b) / spread, 2.0 + (b - r) / spread], 4.0 + (r - g) / spread)
    hue = np.where(top == low, 0.0, (hue / 6.0) % 1.0)
    return hue, np.where(top > 0, (top - low) / np.maximum(top, 1e-9), 0.0), top


def pixel_colours(pixels: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """(n, HISTOGRAM) `pixel_features` of a batch of model inputs (normalised with `mean` and
    `std`), so the tower reads colour from exactly the pixels the backbone sees."""
    rgb = pixels.float() * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    small = F.interpolate(rgb.clamp(0, 1) * 255, size=(SIDE, SIDE), mode="area").permute(0, 2, 3, 1).numpy()
    return torch.from_numpy(np.stack([pixel_features(p) for p in small])) if len(small) else torch.zeros(0, HISTOGRAM)
