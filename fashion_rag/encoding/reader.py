"""Reading a photo: garment type group, gender, base colour and pattern, each with a confidence.

Small heads sit on two kinds of features of the same photo:
- the image tower's features (the ImageNet-trained backbone's pooled features for the own
  encoder, CLIP's image embedding otherwise): what the garment is, its overall look;
- `pixel_features`: a colour histogram of the garment region. Product shots stand on white and
  uploads on beds and floors, so the region is what differs from the photo's border colour,
  weighted towards the centre.
Which features each head uses is chosen by scripts/train_reader.py on a dev split (it prints the
comparison); the choice is stored with the heads, and so is each head's temperature, fitted on dev
data so that a confidence of 80% is right about 80% of the time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ATTRIBUTES = ("type", "gender", "colour", "pattern")
PATTERNS = {"striped": "strip", "checked": "check", "printed": "print"}  # else "solid"
FEATURES = ("tower", "pixels", "both")
SCENES = ("studio", "photo")
UNSURE = 0.5  # a runner-up with at least this share of the top value's confidence is offered too
SIDE = 48  # pixel statistics are taken on a thumbnail: colour needs no detail
HUES, ACHROMATIC = 12, 4


def pattern_of(name: str) -> str:
    """A product's pattern from its name (the catalog has no pattern column)."""
    name = str(name).lower()
    return next((label for label, stem in PATTERNS.items() if stem in name), "solid")


def _border(rgb: np.ndarray) -> np.ndarray:
    """The pixels of a 2-pixel frame around the picture, (n, 3)."""
    return np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                           rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])


def thumbnail(image: Image.Image) -> np.ndarray:
    """The (SIDE, SIDE, 3) float RGB thumbnail that colour and scene are read from."""
    return np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR), dtype=np.float32)


def scene(rgb: np.ndarray) -> str:
    """"studio" for a product shot on a plain light background (99% of catalog shots), else
    "photo" (99.7% of the user photos; measured on 400 of each). The reader is sure of itself in
    the studio and must be humbler on photos, so each scene has its own calibration.
    `rgb`: the photo's thumbnail (`thumbnail`)."""
    border = _border(rgb)
    background = np.median(border, axis=0)
    plain = np.percentile(np.abs(border - background).max(1), 75) < 12
    return "studio" if background.min() > 220 and plain else "photo"


def garment_mask(rgb: np.ndarray) -> np.ndarray:
    """Weights (h, w) of the pixels that belong to the garment: far from the border's colour (the
    background), and towards the centre. Falls back to the centre when nothing stands out."""
    h, w, _ = rgb.shape
    background = np.median(_border(rgb), axis=0)
    distance = np.linalg.norm(rgb - background, axis=-1)
    yy, xx = np.mgrid[0:h, 0:w]
    centre = np.exp(-(((yy - h / 2) / (0.35 * h)) ** 2 + ((xx - w / 2) / (0.35 * w)) ** 2))
    foreground = np.clip((distance - 25.0) / 40.0, 0.0, 1.0)
    if foreground.mean() < 0.04:
        foreground = np.ones_like(foreground)
    return foreground * centre


def pixel_features(rgb: np.ndarray) -> np.ndarray:
    """A (HUES * 4 + ACHROMATIC,) histogram of the garment region of a thumbnail: hue x
    (saturation, value) for coloured pixels, brightness bins for black / grey / white ones. Sums to 1."""
    weights = garment_mask(rgb).ravel()
    hue, sat, val = _hsv(rgb.reshape(-1, 3) / 255.0)
    grey = (sat < 0.22) | (val < 0.18)
    bins = np.where(grey, HUES * 4 + np.minimum((val * ACHROMATIC).astype(int), ACHROMATIC - 1),
                    (np.minimum((hue * HUES).astype(int), HUES - 1) * 4
                     + (sat > 0.55) * 2 + (val > 0.6)))
    histogram = np.bincount(bins, weights=weights, minlength=HUES * 4 + ACHROMATIC)
    return (histogram / max(histogram.sum(), 1e-9)).astype(np.float32)


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """colorsys.rgb_to_hsv for an (n, 3) array in [0, 1]: hue, saturation, value in [0, 1]."""
    top, low = rgb.max(1), rgb.min(1)
    spread = np.maximum(top - low, 1e-9)
    r, g, b = rgb.T
    hue = np.select([top == r, top == g], [(g - b) / spread, 2.0 + (b - r) / spread], 4.0 + (r - g) / spread)
    hue = np.where(top == low, 0.0, (hue / 6.0) % 1.0)
    return hue, np.where(top > 0, (top - low) / np.maximum(top, 1e-9), 0.0), top


