"""Train the gated composer on pseudo-triplets mined from catalog metadata.

A triplet is a reference item, a tweak naming one new attribute value ("in red", "for summer",
"formal", "for women") and the items that keep the reference's type and gender (unless the tweak
is about gender) and have the new value. The composer learns to move the reference's image vector
to where those items' image vectors are. Vectors come from the built index; held-out items
(id % 10 == 0) are neither references nor targets.
"""
from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from fashion_rag import settings
from fashion_rag.encoding.encoder import load_encoder
from fashion_rag.encoding.fusion import GatedComposer
from fashion_rag.errors import StaleIndexError
from fashion_rag.retrieval.index import load_index

TWEAKS = {  # the first wording of each is the one scripts/evaluate.py asks with
    "baseColour": ["in {v}", "same but {v}", "make it {v}", "{v} instead"],
    "season": ["for {v}", "{v} version", "something for {v}"],
    "usage": ["{v}", "for {v} wear", "more {v}"],
    "gender": ["for {v}", "{v}'s version"],
}


def tweak_text(attribute: str, value: str, variant: int = 0) -> str:
    templates = TWEAKS[attribute]
    return templates[variant % len(templates)].format(v=value.lower())


def mine(items: list[dict]) -> list[tuple[int, str, str, tuple]]:
    """All (reference row, attribute, new value, target key) whose target set is non-empty."""
    by_key = defaultdict(list)
    for row, item in enumerate(items):
        by_key[(item["articleType"], item["gender"])].append(row)
    triplets = []
    for row, item in enumerate(items):
        for attribute in TWEAKS:
            fixed = {"articleType": item["articleType"], "gender": item["gender"]}
            pool = [r for g, rows in by_key.items() if g[0] == item["articleType"]
                    and (attribute == "gender" or g[1] == item["gender"]) for r in rows]
            values = {items[r][attribute] for r in pool} - {item[attribute], "", "NA"}
            for value in sorted(values):  # a set's order changes with each process's hash seed
                triplets.append((row, attribute, value, tuple(sorted({**fixed, attribute: value}.items()))))
    return triplets


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR)
    p.add_argument("--out", type=Path, default=settings.COMPOSER_DIR)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed), random.seed(args.seed)
    started = time.time()
    index = load_index(args.index)
    encoder = load_encoder(index.model)
    if encoder.weights_hash != index.manifest["model_hash"]:
        raise StaleIndexError(f"The index in {args.index} was built with other encoder weights; rebuild it first.")
    train = ~index.items["id"].map(settings.is_held_out).to_numpy()
    items = index.items[train].to_dict("records")
    image_vecs = torch.from_numpy(index.vectors[train, :index.dim])
    triplets = mine(items)
    members = defaultdict(list)  # target key -> rows that satisfy it
    for row, item in enumerate(items):
        fixed = {"articleType": item["articleType"], "gender": item["gender"]}
        for attribute in TWEAKS:
            members[tuple(sorted({**fixed, attribute: item[attribute]}.items()))].append(row)
    texts = sorted({tweak_text(a, v, i) for _, a, v, _ in triplets for i in range(len(TWEAKS[a]))})
    text_vecs = dict(zip(texts, torch.from_numpy(encoder.encode_texts(texts))))

    composer = GatedComposer(index.dim)
    optimizer = torch.optim.AdamW(composer.parameters(), lr=1e-3, weight_decay=0.01)
    steps = args.epochs * ((len(triplets) + args.batch_size - 1) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps)
    for epoch in range(args.epochs):
        random.shuffle(triplets)
        bar = tqdm(range(0, len(triplets), args.batch_size), desc=f"composer epoch {epoch + 1}/{args.epochs}")
        for start in bar:
            batch = triplets[start:start + args.batch_size]
            refs = image_vecs[[row for row, *_ in batch]]
            tweaks = torch.stack([text_vecs[tweak_text(a, v, random.randrange(len(TWEAKS[a])))]
                                  for _, a, v, _ in batch])
            targets = image_vecs[[random.choice(members[key]) for *_, key in batch]]
            keys = np.array([hash(key) for *_, key in batch])
            logits = composer(refs, tweaks) @ F.normalize(targets, dim=-1).T / 0.05
            same = torch.from_numpy(keys[:, None] == keys[None, :]).float()
            loss = F.cross_entropy(logits, same / same.sum(1, keepdim=True))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    composer.eval().save(args.out, encoder.weights_hash,
                         {"triplets": len(triplets), "epochs": args.epochs,
                          "minutes": round((time.time() - started) / 60, 1)})
    print(f"saved composer to {args.out} ({len(triplets)} triplets)")
    return args.out
