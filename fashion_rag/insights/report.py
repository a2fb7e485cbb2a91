"""A time window's demand against the catalog, from the demand log.

- asked: per attribute (types, colours, usages, seasons), the values asked most, beside their count
  in the window before (the trend)
- gaps: combinations asked at least MIN_ASKS times that fewer than THIN items match, ranked by
  unmet demand = requests x (1 - items / THIN): a request for something the catalog has none of
  counts whole, one with half of THIN items counts half, and a combination with THIN or more
  items is never a gap. A more specific ask that finds exactly the same items ("Women · Dresses ·
  Red" beside "Dresses · Red") is the same gap and adds to it. Each gap says how many of its
  requests ended without a like (refined or abandoned).
- supply: per attribute, each value's share of the demand naming the attribute (a request that
  would take any of n values gives each 1/n) against its share of the catalog's items
- photographed: what the photo reader saw in the shoppers' photos (its top value when sure of it)
- verdicts: likes and passes of result items, per attribute value
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fashion_rag.insights.store import DemandStore
from fashion_rag.insights.wants import COLUMNS, Supply, label
from fashion_rag.retrieval.tweak import DESCRIBE_AT

DAY = 86400.0
THIN = 20  # fewer matching items than this (under two pages of results) is thin supply
MIN_ASKS = 3  # requests before a combination can be a gap
TOP = 10  # rows per table
ATTRIBUTES = {"types": "articleType", "colours": "baseColour", "usages": "usage", "seasons": "season"}
NOT_SURE = "not sure"


@dataclass
class Report:
    since: float  # the window, seconds since the epoch: [since, until)
    until: float
    days: float
    totals: dict  # requests, searches, outfits, photos, unliked_share, likes, passes, refines, previous
    gaps: pd.DataFrame  # combination, requests, previous, items, unliked_share, unmet_demand, asked_as
    asked: dict[str, pd.DataFrame]  # per attribute: value, requests, previous, change
    supply: dict[str, pd.DataFrame]  # per attribute: value, requests (shared), demand_share, catalog_share, ratio
    photographed: dict[str, pd.DataFrame]  # per read attribute: value, photos, share
    verdicts: dict[str, pd.DataFrame]  # per attribute: value, likes, passes, like_rate


def build_report(store: DemandStore, items: pd.DataFrame, days: float = 7, until: float | None = None,
                 supply: Supply | None = None) -> Report:
    """The report for the `days` before `until` (default now), against the catalog `items`."""
    until = time.time() if until is None else until
    since, before = until - days * DAY, until - 2 * days * DAY
    totals = store.totals(since, until)
    unliked = totals.pop("unliked")
    totals = {**totals, "unliked_share": _share(unliked, totals["requests"])}
    totals = {k: totals[k] for k in ("requests", "searches", "outfits", "photos", "unliked_share", "likes",
                                     "passes", "refines")} | {"previous": store.count(before, since)}
    asks, earlier = store.asks(since, until), store.asks(before, since)
    return Report(since, until, days, totals, _gaps(asks, earlier, supply or Supply(items)),
                  {name: _asked(asks, earlier, c) for name, c in ATTRIBUTES.items()},
                  {name: _supply(asks, items, c) for name, c in ATTRIBUTES.items()},
                  {a: _photographed(seen) for a, seen in store.readings(since, until, DESCRIBE_AT, NOT_SURE).items()},
                  _verdicts(store.rated(since, until), items))


def _share(part: float, whole: float) -> float:
    return round(part / whole, 3) if whole else 0.0


def _values(asks: pd.DataFrame, column: str, shared: bool = False) -> pd.Series:
    """How many wants each value of a column would answer ("A|B": both), or with `shared`, each
    value's share of them (a want naming n values gives each 1/n)."""
    totals: dict[str, float] = defaultdict(float)
    for joined, count in asks[asks[column] != ""].groupby(column)["n"].sum().items():
        values = joined.split("|")
        for value in values:
            totals[value] += count / len(values) if shared else count
    return pd.Series(totals, dtype=float).sort_values(ascending=False)


def _asked(asks: pd.DataFrame, earlier: pd.DataFrame, column: str) -> pd.DataFrame:
    counts, before = _values(asks, column), _values(earlier, column)
    table = pd.DataFrame({"value": counts.index, "requests": counts.to_numpy(int)})
    table["previous"] = before.reindex(table["value"]).fillna(0).to_numpy(int)
    table["change"] = ((table["requests"] - table["previous"]) / table["previous"].replace(0, np.nan)).round(3)
    return _top(table, "requests")


