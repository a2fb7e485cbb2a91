"""Train the photo reader's heads (type group, gender, colour, pattern) on image embeddings.

Catalog items (not held out) teach every attribute; the user photos' `fit` part teaches the type
group, each photo counting as right for any group its label maps to (a "longsleeve" may be a
sweater, a top or a t-shirt). For each attribute, three inputs are compared on dev data (catalog
items with id % 10 == 5, the user photos' `dev` part, and the hand-labelled dev photos' colours):
the embedding, the garment-region pixel histogram, or both. The best is kept and refitted on all
training data. Held-out catalog items and validation photos are never used here.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fashion_rag import settings
from fashion_rag.data.catalog import TYPE_GROUPS, type_group
from fashion_rag.data.images import load_image
from fashion_rag.data.photos import load_photos
from fashion_rag.encoding.encoder import Encoder, load_encoder
from fashion_rag.encoding.reader import (
    ATTRIBUTES,
    FEATURES,
    PhotoReader,
    pattern_of,
    pixel_features,
    select,
)
from fashion_rag.encoding.train_encoder import cached
from fashion_rag.errors import StaleIndexError
from fashion_rag.retrieval.index import load_index

MIN_COLOUR_ITEMS = 25  # rarer colours are not predicted (too few examples to learn them) ...
MIN_COLOURS = 8  # ... unless that leaves fewer colours than this (a small catalog)
HAND_LABELS = settings.ROOT / "tests" / "data" / "upload_colours.csv"


def pixel_table(paths: list[str]) -> np.ndarray:
    return cached("pixelstats", [paths], lambda: torch.from_numpy(np.stack(
        [pixel_features(load_image(p)) for p in tqdm(paths, desc="colour statistics", unit="img")]))).numpy()


def photo_table(encoder: Encoder, photos: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    paths = list(photos["path"])
    embeddings = cached("photoemb", [paths, encoder.weights_hash],
                        lambda: torch.from_numpy(encoder.encode_images(paths, progress=True))).numpy()
    return embeddings, pixel_table(paths)


def hand_labelled(split: str) -> pd.DataFrame:
    """The hand-labelled upload photos of one split: path, colours (the acceptable catalog colours)."""
    table = pd.read_csv(HAND_LABELS)
    table = table[table["split"] == split]
    roots = {settings.USER_PHOTOS_DIR.name: settings.USER_PHOTOS_DIR,
             settings.USER_PHOTOS_EXTRA_DIR.name: settings.USER_PHOTOS_EXTRA_DIR}
    return pd.DataFrame({"path": [str(roots[f] / i) for f, i in zip(table["folder"], table["image"])],
                         "colours": [c.split("|") for c in table["colours"]]})


def targets(classes: list[str], allowed: list[list[str]]) -> torch.Tensor:
    """(n, classes) bool: the values each example may take (empty row: not labelled)."""
    column = {c: i for i, c in enumerate(classes)}
    mask = torch.zeros(len(allowed), len(classes), dtype=torch.bool)
    for row, values in enumerate(allowed):
        mask[row, [column[v] for v in values if v in column]] = True
    return mask


def fit(reader: PhotoReader, emb: torch.Tensor, pix: torch.Tensor, masks: dict[str, torch.Tensor],
        epochs: int, seed: int) -> PhotoReader:
    """Partial-label cross-entropy: -log of the probability mass on the allowed values."""
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(reader.heads.parameters(), lr=2e-3, weight_decay=1e-3)
    n = len(emb)
    reader.heads.train()
    for _ in range(epochs):
        for batch in torch.randperm(n).split(512):
            loss = 0.0
            for attribute in ATTRIBUTES:
                mask = masks[attribute][batch]
                labelled = mask.any(1)
                if not labelled.any():
                    continue
                logits = reader.head(attribute)(select(reader.features[attribute], emb[batch], pix[batch]))
                logits, mask = logits[labelled], mask[labelled]
                loss = loss + (torch.logsumexp(logits, 1)
                               - torch.logsumexp(logits.masked_fill(~mask, float("-inf")), 1)).mean()
            if not torch.is_tensor(loss):  # nothing labelled in this batch
                continue
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    reader.heads.eval()
    return reader


def accuracy(probs: np.ndarray, classes: list[str], allowed: list[list[str]]) -> float:
    """Top-1 accuracy: the most likely value is one of the allowed ones (unlabelled rows skipped)."""
    hits = [classes[int(np.argmax(p))] in values for p, values in zip(probs, allowed) if values]
    return float(np.mean(hits)) if hits else float("nan")


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR)
    p.add_argument("--out", type=Path, default=settings.READER_DIR)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-user-photos", action="store_true")
    args = p.parse_args(argv)
    started = time.time()
    index = load_index(args.index)
    encoder = load_encoder(index.model)
    if encoder.weights_hash != index.manifest["model_hash"]:
        raise StaleIndexError(f"The index in {args.index} was built with other encoder weights; rebuild it first.")
    items = index.items[~index.items["id"].map(settings.is_held_out)].reset_index(drop=True)
    rows = (~index.items["id"].map(settings.is_held_out)).to_numpy()
    item_emb, item_pix = index.vectors[rows, :index.dim], pixel_table(list(items["path"]))
    counts = items["baseColour"].value_counts()
    classes = {"type": sorted(set(TYPE_GROUPS) | {type_group(t) for t in items["articleType"]}),
               "gender": sorted(set(items["gender"])),
               "colour": sorted(c for c, n in counts.items()
                                if n >= min(MIN_COLOUR_ITEMS, counts.iloc[:MIN_COLOURS].min())),
               "pattern": ["checked", "printed", "solid", "striped"]}
    labels = {"type": [[type_group(t)] for t in items["articleType"]],
              "gender": [[g] for g in items["gender"]], "colour": [[c] for c in items["baseColour"]],
              "pattern": [[pattern_of(n)] for n in items["productDisplayName"]]}
    dev_items = (items["id"] % settings.HELD_OUT_MOD == 5).to_numpy()

    photos = {s: load_photos(s) for s in ("fit", "dev")} if not args.no_user_photos else {}
    photo_data = {s: photo_table(encoder, t) for s, t in photos.items() if len(t)}
    hand = hand_labelled("dev") if HAND_LABELS.is_file() and not args.no_user_photos else pd.DataFrame()
    hand_data = photo_table(encoder, hand) if len(hand) else None

    def stack(part: str):
        """Training examples (embeddings, pixels, per-attribute masks) of catalog rows + fit photos."""
        keep = ~dev_items if part == "fit" else np.ones(len(items), bool)
        emb, pix = [item_emb[keep]], [item_pix[keep]]
        allowed = {a: [v for v, k in zip(labels[a], keep) if k] for a in ATTRIBUTES}
        if "fit" in photo_data:
            emb.append(photo_data["fit"][0]), pix.append(photo_data["fit"][1])
            for a in ATTRIBUTES:
                allowed[a] += list(photos["fit"]["groups"]) if a == "type" else [[]] * len(photos["fit"])
        return (torch.from_numpy(np.concatenate(emb)), torch.from_numpy(np.concatenate(pix)),
                {a: targets(classes[a], allowed[a]) for a in ATTRIBUTES})

    emb, pix, masks = stack("fit")
    chosen, report = {}, []
    for attribute in ATTRIBUTES:
        scores = {}
        for features in FEATURES:
            trial = fit(PhotoReader(index.dim, classes, {a: features for a in ATTRIBUTES}), emb, pix,
                        {a: m if a == attribute else torch.zeros_like(m) for a, m in masks.items()},
                        args.epochs, args.seed)
            catalog = accuracy(trial.probabilities(item_emb[dev_items], item_pix[dev_items])[attribute],
                               classes[attribute], [v for v, d in zip(labels[attribute], dev_items) if d])
            uploads = float("nan")
            if attribute == "type" and "dev" in photo_data:
                uploads = accuracy(trial.probabilities(*photo_data["dev"])["type"], classes["type"],
                                   list(photos["dev"]["groups"]))
            if attribute == "colour" and hand_data is not None:
                uploads = accuracy(trial.probabilities(*hand_data)["colour"], classes["colour"],
                                   list(hand["colours"]))
            scores[features] = float(np.nanmean([catalog, uploads]))
            report.append(f"{attribute:<8} {features:<10} catalog dev {catalog:.3f}   uploads dev "
                          f"{'  -  ' if np.isnan(uploads) else f'{uploads:.3f}'}")
        chosen[attribute] = max(scores, key=scores.get)
    print("photo reader, top-1 accuracy on dev data by input:\n" + "\n".join(report))
    print("chosen inputs: " + ", ".join(f"{a}: {f}" for a, f in chosen.items()))

    emb, pix, masks = stack("all")
    reader = fit(PhotoReader(index.dim, classes, chosen), emb, pix, masks, args.epochs, args.seed)
    reader.save(args.out, encoder.weights_hash,
                {"dev_comparison": report, "minutes": round((time.time() - started) / 60, 1)})
    print(f"saved photo reader to {args.out}")
    return args.out
