"""Reading a photo: garment type group, gender, base colour and pattern, each with a confidence.

Small heads sit on two kinds of features of the same photo:
- the image tower's features (the ImageNet-trained backbone's pooled features for the own
  encoder, CLIP's image embedding otherwise): what the garment is, its overall look;
- `pixel_features` (fashion_rag.encoding.colour): a colour histogram of the garment region of
  the whole photo.
Which features each head uses is chosen by scripts/train_reader.py on a dev split (it prints the
comparison); the choice is stored with the heads, and so is each head's calibration, fitted on dev
data so that a top value shown at 80% is right about 80% of the time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from fashion_rag.encoding.colour import HISTOGRAM, border, pixel_features, thumbnail

ATTRIBUTES = ("type", "gender", "colour", "pattern")
PATTERNS = {"striped": "strip", "checked": "check", "printed": "print"}  # else "solid"
FEATURES = ("tower", "pixels", "both")
SCENES = ("studio", "photo")
UNSURE = 0.5  # a runner-up with at least this share of the top value's confidence is offered too


def pattern_of(name: str) -> str:
    """A product's pattern from its name (the catalog has no pattern column)."""
    name = str(name).lower()
    return next((label for label, stem in PATTERNS.items() if stem in name), "solid")


def scene(rgb: np.ndarray) -> str:
    """"studio" for a product shot on a plain light background (99% of catalog shots), else
    "photo" (99.7% of the user photos; measured on 400 of each). The reader is sure of itself in
    the studio and must be humbler on photos, so each scene has its own calibration.
    `rgb`: the photo's thumbnail (`thumbnail`)."""
    frame = border(rgb)
    background = np.median(frame, axis=0)
    plain = np.percentile(np.abs(frame - background).max(1), 75) < 12
    return "studio" if background.min() > 220 and plain else "photo"


def calibration_error(confidences: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: how far stated confidence is from the accuracy it comes with,
    averaged over equal-width confidence bins weighted by their share of the photos."""
    confidences, correct = np.asarray(confidences, float), np.asarray(correct, float)
    which = np.minimum((confidences * bins).astype(int), bins - 1)
    return float(sum(abs(correct[which == b].mean() - confidences[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if (which == b).any()))


def log_odds(p: np.ndarray) -> np.ndarray:
    """logit(p), with p kept off 0 and 1 (a saturated softmax gives exactly 1.0)."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def top_label(probs: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Top-label calibration (Platt scaling of the top value's probability): the top value's
    confidence becomes sigmoid(slope * logit(p) + intercept), and the other values share the rest
    in their old proportions. Temperature scaling fits the probability of the labelled value(s);
    this fits what the page shows, how often the top value is right, which differs where a label
    admits several values (a "longsleeve" may be a sweater or a top). The order never changes:
    the top value keeps a little more than the runner-up's new share. (1, 0) changes nothing."""
    probs = np.asarray(probs, np.float64)
    order = np.argsort(-probs, axis=1)
    first = np.take_along_axis(probs, order[:, :1], 1)
    second = np.take_along_axis(probs, order[:, 1:2], 1) if probs.shape[1] > 1 else np.zeros_like(first)
    others = np.maximum(probs.sum(1, keepdims=True) - first, 1e-12)
    top = 1 / (1 + np.exp(-(slope * log_odds(first) + intercept)))
    top = np.maximum(top, second / (others + second) + 1e-4)  # + a hair: no tie with the runner-up
    out = probs * (1 - top) / others
    np.put_along_axis(out, order[:, :1], top, 1)
    return (out / out.sum(1, keepdims=True)).astype(np.float32)


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
    """Heads for type group, gender, colour and pattern over one encoder's image tower features,
    calibrated per scene and attribute: `temperatures` (1: as trained), then `top_maps`, the
    (slope, intercept) of `top_label` ((1, 0): none)."""

    def __init__(self, dim: int, classes: dict[str, list[str]], features: dict[str, str],
                 temperatures: dict[str, dict[str, float]] | None = None,
                 top_maps: dict[str, dict[str, list[float]]] | None = None):
        self.dim, self.classes, self.features = dim, classes, features
        self.temperatures = {s: {a: 1.0 for a in ATTRIBUTES} | (temperatures or {}).get(s, {}) for s in SCENES}
        self.top_maps = {s: {a: [1.0, 0.0] for a in ATTRIBUTES} | (top_maps or {}).get(s, {}) for s in SCENES}
        width = {"tower": dim, "pixels": HISTOGRAM, "both": dim + HISTOGRAM}
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

    def tempered(self, features: np.ndarray, pixels: np.ndarray, scene: str = "photo") -> dict[str, np.ndarray]:
        """(n, classes) probabilities per attribute after temperature scaling only."""
        return {a: torch.softmax(z / self.temperatures[scene][a], -1).numpy()
                for a, z in self.logits(features, pixels).items()}

    def probabilities(self, features: np.ndarray, pixels: np.ndarray, scene: str = "photo") -> dict[str, np.ndarray]:
        """(n, classes) calibrated probabilities per attribute for a batch of photos of one scene."""
        return {a: top_label(p, *self.top_maps[scene][a])
                for a, p in self.tempered(features, pixels, scene).items()}

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
             "temperatures": self.temperatures, "top_maps": self.top_maps, "encoder_hash": encoder_hash, **info},
            indent=2))

    @classmethod
    def load(cls, folder: Path, encoder_hash: str) -> "PhotoReader | None":
        """The reader trained for these encoder weights, or None (then photos are not read)."""
        config_path = Path(folder) / "config.json"
        if not config_path.is_file():
            return None
        config = json.loads(config_path.read_text())
        if config.get("encoder_hash") != encoder_hash:
            return None
        reader = cls(config["dim"], config["classes"], config["features"], config.get("temperatures"),
                     config.get("top_maps"))
        reader.heads.load_state_dict(torch.load(Path(folder) / "heads.pt", weights_only=True))
        reader.heads.eval()
        return reader
