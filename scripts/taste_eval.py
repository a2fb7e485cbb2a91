"""Simulated shoppers with a hidden taste, through five rounds of search + like/pass. Used by
scripts/evaluate.py; `python scripts/taste_eval.py [--split dev|test]` runs it alone.

Each shopper has a taste (a colour family, a usage, or a pattern) and a neutral query (words, or
a photo of a plain shirt (dev) or tee (test) from the held-out items). Each round they search (k=10) with their
profile, then like the results that match their taste and pass the rest. Printed, per variant:
- P@10 taste at round 1 and 5: the share of the top 10 that matches the taste; "best": the most
  the catalog allows (taste-matching items of the query's type group, at most 10, / 10);
- type P@10: the share of the query's own type group (query relevance must not drop);
- ILD: intra-list diversity, mean pairwise 1 - cosine of the items' vectors in the top 10;
- repeats: the share of a round's items that the previous round showed too;
- p50 ms of a search with a profile.
"without" searches with no profile (the same list every round). "crowd" compares, for a shopper
with one round of feedback, round-2 P@10 with and without the collaborative signal, after ten
shoppers of the same taste went through all five rounds. The dev split (queries and tastes)
chose fashion_rag.taste.ranking's weights; test is only reported.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag import settings
from fashion_rag.data.catalog import type_group  # noqa: E402
from fashion_rag.data.wardrobe import family  # noqa: E402
from fashion_rag.engine import Engine, load_engine  # noqa: E402
from fashion_rag.taste import ranking as taste  # noqa: E402

ROUNDS, K = 5, 10
TASTES = {
    "dev": {"blues": lambda i: i["baseColour"] in ("Blue", "Navy Blue", "Teal", "Turquoise Blue"),
            "formal": lambda i: i["usage"] == "Formal",
            "greens": lambda i: family(i["baseColour"]) == "green",
            "dark neutrals": lambda i: i["baseColour"] in ("Black", "Grey", "Charcoal", "Grey Melange"),
            "yellows": lambda i: family(i["baseColour"]) == "yellow",
            "pinks": lambda i: family(i["baseColour"]) == "pink",
            "printed": lambda i: "print" in i["productDisplayName"].lower()},
    "test": {"reds": lambda i: family(i["baseColour"]) == "red",
             "whites": lambda i: i["baseColour"] in ("White", "Off White", "Cream", "Beige"),
             "sporty": lambda i: i["usage"] == "Sports",
             "striped or checked": lambda i: any(s in i["productDisplayName"].lower() for s in ("strip", "check"))},
}
QUERIES = {"dev": [("a shirt for men", "shirt"), ("tops for women", "top"), ("sandals", "sandals"),
                   ("PHOTO", "shirt")],
           "test": [("t-shirts for men", "t-shirt"), ("casual shoes", "shoes"), ("PHOTO", "t-shirt")]}
PHOTO_OF = {"dev": "Shirts", "test": "Tshirts"}  # the photo query: a held-out plain item of this type


def plain_photo(engine: Engine, split: str) -> str:
    """A held-out plain (solid) item's photo: the split's photo query."""
    items = engine.items
    pick = items[(items["articleType"] == PHOTO_OF[split]) & items["id"].map(settings.is_held_out)
                 & items["productDisplayName"].str.contains("Solid")].iloc[0]
    return pick["path"]


def run_shopper(engine: Engine, profile: str | None, query: tuple[str, str], likes, rounds: int = ROUNDS,
                photo: str = "") -> list[dict]:
    """Rounds of search + feedback; per round the shown items and timings."""
    text, group = query
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        hits = engine.search(image=photo if text == "PHOTO" else None, text=None if text == "PHOTO" else text,
                             k=K, profile=profile)
        took = time.perf_counter() - started
        out.append({"ids": [h.item_id for h in hits], "taste": np.mean([likes(h.item) for h in hits]),
                    "type": np.mean([type_group(h.item["articleType"]) == group for h in hits]), "ms": 1000 * took})
        if profile:
            for hit in hits:
                engine.feedback(profile, hit.item_id, bool(likes(hit.item)), source="simulated")
    return out


def ceiling(engine: Engine, query: tuple[str, str], likes) -> float:
    """The best P@10 the catalog allows: items of the query's type group (and its words'
    constraints) that match the taste, at most 10."""
    text, group = query
    constraints = engine.guard.parse("" if text == "PHOTO" else text)
    matching = sum(1 for item in engine.searcher.records
                   if type_group(item["articleType"]) == group and constraints.allows(item) and likes(item))
    return min(K, matching) / K


def ild(engine: Engine, ids: list[int]) -> float:
    vectors = np.stack([engine._vector_of(i) for i in ids])
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return float(np.mean([1 - vectors[a] @ vectors[b] for a, b in combinations(range(len(ids)), 2)]))


def evaluate(index: Path, split: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = load_engine(index, profiles=Path(tmp) / "profiles.sqlite3")
        photo = plain_photo(engine, split)
        rows = {"with": [], "without": []}
        best, who = [], []
        n = 0
        for name, likes in TASTES[split].items():
            for query in QUERIES[split]:
                n += 1
                best.append(ceiling(engine, query, likes))
                who.append(f"{name} / {query[0].lower()}")
                rows["with"].append(run_shopper(engine, f"sim-{split}-{n:03d}", query, likes, photo=photo))
                rows["without"].append(run_shopper(engine, None, query, likes, rounds=1, photo=photo) * ROUNDS)
        result = []
        for variant, runs in rows.items():
            result.append({
                "variant": variant, "split": split, "shoppers": len(runs),
                "P@10 r1": np.mean([r[0]["taste"] for r in runs]), "P@10 r5": np.mean([r[-1]["taste"] for r in runs]),
                "best": float(np.mean(best)),
                "type r1": np.mean([r[0]["type"] for r in runs]), "type r5": np.mean([r[-1]["type"] for r in runs]),
                "ILD r5": np.mean([ild(engine, r[-1]["ids"]) for r in runs]),
                "repeats": np.mean([len(set(a["ids"]) & set(b["ids"])) / K for r in runs for a, b in zip(r, r[1:])]),
                "p50 ms": statistics.median(x["ms"] for r in runs for x in r),
                "detail": [(name, b, [x["taste"] for x in r]) for name, b, r in zip(who, best, runs)]})
        result.append(crowd(engine, split, photo))
    return result


def crowd(engine: Engine, split: str, photo: str) -> dict:
    """Round-2 P@10 of a shopper with one round of feedback, with and without the crowd, after
    ten earlier shoppers of the same taste and query."""
    with_crowd, without = [], []
    for t, (name, likes) in enumerate(TASTES[split].items()):
        query = QUERIES[split][t % len(QUERIES[split])]
        for n in range(10):
            run_shopper(engine, f"crowd-{split}-{t}-{n:02d}", query, likes, photo=photo)
        saved = taste.CROWD
        for weight, bucket in ((saved, with_crowd), (0.0, without)):
            taste.CROWD = weight
            newcomer = f"new-{split}-{t}-{int(weight * 100)}"
            bucket.append(run_shopper(engine, newcomer, query, likes, rounds=2, photo=photo)[-1]["taste"])
        taste.CROWD = saved
    return {"variant": "crowd", "split": split, "shoppers": len(with_crowd),
            "with crowd": float(np.mean(with_crowd)), "without crowd": float(np.mean(without))}


def print_rows(rows: list[dict]) -> None:
    header = (f"{'variant':<9} {'split':<5} {'n':>3} {'P@10 r1':>8} {'P@10 r5':>8} {'best':>6} {'type r1':>8} {'type r5':>8} "
              f"{'ILD r5':>7} {'repeats':>8} {'p50 ms':>7}")
    print(header + "\n" + "-" * len(header))
    for r in rows:
        if r["variant"] == "crowd":
            continue
        print(f"{r['variant']:<9} {r['split']:<5} {r['shoppers']:>3} {r['P@10 r1']:>8.3f} {r['P@10 r5']:>8.3f} {r['best']:>6.3f} "
              f"{r['type r1']:>8.3f} {r['type r5']:>8.3f} {r['ILD r5']:>7.3f} {r['repeats']:>8.3f} {r['p50 ms']:>7.1f}")
    for r in rows:
        if r["variant"] == "crowd":
            print(f"crowd ({r['split']}, {r['shoppers']} newcomers after 10 alike shoppers each): round-2 P@10 "
                  f"{r['with crowd']:.3f} with the collaborative signal, {r['without crowd']:.3f} without")


def print_detail(rows: list[dict]) -> None:
    """Per shopper: the catalog's best and P@10 by round (for choosing settings on dev)."""
    for r in rows:
        for name, best, rounds in r.get("detail", []):
            print(f"{r['variant']:<8} {r['split']:<5} {name:<34} best {best:.1f}  " + " ".join(f"{x:.1f}" for x in rounds))