def _top(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """The TOP rows with most `by`; ties in value order, so that a report reads the same twice."""
    return table.sort_values([by, "value"], ascending=[False, True]).head(TOP).reset_index(drop=True)


def _gaps(asks: pd.DataFrame, earlier: pd.DataFrame, supply: Supply) -> pd.DataFrame:
    columns = ["combination", "requests", "previous", "items", "unliked_share", "unmet_demand", "asked_as"]
    before = dict(zip(map(tuple, earlier[list(COLUMNS)].to_numpy(object)), earlier["n"]))
    # Thin combinations, the most general first, each with the items it finds.
    thin = []
    for key, n, unliked in zip(map(tuple, asks[list(COLUMNS)].to_numpy(object)), asks["n"], asks["unliked"]):
        want = {c: tuple(v.split("|")) for c, v in zip(COLUMNS, key) if v}
        mask = supply.mask(want) if want else None
        if mask is not None and np.count_nonzero(mask) < THIN:
            thin.append((key, set(want.items()), mask, n, unliked))
    thin.sort(key=lambda t: (len(t[1]), t[0]))
    roots: dict[bytes, list[dict]] = defaultdict(list)  # by the items they find
    for key, pairs, mask, n, unliked in thin:
        alike = roots[np.packbits(mask).tobytes()]
        root = next((r for r in alike if r["pairs"] <= pairs), None)
        if root is None:
            alike.append(root := {"pairs": pairs, "mask": mask, "keys": [], "n": 0, "unliked": 0})
        root["keys"].append(key)
        root["n"], root["unliked"] = root["n"] + n, root["unliked"] + unliked
    rows = []
    for root in (r for alike in roots.values() for r in alike):
        items = int(np.count_nonzero(root["mask"]))
        labels = [label({c: tuple(v.split("|")) for c, v in zip(COLUMNS, key) if v}) for key in root["keys"]]
        rows.append([labels[0], root["n"], int(sum(before.get(key, 0) for key in root["keys"])), items,
                     _share(root["unliked"], root["n"]), round(root["n"] * (1 - items / THIN), 1), labels[1:]])
    table = pd.DataFrame(rows, columns=columns)
    table = table[table["requests"] >= MIN_ASKS]
    return table.sort_values(["unmet_demand", "requests", "combination"], ascending=[False, False, True]) \
        .head(TOP).reset_index(drop=True)


def _supply(asks: pd.DataFrame, items: pd.DataFrame, column: str) -> pd.DataFrame:
    counts = _values(asks, column, shared=True)
    catalog = items[column].value_counts(normalize=True)
    table = pd.DataFrame({"value": counts.index, "requests": counts.round(1).to_numpy()})
    demand = pd.Series(counts.to_numpy()) / max(1.0, counts.sum())
    share = pd.Series(catalog.reindex(table["value"]).fillna(0).to_numpy())
    table["demand_share"], table["catalog_share"] = demand.round(3), share.round(4)
    table["ratio"] = (demand / share.replace(0, np.nan)).round(2)
    return table[table["requests"] >= MIN_ASKS].sort_values(["ratio", "value"], ascending=[False, True]) \
        .head(TOP).reset_index(drop=True)


def _photographed(seen: pd.Series) -> pd.DataFrame:
    table = pd.DataFrame({"value": seen.index.astype(str), "photos": seen.to_numpy(int)})
    table["share"] = (table["photos"] / max(1, int(seen.sum()))).round(3)
    return _top(table, "photos")


def _verdicts(rated: pd.DataFrame, items: pd.DataFrame) -> dict[str, pd.DataFrame]:
    joined = rated.merge(items[["id", *ATTRIBUTES.values()]], left_on="item_id", right_on="id")
    out = {}
    for name, column in ATTRIBUTES.items():
        table = joined.groupby(column)[["likes", "passes"]].sum().astype(int).reset_index()
        table = table.rename(columns={column: "value"})
        table["like_rate"] = (table["likes"] / (table["likes"] + table["passes"])).round(3)
        out[name] = _top(table.assign(rated=table["likes"] + table["passes"]), "rated").drop(columns="rated")
    return out
