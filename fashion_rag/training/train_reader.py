"""Train the photo reader's heads (type group, gender, colour, pattern) on image tower features.

Catalog items (not held out) teach every attribute; the user photos' `fit` part teaches the type
group, each photo counting as right for any group its label maps to (a "longsleeve" may be a
sweater, a top or a t-shirt) and each seen in both of its views (encoder.views: as it comes, and
whole on a padded square; dev photos are read as the views' mean, as the app reads them), and
those of them labelled by hand (tests/data/upload_colours.csv,
upload_gender_pattern.csv) also teach colour, gender and pattern, each repeated HAND_REPEAT times
(chosen on dev: with 376 such photos, 0 / 1 / 3 / 5 / 10 copies read the 75 hand-labelled dev
uploads' colour 0.45 / 0.61 / 0.61 / 0.65 / 0.63, from the backbone and pixel statistics together;
re-checked on 225 dev uploads, 2 / 5 / 10 copies read colour 0.65 / 0.69 / 0.68, gender 0.78 /
0.78 / 0.80 and pattern 0.88 / 0.86 / 0.86: within noise of each other, so 5 stays).
For each attribute, three inputs are compared on dev data (catalog items with id % 10 == 5, the
user photos' `dev` part, and the hand-labelled dev photos):
the tower's features, the garment-region pixel histogram, or both. The best is kept; then each
head is calibrated on the same dev data, once for catalog shots and once for uploads
(`reader.scene`), so its confidences can be taken at their word in both: a temperature (the
likelihood of the labelled values), then a top-value map (`reader.top_label`: how often the value
shown first is right). Held-out catalog items and validation photos are never used.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from fashion_rag import settings
from fashion_rag.data.catalog import TYPE_GROUPS, type_group
from fashion_rag.data.images import load_image
from fashion_rag.data.photos import load_photos
from fashion_rag.encoding.encoder import Encoder, load_encoder, two_views
from fashion_rag.encoding.reader import (
    ATTRIBUTES,
    FEATURES,
    SCENES,
    PhotoReader,
    log_odds,
    pattern_of,
    select,
)
from fashion_rag.encoding.cache import cached, image_features
from fashion_rag.encoding.colour import pixel_features, thumbnail
from fashion_rag.errors import StaleIndexError
from fashion_rag.retrieval.index import load_index

MIN_COLOUR_ITEMS = 25  # rarer colours are not predicted (too few examples to learn them) ...
MIN_COLOURS = 8  # ... unless that leaves fewer colours than this (a small catalog)
HAND_LABELS = settings.ROOT / "tests" / "data" / "upload_colours.csv"
HAND_REPEAT = 5  # see --hand-repeat
HAND_LABELS_MORE = settings.ROOT / "tests" / "data" / "upload_gender_pattern.csv"  # the same photos


def pixel_table(paths: list[str]) -> np.ndarray:
    return cached("pixelstats", [paths], lambda: torch.from_numpy(np.stack(
        [pixel_features(thumbnail(load_image(p))) for p in tqdm(paths, desc="colour statistics", unit="img")]
    ))).numpy()


def photo_table(encoder: Encoder, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """What the reader reads of image files: (tower features, pixel histograms)."""
    return image_features(encoder, paths), pixel_table(paths)


def upload_views(encoder: Encoder, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Shopper photos' tower features on a padded square (the second of `views`), and as read:
    the mean of their views, as Encoder.look_at_photo gives it."""
    plain, padded = image_features(encoder, paths), image_features(encoder, paths, squared=True)
    twice = np.array([two_views(Image.open(p).size) for p in paths])
    return padded, np.where(twice[:, None], (plain + padded) / 2, plain).astype(np.float32)


def hand_labelled(split: str) -> pd.DataFrame:
    """The hand-labelled upload photos of one split: path, the labelling round (validation: the
    first 50 photos, then 150 more), and per attribute the acceptable values (colours, genders,
    patterns: lists)."""
    table = pd.read_csv(HAND_LABELS).merge(pd.read_csv(HAND_LABELS_MORE), on=["folder", "image", "split"])
    table = table[table["split"] == split]
    roots = {settings.USER_PHOTOS_DIR.name: settings.USER_PHOTOS_DIR,
             settings.USER_PHOTOS_EXTRA_DIR.name: settings.USER_PHOTOS_EXTRA_DIR}
    return pd.DataFrame({"path": [str(roots[f] / i) for f, i in zip(table["folder"], table["image"])],
                         "round": table["round"].to_numpy()}
                        | {f"{a}s": [v.split("|") for v in table[column]]
                           for a, column in (("colour", "colours"), ("gender", "gender"), ("pattern", "pattern"))})


