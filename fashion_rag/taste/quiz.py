"""The style quiz: a few rounds of catalog items, as different from each other as the catalog
allows, for a new shopper to pick the ones they like; the picks become likes that seed the profile.

Each round covers some outfit roles; its PER_ROUND items are chosen greedily: the next item is
the one whose type group, colour family and usage have been shown least so far (ties broken by a
fixed shuffle), so a round spans kinds, colours and occasions without anyone picking by hand.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fashion_rag.data.catalog import type_group
from fashion_rag.data.wardrobe import ROLE_TYPES, family

QUIZ_ROUNDS = (("top", "one-piece"), ("bottom", "outerwear"), ("shoes", "bag", "accessory"))
PER_ROUND = 8


def quiz_round(items: pd.DataFrame, round_: int, gender: str = "") -> list[int]:
    """Row positions (in `items`) of the round's items, most diverse first."""
    kinds = [kind for role in QUIZ_ROUNDS[round_] for kind in ROLE_TYPES[role]]
    mask = items["articleType"].isin(kinds).to_numpy().copy()
    if gender:
        mask &= items["gender"].isin([gender, "Unisex"]).to_numpy()
    rows = np.flatnonzero(mask)
    rows = rows[np.random.default_rng(round_).permutation(len(rows))]
    keys = {"group": items["articleType"].map(type_group).to_numpy()[rows],
            "family": items["baseColour"].map(family).to_numpy()[rows],
            "usage": items["usage"].to_numpy()[rows]}
    shown = {name: {} for name in keys}
    chosen: list[int] = []
    for _ in range(min(PER_ROUND, len(rows))):
        novelty = sum(1.0 / (1 + np.array([shown[name].get(v, 0) for v in values])) for name, values in keys.items())
        novelty[chosen] = -1.0
        best = int(np.argmax(novelty))
        chosen.append(best)
        for name, values in keys.items():
            shown[name][values[best]] = shown[name].get(values[best], 0) + 1
    return [int(rows[i]) for i in chosen]
