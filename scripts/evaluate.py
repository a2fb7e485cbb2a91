"""Retrieval quality on held-out items, every mode side by side, printed as one table.

`python scripts/evaluate.py [--model DIR] [--queries N] [--json PATH]`

An index is built over the held-out items only (id % 10 == 0, never trained on), and queried
through the product's own `engine.search`:
- text->image: natural wordings of attribute combos ("blue t-shirts for men"); relevant = every
  named attribute matches.
- image->image: each item's photo; relevant = same article type and colour (the item excluded).
- composed: an item's photo + "in <colour>" / "for <season>" / "<usage>" / "for <gender>";
  relevant = keeps type and gender (unless the tweak is the gender) and has the new value.
- uploads: the user photos' validation split; relevant = catalog items of the matching types.
Metrics: R@10 = |relevant in top 10| / min(10, |relevant|); nDCG@10 (binary gains); MRR (first
relevant within the top 10, else 0); P@10. A random ranker and a names-only text baseline (MiniLM
over product names, no images) give floors to read against.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag import settings  # noqa: E402
from fashion_rag.catalog import UPLOAD_TYPES, load_catalog  # noqa: E402
from fashion_rag.encoder import load_encoder  # noqa: E402
from fashion_rag.index import build_index, load_index  # noqa: E402
from fashion_rag.model import mean_pool  # noqa: E402
from fashion_rag.search import Engine, load_engine  # noqa: E402
from fashion_rag.train_composer import tweak_text  # noqa: E402
from fashion_rag.train_encoder import minilm_path  # noqa: E402

K = 10
GENDER_WORDS = {"Men": "men", "Women": "women", "Boys": "boys", "Girls": "girls", "Unisex": "everyone"}


def natural(article_type: str) -> str:
    return {"Tshirts": "t-shirts", "Tops": "tops"}.get(article_type, article_type.lower())


def metrics(ranked: list[int], relevant: set[int]) -> tuple[float, float, float, float]:
    gains = [1.0 if i in relevant else 0.0 for i in ranked[:K]]
    ideal = sum(1 / np.log2(r + 2) for r in range(min(K, len(relevant))))
    dcg = sum(g / np.log2(r + 2) for r, g in enumerate(gains))
    first = next((r for r, g in enumerate(gains) if g), None)
    return (sum(gains) / min(K, len(relevant)), dcg / ideal, 0.0 if first is None else 1 / (first + 1),
            sum(gains) / K)


def held_out_engine(model: str, work: Path) -> Engine:
    """An index over the held-out items only, rebuilt when the encoder changes."""
    encoder = load_encoder(model)
    folder = work / f"eval-index-{encoder.weights_hash}"
    if not (folder / "manifest.json").is_file():
        items = load_catalog(settings.CATALOG_DIR / "styles.csv").items
        held = items[items["id"].map(settings.is_held_out)]
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "styles.csv"
            held.assign(image=held["path"]).drop(columns="path").to_csv(csv, index=False)
            build_index(csv, encoder, folder)
    return load_engine(folder, model=model, check_catalog=False)


def text_queries(items: pd.DataFrame, n: int, rng: random.Random) -> list[tuple[str, dict]]:
    """Attribute combos that exist among the items, worded as a shopper would."""
    combos = items.groupby(["gender", "baseColour", "articleType", "usage", "season"]).size().index.tolist()
    rng.shuffle(combos)
    out = []
    for gender, colour, kind, usage, season in combos[:n]:
        choice = len(out) % 4
        if choice == 0:
            out.append((f"{colour.lower()} {natural(kind)} for {GENDER_WORDS[gender]}",
                        {"gender": gender, "baseColour": colour, "articleType": kind}))
        elif choice == 1:
            out.append((f"{natural(kind)} in {colour.lower()}", {"baseColour": colour, "articleType": kind}))
        elif choice == 2:
            out.append((f"{usage.lower()} {natural(kind)} for {season.lower()}",
                        {"usage": usage, "articleType": kind, "season": season}))
        else:
            out.append((f"something {colour.lower()} for {GENDER_WORDS[gender]}",
                        {"gender": gender, "baseColour": colour}))
    return out


def relevant_ids(items: pd.DataFrame, wanted: dict) -> set[int]:
    mask = np.ones(len(items), bool)
    for column, value in wanted.items():
        mask &= (items[column] == value).to_numpy()
    return set(items["id"][mask].astype(int))


def composed_queries(items: pd.DataFrame, n: int, rng: random.Random) -> list[tuple[dict, str, set[int]]]:
    records = items.to_dict("records")
    rng.shuffle(records)
    out = []
    for ref in records:
        attribute = rng.choice(["baseColour", "baseColour", "season", "usage", "gender"])
        keep = {"articleType": ref["articleType"]} | ({} if attribute == "gender" else {"gender": ref["gender"]})
        same_kind = items[(items[list(keep)] == pd.Series(keep)).all(axis=1)]
        values = sorted(set(same_kind[attribute]) - {ref[attribute], "NA", ""})
        if not values:
            continue
        value = rng.choice(values)
        out.append((ref, tweak_text(attribute, value), relevant_ids(same_kind, {attribute: value}) - {ref["id"]}))
        if len(out) == n:
            break
    return out


class NamesBaseline:
    """Plain MiniLM over product names: what a text-only shop search would do."""

    def __init__(self, items: pd.DataFrame):
        from transformers import AutoModel, AutoTokenizer
        self.tokenizer, self.model = AutoTokenizer.from_pretrained(minilm_path()), AutoModel.from_pretrained(minilm_path())
        self.ids = items["id"].astype(int).to_numpy()
        self.names = self.embed(items["productDisplayName"].replace("", "product").tolist())

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), 128):
            tokens = self.tokenizer(texts[i:i + 128], padding=True, truncation=True, return_tensors="pt")
            pooled = mean_pool(self.model(**tokens).last_hidden_state, tokens["attention_mask"])
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out)

    def rank(self, text: str) -> list[int]:
        return self.ids[np.argsort(-(self.names @ self.embed([text])[0]))[:K]].tolist()


def run(engine: Engine, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    items = engine.items
    all_ids = items["id"].astype(int).tolist()
    rows: dict[tuple[str, str], list] = defaultdict(list)

    def record(task: str, method: str, ranked: list[int], relevant: set[int]) -> None:
        rows[(task, method)].append(metrics(ranked, relevant))

    def ids(results, exclude: int | None = None) -> list[int]:
        return [h.item_id for h in results if h.item_id != exclude][:K]

    def random_ranking(exclude: int | None = None) -> list[int]:
        return [i for i in rng.sample(all_ids, K + 1) if i != exclude][:K]

    names = NamesBaseline(items)
    for text, wanted in text_queries(items, n, rng):
        relevant = relevant_ids(items, wanted)
        for mode in ("text", "concat"):
            record("text->image", mode, ids(engine.search(text=text, mode=mode, guard=False)), relevant)
        best = engine.resolve_mode("auto", False, True)
        record("text->image", f"{best} + attribute guard", ids(engine.search(text=text, mode=best)), relevant)
        record("text->image", "names-only baseline (MiniLM)", names.rank(text), relevant)
        record("text->image", "random", random_ranking(), relevant)

    for ref in rng.sample(items.to_dict("records"), min(n, len(items))):
        relevant = relevant_ids(items, {"articleType": ref["articleType"], "baseColour": ref["baseColour"]}) - {ref["id"]}
        if relevant:
            hits = engine.search(image=ref["path"], mode="image", k=K + 1, guard=False)
            record("image->image", "image", ids(hits, ref["id"]), relevant)
            record("image->image", "random", random_ranking(ref["id"]), relevant)

    for ref, tweak, relevant in composed_queries(items, n, rng):
        for mode in engine.modes:
            hits = engine.search(image=ref["path"], text=tweak, mode=mode, k=K + 1, guard=False)
            record("composed", mode, ids(hits, ref["id"]), relevant)
        best = engine.resolve_mode("auto", True, True)
        record("composed", f"{best} + attribute guard",
               ids(engine.search(image=ref["path"], text=tweak, mode=best, k=K + 1), ref["id"]), relevant)
        record("composed", "random", random_ranking(ref["id"]), relevant)

    photos = pd.read_csv(settings.USER_PHOTOS_DIR / "labels.csv")
    photos = photos[photos["split"] == "validation"]
    for photo in photos.to_dict("records"):
        relevant = set(items["id"][items["articleType"].isin(UPLOAD_TYPES[photo["label"]])].astype(int))
        if relevant:
            record("uploads", "image", ids(engine.search(image=settings.USER_PHOTOS_DIR / photo["image"],
                                                         mode="image", guard=False)), relevant)
            record("uploads", "random", random_ranking(), relevant)

    return [{"task": task, "method": method, "queries": len(values),
             **dict(zip(["R@10", "nDCG@10", "MRR", "P@10"], np.mean(values, axis=0).round(3).tolist()))}
            for (task, method), values in rows.items()]


def verdicts(table: list[dict]) -> list[str]:
    """The goals the issue sets, checked against this run's numbers."""
    get = {(r["task"], r["method"]): r for r in table}
    composed = {m: r["R@10"] for (t, m), r in get.items() if t == "composed"}
    floor = max(composed.get("image", 0), composed.get("text", 0))
    out = [f"composed R@10, {m} vs best single modality ({floor:.3f}): "
           f"{'PASS' if composed[m] >= floor + 0.10 else 'FAIL'} ({composed[m] - floor:+.3f})"
           for m in ("sum", "concat", "gated") if m in composed]
    text_best = max(r["nDCG@10"] for (t, m), r in get.items()
                    if t == "text->image" and not m.startswith(("names", "random")))
    names = get[("text->image", "names-only baseline (MiniLM)")]["nDCG@10"]
    out.append(f"best text->image nDCG@10 {text_best:.3f} vs names-only {names:.3f}: "
               f"{'PASS' if text_best > names else 'FAIL'}")
    if "gated" in composed:
        out.append(f"gated R@10 {composed['gated']:.3f} vs sum {composed['sum']:.3f}: "
                   f"{'PASS' if composed['gated'] > composed['sum'] else 'FAIL'}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate retrieval quality on held-out items.")
    p.add_argument("--model", default=settings.MODEL)
    p.add_argument("--queries", type=int, default=400, help="queries per task (uploads: all 341)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=settings.ROOT / "artifacts")
    p.add_argument("--json", type=Path, help="also write the table here")
    args = p.parse_args()
    engine = held_out_engine(args.model, args.work)
    print(f"held-out index: {len(engine.items)} items; modes: {', '.join(engine.modes)}"
          f"{'' if engine.composer else ' (no composer trained for this encoder: run scripts/train_composer.py)'}")
    table = run(engine, args.queries, args.seed)
    header = f"{'task':<13} {'method':<31} {'R@10':>6} {'nDCG@10':>8} {'MRR':>6} {'P@10':>6} {'n':>5}"
    print(header + "\n" + "-" * len(header))
    for r in table:
        print(f"{r['task']:<13} {r['method']:<31} {r['R@10']:>6.3f} {r['nDCG@10']:>8.3f} {r['MRR']:>6.3f} "
              f"{r['P@10']:>6.3f} {r['queries']:>5}")
    print("\n".join(verdicts(table)))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