def calibration_error(confidences: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: how far stated confidence is from the accuracy it comes with,
    averaged over equal-width confidence bins weighted by their share of the photos."""
    confidences, correct = np.asarray(confidences, float), np.asarray(correct, float)
    which = np.minimum((confidences * bins).astype(int), bins - 1)
    return float(sum(abs(correct[which == b].mean() - confidences[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if (which == b).any()))


class Head(nn.Module):
    """One attribute: features -> class logits (a small MLP)."""

    def __init__(self, inputs: int, classes: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Dropout(0.2),
                                 nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def select(features: str, tower: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """The input a head was trained on: the tower's features, the pixel histogram, or both."""
    return {"tower": tower, "pixels": pixels, "both": torch.cat([tower, pixels], dim=-1)}[features]


@dataclass
class Reading:
    """Per attribute, (value, confidence) pairs, most likely first; `corrected` lists the
    attributes the shopper set by hand (confidence 1)."""
    values: dict[str, list[tuple[str, float]]]
    corrected: tuple[str, ...] = ()

    def top(self, attribute: str) -> tuple[str, float]:
        return self.values[attribute][0]

    def probability(self, attribute: str) -> dict[str, float]:
        return dict(self.values[attribute])

    def candidates(self, attribute: str) -> list[str]:
        """The top value, and the runner-up when it is nearly as likely ("sandals or shoes?")."""
        (first, p1), *rest = self.values[attribute]
        return [first] + [rest[0][0]] if rest and attribute not in self.corrected and rest[0][1] >= UNSURE * p1 \
            else [first]

    def summary(self) -> str:
        """'dress · Green · Women · solid' (the most likely value of each attribute)."""
        return " · ".join(self.top(a)[0] for a in ATTRIBUTES)

    def as_dict(self, top: int = 3) -> dict:
        return {a: [{"value": v, "confidence": round(c, 3)} for v, c in self.values[a][:top]]
                for a in ATTRIBUTES} | {"corrected": list(self.corrected)}


class PhotoReader:
    """Heads for type group, gender, colour and pattern over one encoder's image tower features;
    `temperatures[scene][attribute]` calibrate each head's confidences per scene (1: as trained)."""

    def __init__(self, dim: int, classes: dict[str, list[str]], features: dict[str, str],
                 temperatures: dict[str, dict[str, float]] | None = None):
        self.dim, self.classes, self.features = dim, classes, features
        self.temperatures = {s: {a: 1.0 for a in ATTRIBUTES} | (temperatures or {}).get(s, {}) for s in SCENES}
        pixels = HUES * 4 + ACHROMATIC
        width = {"tower": dim, "pixels": pixels, "both": dim + pixels}
        # ModuleDict keys must not shadow nn.Module attributes ("type" would), hence the prefix.
        self.heads = nn.ModuleDict({f"read_{a}": Head(width[features[a]], len(classes[a])) for a in ATTRIBUTES})

    def head(self, attribute: str) -> Head:
        return self.heads[f"read_{attribute}"]

    @torch.inference_mode()
    def logits(self, features: np.ndarray, pixels: np.ndarray) -> dict[str, torch.Tensor]:
        """(n, classes) raw scores per attribute for a batch of photos (before calibration)."""
        self.heads.eval()
        tower = torch.from_numpy(np.asarray(features, np.float32))
        pix = torch.from_numpy(np.asarray(pixels, np.float32))
        return {a: self.head(a)(select(self.features[a], tower, pix)) for a in ATTRIBUTES}

    def probabilities(self, features: np.ndarray, pixels: np.ndarray, scene: str = "photo") -> dict[str, np.ndarray]:
        """(n, classes) calibrated probabilities per attribute for a batch of photos of one scene."""
        return {a: torch.softmax(z / self.temperatures[scene][a], -1).numpy()
                for a, z in self.logits(features, pixels).items()}

    def read(self, features: np.ndarray, image: Image.Image) -> Reading:
        """`features`: the photo's image tower features (Encoder.look)."""
        rgb = thumbnail(image)
        probs = self.probabilities(features[None], pixel_features(rgb)[None], scene(rgb))
        return Reading({a: sorted(((v, float(p)) for v, p in zip(self.classes[a], probs[a][0])),
                                  key=lambda pair: -pair[1]) for a in ATTRIBUTES})

    def save(self, folder: Path, encoder_hash: str, info: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.heads.state_dict(), folder / "heads.pt")
        (folder / "config.json").write_text(json.dumps(
            {"dim": self.dim, "classes": self.classes, "features": self.features,
             "temperatures": self.temperatures, "encoder_hash": encoder_hash, **info}, indent=2))

    @classmethod
    def load(cls, folder: Path, encoder_hash: str) -> "PhotoReader | None":
        """The reader trained for these encoder weights, or None (then photos are not read)."""
        config_path = Path(folder) / "config.json"
        if not config_path.is_file():
            return None
        config = json.loads(config_path.read_text())
        if config.get("encoder_hash") != encoder_hash:
            return None
        reader = cls(config["dim"], config["classes"], config["features"], config.get("temperatures"))
        reader.heads.load_state_dict(torch.load(Path(folder) / "heads.pt", weights_only=True))
        reader.heads.eval()
        return reader
