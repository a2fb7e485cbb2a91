"""The real user photos (phone shots of single garments): labels, splits and type groups.

Two folders share one layout (`labels.csv`: image, label, split). Their `train` split is cut in
two by a hash of the file name: `fit` (what models are trained on) and `dev` (where settings such
as thresholds and weights are chosen). `validation` is only ever reported on.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd

from fashion_rag import settings
from fashion_rag.data.catalog import UPLOAD_GROUPS

DEV_SHARE = 6  # one train photo in six is kept for choosing settings


def load_photos(split: str, folders: list[Path] | None = None) -> pd.DataFrame:
    """Photos of `split` ("fit", "dev", "train" = both, or "validation") that map onto catalog
    types: columns path, label, groups (list of type groups), folder. Missing folders are skipped."""
    if split not in ("fit", "dev", "train", "validation"):
        raise ValueError(f"unknown split {split!r}")
    frames = []
    for folder in folders if folders is not None else [settings.USER_PHOTOS_DIR, settings.USER_PHOTOS_EXTRA_DIR]:
        labels = Path(folder) / "labels.csv"
        if not labels.is_file():
            continue
        table = pd.read_csv(labels)
        table = table[(table["split"] == ("validation" if split == "validation" else "train"))
                      & table["label"].isin(UPLOAD_GROUPS)]
        dev = table["image"].map(lambda name: zlib.crc32(name.encode()) % DEV_SHARE == 0)
        if split in ("fit", "dev"):
            table = table[dev == (split == "dev")]
        frames.append(pd.DataFrame({"path": [str(Path(folder) / i) for i in table["image"]],
                                    "label": table["label"].tolist(),
                                    "groups": [UPLOAD_GROUPS[lab] for lab in table["label"]],
                                    "folder": Path(folder).name}))
    columns = ["path", "label", "groups", "folder"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
