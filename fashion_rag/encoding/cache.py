"""What training takes minutes to compute, kept in cache/ between runs: frozen text vectors,
pixel tensors, and the image tower's features per image file (shared by every training script)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from fashion_rag import settings
from fashion_rag.data.images import load_image
from fashion_rag.encoding.encoder import Encoder
from fashion_rag.encoding.encoder import squared as squared_picture

CACHE_DIR = settings.ROOT / "cache"
CHUNK = 512  # images looked at between two saves: a killed run keeps what it finished


def _key(parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cached(name: str, parts: list, build: Callable):
    """`build()`'s value, computed once per `parts` and kept as cache/<name>-<hash>.pt."""
    path = CACHE_DIR / f"{name}-{_key(parts)}.pt"
    if path.is_file():
        return torch.load(path)
    value = build()
    CACHE_DIR.mkdir(exist_ok=True)
    save_atomically(value, path)
    return value


def save_atomically(value, path: Path) -> None:
    """A run killed mid-write must not leave a file that breaks the next run."""
    partial = path.with_name(path.name + ".partial")
    torch.save(value, partial)
    partial.replace(path)


def image_features(encoder: Encoder, paths: list[str], progress: bool = True, squared: bool = False) -> np.ndarray:
    """(len(paths), feature_dim) tower features of image files; each file is looked at once per
    tower (`encoder.feature_key`), whichever script asks first. `squared`: of the files padded to
    a square (encoder.squared), the second view of a shopper's photo."""
    path = CACHE_DIR / f"features-{encoder.feature_key}{'-squared' if squared else ''}.pt"
    store = torch.load(path) if path.is_file() else {"paths": [], "features": torch.zeros(0, encoder.feature_dim)}
    row = {p: i for i, p in enumerate(store["paths"])}
    missing = list(dict.fromkeys(p for p in paths if p not in row))
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start:start + CHUNK]
        if progress:
            print(f"image features: {start + len(chunk)} of {len(missing)} new images", flush=True)
        images = [squared_picture(load_image(p)) for p in chunk] if squared else chunk
        features = torch.from_numpy(encoder.look_at_images(images, progress=progress)[1])
        row.update({p: len(store["paths"]) + i for i, p in enumerate(chunk)})
        store = {"paths": store["paths"] + chunk, "features": torch.cat([store["features"], features])}
        CACHE_DIR.mkdir(exist_ok=True)
        save_atomically(store, path)
    return store["features"][[row[p] for p in paths]].numpy()