def targets(classes: list[str], allowed: list[list[str]]) -> torch.Tensor:
    """(n, classes) bool: the values each example may take (empty row: not labelled)."""
    column = {c: i for i, c in enumerate(classes)}
    mask = torch.zeros(len(allowed), len(classes), dtype=torch.bool)
    for row, values in enumerate(allowed):
        mask[row, [column[v] for v in values if v in column]] = True
    return mask


def fit(dim: int, classes: dict[str, list[str]], features: dict[str, str], emb: torch.Tensor, pix: torch.Tensor,
        masks: dict[str, torch.Tensor], epochs: int, seed: int) -> PhotoReader:
    """A reader trained from `seed` (its heads' starting weights too, so a run is repeatable and
    the inputs compared on dev start alike), by partial-label cross-entropy: -log of the
    probability mass on the allowed values."""
    torch.manual_seed(seed)
    reader = PhotoReader(dim, classes, features)
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


def temperature(logits: torch.Tensor, mask: torch.Tensor) -> float:
    """The softmax temperature with the least partial-label NLL on dev examples (temperature
    scaling: it changes confidences, never which value comes first)."""
    logits, mask = logits[mask.any(1)], mask[mask.any(1)]

    def nll(t: float) -> float:
        return float((torch.logsumexp(logits / t, 1)
                      - torch.logsumexp((logits / t).masked_fill(~mask, float("-inf")), 1)).mean())
    return float(min(np.exp(np.linspace(np.log(0.25), np.log(25.0), 81)), key=nll))


def top_map(probs: np.ndarray, mask: torch.Tensor) -> list[float]:
    """(slope, intercept) for `top_label`: a logistic regression, on dev examples, of whether the
    top value is one of the allowed ones on its tempered probability's log-odds (kept near (1, 0)
    by a small penalty, so a few examples cannot swing it)."""
    labelled = mask.any(1).numpy()
    probs, mask = probs[labelled], mask[labelled]
    top = probs.argmax(1)
    right = mask[torch.arange(len(top)), torch.from_numpy(top)].double()
    odds = torch.from_numpy(log_odds(probs[np.arange(len(top)), top])).double()
    start = torch.tensor([1.0, 0.0], dtype=torch.float64)
    params = start.clone().requires_grad_()
    optimizer = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = (F.binary_cross_entropy_with_logits(params[0] * odds + params[1], right)
                 + 1e-3 * ((params - start) ** 2).sum())
        value.backward()
        return value
    optimizer.step(loss)
    return [round(float(v), 4) for v in params.detach()]


@dataclass
class TrainingData:
    """What the heads learn from (`tower`, `pix`, `masks`: one row per example) and the dev groups
    that choose their inputs and calibrate them: per attribute, (scene, tower, pixels, allowed
    values), catalog shots first, then uploads as the app reads them."""
    encoder: Encoder
    classes: dict[str, list[str]]
    tower: torch.Tensor
    pix: torch.Tensor
    masks: dict[str, torch.Tensor]
    dev: dict[str, list[tuple[str, np.ndarray, np.ndarray, list[list[str]]]]]