def report(rows: list[dict]) -> list[str]:
    out = []
    for split in ("test",):
        mine = {r["variant"]: r for r in rows if r["split"] == split}
        if "with" not in mine:
            continue
        gain = mine["with"]["P@10 r5"] - mine["with"]["P@10 r1"]
        out += [f"taste, {split}: round-5 P@10 gain {gain:+.3f} (target >= +0.30): {'PASS' if gain >= 0.3 else 'FAIL'}",
                f"taste, {split}: type P@10 {mine['with']['type r5']:.3f} with vs {mine['without']['type r5']:.3f} "
                f"without (target: not lower): {'PASS' if mine['with']['type r5'] >= mine['without']['type r5'] else 'FAIL'}",
                f"taste, {split}: repeats {mine['with']['repeats']:.3f} (target < 0.10): "
                f"{'PASS' if mine['with']['repeats'] < 0.10 else 'FAIL'}",
                f"taste, {split}: search p50 with a profile {mine['with']['p50 ms']:.1f} ms (target < 60 ms): "
                f"{'PASS' if mine['with']['p50 ms'] < 60 else 'FAIL'}"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate personal taste (see the module docstring).")
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR)
    p.add_argument("--split", choices=["dev", "test", "both"], default="both")
    p.add_argument("--detail", action="store_true", help="also P@10 by round, shopper by shopper")
    args = p.parse_args()
    rows = [row for split in (["dev", "test"] if args.split == "both" else [args.split])
            for row in evaluate(args.index, split)]
    print_rows(rows)
    if args.detail:
        print_detail([r for r in rows if r["variant"] == "with"])
    print("\n".join(report(rows)))


if __name__ == "__main__":
    main()
