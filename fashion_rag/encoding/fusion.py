"""Fusion: an image vector and a text vector -> one query vector for the [image ; caption] index.

- image:  [img ; 0]                      photo against item photos
- text:   [txt ; 0]                      text against item photos (cross-modal)
- sum:    [norm((1-w) img + w txt) ; 0]  one point between the two
- concat: [(1-w) img ; w txt]            photo-photo similarity plus text-caption similarity;
                                         with no photo, [(1-w) txt ; w txt]: text against both
- gated:  [composer(img, txt) ; 0]       a learned edit of the photo vector by the text
- guided: as concat, with the text written from the photo reading plus the tweak (fashion_rag.retrieval.tweak);
          [img ; 0] when there is no text
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODES = ("image", "text", "sum", "concat", "gated", "guided")
NEEDS = {"image": ("image",), "text": ("text",), "sum": ("image", "text"),
         "concat": ("text",), "gated": ("image", "text"), "guided": ("image",)}


class GatedComposer(nn.Module):
    """Image + tweak text -> target image vector: a per-dimension gate keeps what the tweak leaves
    alone, a residual adds what it asks for (in the spirit of TIRG-style composers)."""

    def __init__(self, dim: int, hidden: int = 512):
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.mix = nn.Sequential(nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.gate = nn.Linear(hidden, dim)
        self.residual = nn.Linear(hidden, dim)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        h = self.mix(torch.cat([image, text], dim=-1))
        return nn.functional.normalize(torch.sigmoid(self.gate(h)) * image + self.residual(h), dim=-1)

    def save(self, folder: Path, encoder_hash: str, info: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), folder / "composer.pt")
        (folder / "config.json").write_text(json.dumps(
            {"dim": self.dim, "hidden": self.hidden, "encoder_hash": encoder_hash, **info}, indent=2))

    @classmethod
    def load(cls, folder: Path, encoder_hash: str) -> "GatedComposer | None":
        """The composer trained for these encoder weights, or None (then gated mode is unavailable)."""
        config_path = folder / "config.json"
        if not config_path.is_file():
            return None
        config = json.loads(config_path.read_text())
        if config.get("encoder_hash") != encoder_hash:
            return None
        composer = cls(config["dim"], config["hidden"])
        composer.load_state_dict(torch.load(folder / "composer.pt", weights_only=True))
        return composer.eval()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def query_vector(mode: str, image: np.ndarray | None, text: np.ndarray | None, weight: float = 0.5,
                 composer: GatedComposer | None = None) -> np.ndarray:
    """The (2 * dim,) float32 query for one mode; `weight` is the text's share in sum and concat."""
    missing = [part for part in NEEDS.get(mode, ()) if {"image": image, "text": text}[part] is None]
    if missing:
        raise ValueError(f"mode {mode!r} needs {' and '.join(NEEDS[mode])}")
    first = image if image is not None else text
    zeros = np.zeros_like(first)
    if mode == "image" or (mode == "guided" and text is None):
        halves = (image, zeros)
    elif mode == "text":
        halves = (text, zeros)
    elif mode == "sum":
        halves = (_unit((1 - weight) * image + weight * text), zeros)
    elif mode in ("concat", "guided"):
        halves = ((1 - weight) * (image if image is not None else text), weight * text)
    elif mode == "gated":
        if composer is None:
            raise ValueError("gated mode needs a trained composer (scripts/train_composer.py)")
        with torch.inference_mode():
            edited = composer(torch.from_numpy(image)[None], torch.from_numpy(text)[None])[0].numpy()
        halves = (edited, zeros)
    else:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    return np.concatenate(halves).astype(np.float32)