def training_data(index_dir: Path, user_photos: bool = True, hand_repeat: int = HAND_REPEAT) -> TrainingData:
    """The reader's training and dev data for the index's encoder (features cached in cache/)."""
    index = load_index(index_dir)
    encoder = load_encoder(index.model)
    if encoder.weights_hash != index.manifest["model_hash"]:
        raise StaleIndexError(f"The index in {index_dir} was built with other encoder weights; rebuild it first.")
    items = index.items[~index.items["id"].map(settings.is_held_out)].reset_index(drop=True)
    item_tower, item_pix = photo_table(encoder, list(items["path"]))
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

    photos = {s: load_photos(s) for s in ("fit", "dev")} if user_photos else {}
    photo_data = {s: photo_table(encoder, list(t["path"])) for s, t in photos.items() if len(t)}
    squares = {s: upload_views(encoder, list(photos[s]["path"])) for s in photo_data}
    hand = hand_labelled("dev") if HAND_LABELS.is_file() and user_photos else pd.DataFrame()

    # Per attribute, the dev groups that choose the inputs and calibrate each scene:
    # (scene, tower, pixels, allowed values); catalog shots first, then uploads as they are read.
    dev = {a: [("studio", item_tower[dev_items], item_pix[dev_items], [v for v, d in zip(labels[a], dev_items) if d])]
           for a in ATTRIBUTES}
    if "dev" in photo_data:
        dev["type"].append(("photo", squares["dev"][1], photo_data["dev"][1], list(photos["dev"]["groups"])))
    if len(hand):
        hand_pix = photo_table(encoder, list(hand["path"]))[1]
        hand_read = upload_views(encoder, list(hand["path"]))[1]
        for attribute in ("colour", "gender", "pattern"):
            dev[attribute].append(("photo", hand_read, hand_pix, list(hand[f"{attribute}s"])))

    # Training: catalog items, then each fit photo in both views (as it comes, padded square).
    keep = ~dev_items
    tower, pix = [item_tower[keep]], [item_pix[keep]]
    allowed = {a: [v for v, k in zip(labels[a], keep) if k] for a in ATTRIBUTES}
    if "fit" in photo_data:
        fit_views = (photo_data["fit"][0], squares["fit"][0])
        for view in fit_views:
            tower.append(view), pix.append(photo_data["fit"][1])
            for a in ATTRIBUTES:
                allowed[a] += list(photos["fit"]["groups"]) if a == "type" else [[]] * len(photos["fit"])
    hand_fit = hand_labelled("fit") if HAND_LABELS.is_file() and "fit" in photo_data else pd.DataFrame()
    if len(hand_fit) and hand_repeat:  # real photos' colour, gender and pattern, labelled by hand
        row_of = {path: row for row, path in enumerate(photos["fit"]["path"])}
        rows = [row_of[path] for path in hand_fit["path"]]
        for copy in range(hand_repeat):  # the views take turns
            tower.append(fit_views[copy % 2][rows]), pix.append(photo_data["fit"][1][rows])
            allowed["type"] += list(photos["fit"]["groups"].iloc[rows])
            for a in ("colour", "gender", "pattern"):
                allowed[a] += list(hand_fit[f"{a}s"])
    tower, pix = torch.from_numpy(np.concatenate(tower)), torch.from_numpy(np.concatenate(pix))
    masks = {a: targets(classes[a], allowed[a]) for a in ATTRIBUTES}
    return TrainingData(encoder, classes, tower, pix, masks, dev)


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR)
    p.add_argument("--out", type=Path, default=settings.READER_DIR)
    p.add_argument("--epochs", type=int, default=10)  # more overfits: uploads dev type and gender drop
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-user-photos", action="store_true")
    p.add_argument("--hand-repeat", type=int, default=HAND_REPEAT,
                   help="copies of each hand-labelled fit photo in training (0: none)")
    args = p.parse_args(argv)
    started = time.time()
    data = training_data(args.index, not args.no_user_photos, args.hand_repeat)
    encoder, classes, tower, pix, masks, dev = data.encoder, data.classes, data.tower, data.pix, data.masks, data.dev

    chosen, report = {}, []
    for attribute in ATTRIBUTES:
        scores = {}
        for features in FEATURES:
            trial = fit(encoder.feature_dim, classes, {a: features for a in ATTRIBUTES}, tower, pix,
                        {a: m if a == attribute else torch.zeros_like(m) for a, m in masks.items()},
                        args.epochs, args.seed)
            found = [accuracy(trial.probabilities(t, p)[attribute], classes[attribute], v)
                     for _, t, p, v in dev[attribute]]
            scores[features] = float(np.mean(found))
            report.append(f"{attribute:<8} {features:<7} catalog dev {found[0]:.3f}   uploads dev "
                          f"{f'{found[1]:.3f}' if len(found) > 1 else '  -  '}")
        chosen[attribute] = max(scores, key=scores.get)
    print("photo reader, top-1 accuracy on dev data by input:\n" + "\n".join(report))
    print("chosen inputs: " + ", ".join(f"{a}: {f}" for a, f in chosen.items()))

    reader = fit(encoder.feature_dim, classes, chosen, tower, pix, masks, args.epochs, args.seed)
    for attribute in ATTRIBUTES:
        for place in SCENES:  # a scene without dev data of its own takes the catalog's
            group = next((g for g in dev[attribute] if g[0] == place), dev[attribute][0])
            mask = targets(classes[attribute], group[3])
            reader.temperatures[place][attribute] = temperature(reader.logits(*group[1:3])[attribute], mask)
            reader.top_maps[place][attribute] = top_map(reader.tempered(*group[1:3], place)[attribute], mask)
    print("temperatures (fitted on dev): " + "; ".join(
        f"{place}: " + ", ".join(f"{a} {t:.2f}" for a, t in temps.items())
        for place, temps in reader.temperatures.items()))
    print("top-value maps, slope / intercept (fitted on dev): " + "; ".join(
        f"{place}: " + ", ".join(f"{a} {m[0]:.2f} / {m[1]:+.2f}" for a, m in maps.items())
        for place, maps in reader.top_maps.items()))
    reader.save(args.out, encoder.weights_hash,
                {"dev_comparison": report, "minutes": round((time.time() - started) / 60, 1)})
    print(f"saved photo reader to {args.out}")
    return args.out
