"""What a logged request wants, in the catalog's own values, and how many items have them.

A search wants what its words and filters include (the guard's constraints) and, for a photo, what
the photo shows where the words leave it alone, if the reader is sure of it: a photo of a black
dress + "in red" wants a red dress. An outfit wants each slot the shopper named ("navy chinos"),
not the pieces added to complete the look. Supply counts items as the guard's filters do: a unisex
item counts for men and for women.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fashion_rag.data.catalog import ATTRIBUTES, type_group
from fashion_rag.retrieval.guard import Constraints
from fashion_rag.retrieval.tweak import DESCRIBE_AT

COLUMNS = ("gender", "articleType", "baseColour", "pattern", "usage", "season")  # in label order
READ_COLUMNS = {"type": "articleType", "gender": "gender", "colour": "baseColour"}  # reader -> catalog
Want = dict[str, tuple[str, ...]]  # column -> the values asked (any of them will do)


def search_want(entry: dict, supply: "Supply") -> Want:
    """The catalog values a logged search asks for: its constraints' includes, completed from the
    photo's confident reading for what the words neither name nor change."""
    want = {c: tuple(sorted(v)) for c, v in entry["asked"]["include"].items()}
    reading = entry.get("reading") or {}
    for attribute, column in READ_COLUMNS.items():
        values = reading.get(attribute)
        if not values or column in want or attribute in entry.get("changed", {}):
            continue
        top = values[0]
        if top["confidence"] >= DESCRIBE_AT:
            found = supply.group(top["value"]) if attribute == "type" else (top["value"],)
            if found:
                want[column] = found
    return want


def outfit_wants(entry: dict) -> list[Want]:
    """One want per slot the shopper named; the request's gender, usage and season apply to each."""
    shared = {"gender": (entry["asked"]["gender"],) if entry["asked"]["gender"] else (),
              "usage": tuple(entry["asked"]["usage"]), "season": tuple(entry["asked"]["season"])}
    return [{c: tuple(sorted(v)) for c, v in (shared | {"articleType": s["types"], "baseColour": s["colours"],
                                                       "pattern": s["patterns"]}).items() if v}
            for s in entry["slots"] if s["asked"]]


def label(want: Want) -> str:
    """'Women · Dresses · Red'; several values of one column: 'Casual Shoes or Sports Shoes', or
    for three or more types of one group (a photo's reading): 'trousers (8 types)'."""
    def values(column: str) -> str:
        kinds = want[column]
        groups = {type_group(k) for k in kinds} if column == "articleType" and len(kinds) > 2 else ()
        return f"{next(iter(groups))} ({len(kinds)} types)" if len(groups) == 1 else " or ".join(kinds)
    return " · ".join(values(c) for c in COLUMNS if want.get(c))


class Supply:
    """Counts the catalog items that meet a want or a search's constraints, column by column over
    cached value masks (fast enough to count every combination of a report)."""

    def __init__(self, items: pd.DataFrame):
        self.total = len(items)
        self._values = {c: items[c].astype(str).to_numpy() for c in ATTRIBUTES}
        self._names = items["productDisplayName"].astype(str).str.lower()
        kinds = sorted(set(items["articleType"]))
        self._types_of = {g: tuple(k for k in kinds if type_group(k) == g) for g in map(type_group, kinds)}
        self._masks: dict[tuple[str, str], np.ndarray] = {}

    def group(self, group: str) -> tuple[str, ...]:
        """The catalog's article types of a reader's type group ("dress" -> ("Dresses",))."""
        return self._types_of.get(group, ())

    def _has(self, column: str, value: str) -> np.ndarray:
        key = (column, value)
        if key not in self._masks:
            self._masks[key] = self._names.str.contains(value, regex=False).to_numpy() if column == "pattern" \
                else self._values[column] == value
        return self._masks[key]

    def mask(self, include: dict, exclude: dict | None = None) -> np.ndarray:
        """Which items meet the includes (any value per column) and none of the excludes."""
        where = Constraints({c: set(v) for c, v in include.items() if v},
                            {c: set(v) for c, v in (exclude or {}).items() if v}).where()
        keep = np.ones(self.total, bool)
        for column, values in where.include.items():
            keep &= self._any(column, values)
        for column, values in where.exclude.items():
            keep &= ~self._any(column, values)
        return keep

    def _any(self, column: str, values: set[str]) -> np.ndarray:
        if len(values) == 1:
            return self._has(column, next(iter(values)))
        return np.logical_or.reduce([self._has(column, v) for v in values])

    def count(self, include: dict, exclude: dict | None = None) -> int:
        return int(self.mask(include, exclude).sum())
