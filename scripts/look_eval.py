"""Shop the look: pieces found on photos of people, and searching by a piece instead of the photo.
Used by scripts/evaluate.py; `python scripts/look_eval.py [--split test|dev]` runs it alone.

- Hand-labelled photos (tests/data/worn_pieces.csv: held-out catalog photos, a box, type and role
  for every visible worn piece, labelled by eye; `dev` id % 20 == 0, `test` id % 20 == 10). A
  labelled piece is found when a found piece has the same role and a box at IoU >= 0.5 with it.
  The role of a labelled piece is its type's role in fashion_rag.data.wardrobe (so a sweatshirt is
  outerwear, as the outfits treat it). Role accuracy: of the labelled pieces some found box
  overlaps at IoU >= 0.5, the share whose best-overlapping piece has the right role. Photos with
  nobody in them must come back as one piece, the whole photo.
- Held-out catalog photos of the split's half whose item is worn clothing (top, bottom, one-piece,
  outerwear): the catalog labels one piece per photo, the one sold. Search P@10 (relevant: the
  sold item's type group; the item itself excluded) from the piece of the sold item's role (what
  a shopper clicks) and from the whole photo (the baseline: the search before pieces, and still
  the search when no piece is named or picked); on the product index, photo alone, auto mode.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag import settings  # noqa: E402
from fashion_rag.data.catalog import type_group  # noqa: E402
from fashion_rag.data.wardrobe import TYPE_ROLE  # noqa: E402
from fashion_rag.engine import Engine, load_engine  # noqa: E402

LABELS = Path(__file__).resolve().parent.parent / "tests" / "data" / "worn_pieces.csv"
WORN = {"top", "bottom", "one-piece", "outerwear"}
K = 10
TARGETS = {"piece recall": 0.85, "role accuracy": 0.90, "piece search P@10": 0.80}


def iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def labelled_rows(engine: Engine, split: str) -> dict:
    """Piece recall, role accuracy and no-person photos on the hand-labelled photos of a split."""
    labels = pd.read_csv(LABELS)
    labels = labels[labels["split"] == split]
    found = boxed = right_role = total = alone = nobody = 0
    seconds = []
    for item_id, rows in labels.groupby("id"):
        picture = Image.open(settings.CATALOG_DIR / "images" / f"{item_id}.jpg").convert("RGB")
        start = time.perf_counter()
        pieces = engine.pieces(picture)
        seconds.append(time.perf_counter() - start)
        if (rows["role"] == "none").all():
            nobody += 1
            alone += len(pieces) == 1 and pieces[0].region == "photo"
            continue
        for row in rows.itertuples():
            role = TYPE_ROLE.get(row.type, row.role)
            box = (row.x0, row.y0, row.x1, row.y1)
            total += 1
            found += any(p.role == role and iou(p.box, box) >= 0.5 for p in pieces)
            best = max(pieces, key=lambda p: iou(p.box, box))
            if iou(best.box, box) >= 0.5:
                boxed += 1
                right_role += best.role == role
    people = labels[labels["role"] != "none"]["id"].nunique()
    return {"split": split, "photos": labels["id"].nunique(), "people": people, "pieces": total,
            "piece recall": found / total, "role accuracy": right_role / max(boxed, 1),
            "boxes at IoU>=0.5": boxed / total, "no person, one piece": f"{alone}/{nobody}",
            "p50 ms": 1000 * statistics.median(seconds)}


def search_rows(engine: Engine, split: str) -> dict:
    """P@10 of the sold item's type group from its piece and from the whole photo, over held-out
    model shots of worn clothing in the split's half where pieces are found."""
    items = engine.items
    rows = items[items["id"].map(settings.is_held_out) & ((items["id"] % 20 == 0) == (split == "dev"))]
    rows = rows[rows["articleType"].map(TYPE_ROLE).isin(WORN)]
    group_of = items.set_index("id")["articleType"].map(type_group)

    def precision(item_id: int, **how) -> float:
        hits = [h for h in engine.search(image=path, k=K + 1, **how) if h.item_id != item_id][:K]
        return sum(group_of[h.item_id] == group_of[item_id] for h in hits) / K

    scores = {"sold piece": [], "whole photo": []}
    people = 0
    for item_id, path, kind in zip(rows["id"], rows["path"], rows["articleType"]):
        pieces = engine.pieces(path)
        if len(pieces) < 2:  # nobody, or one piece: the same search either way
            continue
        people += 1
        mine = next((i for i, p in enumerate(pieces) if p.role == TYPE_ROLE[kind]), 0)
        scores["sold piece"].append(precision(item_id, piece=mine))
        scores["whole photo"].append(precision(item_id))
    return {"split": split, "photos": len(rows), "with pieces": people,
            **{f"P@10 {name}": statistics.mean(v) if v else float("nan") for name, v in scores.items()}}


def rows(engine: Engine, splits: list[str]) -> tuple[list[dict], list[dict]]:
    """Both blocks over these splits: (hand-labelled rows, search rows)."""
    return [labelled_rows(engine, s) for s in splits], [search_rows(engine, s) for s in splits]


def print_rows(labelled: list[dict], search: list[dict]) -> None:
    print(f"{'split':<6} {'photos':>6} {'people':>6} {'pieces':>6} {'recall':>7} {'role acc':>8} "
          f"{'IoU>=.5':>8} {'nobody ok':>9} {'p50 ms':>7}")
    for r in labelled:
        print(f"{r['split']:<6} {r['photos']:>6} {r['people']:>6} {r['pieces']:>6} {r['piece recall']:>7.3f} "
              f"{r['role accuracy']:>8.3f} {r['boxes at IoU>=0.5']:>8.3f} {r['no person, one piece']:>9} "
              f"{r['p50 ms']:>7.1f}")
    print(f"\n{'split':<6} {'photos':>6} {'w/ pieces':>9} {'P@10 sold piece':>15} {'P@10 whole photo':>16}")
    for r in search:
        print(f"{r['split']:<6} {r['photos']:>6} {r['with pieces']:>9} {r['P@10 sold piece']:>15.3f} "
              f"{r['P@10 whole photo']:>16.3f}")


def report(labelled: list[dict], search: list[dict]) -> list[str]:
    def check(split: str, name: str, value: float, extra: str = "") -> str:
        target = TARGETS[name]
        return f"shop the look, {split}: {name} {value:.3f}{extra} (target >= {target}): " + \
            ("PASS" if value >= target else "FAIL")
    return [check(r["split"], name, r[name]) for r in labelled for name in ("piece recall", "role accuracy")] + \
        [check(r["split"], "piece search P@10", r["P@10 sold piece"], f", whole photo {r['P@10 whole photo']:.3f}")
         for r in search]


def main() -> None:
    p = argparse.ArgumentParser(description="Shop the look: pieces on photos of people (see the docstring).")
    p.add_argument("--split", choices=["test", "dev"], default="test")
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR)
    args = p.parse_args()
    engine = load_engine(args.index)
    look = rows(engine, ["dev", "test"] if args.split == "test" else ["dev"])
    print_rows(*look)
    print("\n".join(report(*look)))


if __name__ == "__main__":
    main()
