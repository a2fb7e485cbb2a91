"""Retrieval quality, every mode side by side, printed as tables.

`python scripts/evaluate.py [--split test|dev] [--queries N] [--json PATH]`
`python scripts/evaluate.py --tune`   choose the guided mode's settings on dev data (prints a grid)
`python scripts/evaluate.py --outfits-only`   only the outfit block (scripts/outfit_eval.py)
`python scripts/evaluate.py --taste-only`     only the personal-taste block (scripts/taste_eval.py)
`python scripts/evaluate.py --look-only`      only the shop-the-look block (scripts/look_eval.py)

Catalog shots: an index is built over the held-out items only (id % 10 == 0, never trained on).
Their queries come from one half of them: `dev` (id % 20 == 0, where settings are chosen) or
`test` (id % 20 == 10, what is reported). Query wordings are written for this script and share no
template with the training captions or the composer's tweaks.
- text->image: attribute combinations in free wording; relevant = every named attribute matches.
- image->image: an item's photo; relevant = same type and colour (the item itself excluded).
- composed: an item's photo + a tweak of colour, season, usage or gender; relevant = keeps the
  type and gender (unless the tweak is the gender) and has the new value.
Real photos: the user photos' validation split (`dev`: the train split's dev part) against the
full product index (they are not catalog items, so nothing leaks); relevant = an item of the photo's
type group(s) (dress -> Dresses; longsleeve -> sweaters, tops or t-shirts), and for a tweak also
the asked colour, season or usage. Tweak values are drawn among those with at least 10 such items.
Photo alone, gender: the hand-labelled uploads of that split; relevant = an item of a gender the
photo's label allows (a unisex item suits men and women): whether results follow whose garment it is.
Rows without "+ guard" have the attribute guard off: they measure the encoder and fusion alone.
Metrics: R@10 = relevant in top 10 / min(10, relevant); nDCG@10; MRR; P@10 = relevant in top 10 / 10.
Outfits: the requests of scripts/outfit_requests.json through engine.complete on the product index,
scored as scripts/outfit_eval.py describes (slot coverage, context leakage, attributes, ...).
Personal taste: simulated shoppers through five rounds of search + like/pass (scripts/taste_eval.py).
Shop the look: pieces found on hand-labelled held-out photos of people, and search by a piece
against search by the whole photo (scripts/look_eval.py).
"""
from __future__ import annotations

import argparse
import itertools
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
import look_eval  # noqa: E402
import taste_eval  # noqa: E402
from outfit_eval import outfit_rows, print_rows, report  # noqa: E402

from fashion_rag import settings
from fashion_rag.data.catalog import caption, load_catalog, type_group  # noqa: E402
from fashion_rag.data.photos import load_photos  # noqa: E402
from fashion_rag.encoding.encoder import load_encoder  # noqa: E402
from fashion_rag.encoding.model import mean_pool  # noqa: E402
from fashion_rag.encoding.reader import calibration_error, pattern_of  # noqa: E402
from fashion_rag.training.train_encoder import minilm_path  # noqa: E402
from fashion_rag.engine import Engine, load_engine  # noqa: E402
from fashion_rag.retrieval import tweak  # noqa: E402
from fashion_rag.retrieval.index import build_index  # noqa: E402
from fashion_rag.training.train_reader import hand_labelled  # noqa: E402

K = 10
PERSON = {"Men": "a man", "Women": "a woman", "Boys": "a boy", "Girls": "a girl", "Unisex": "anyone"}
OCCASION = {"Casual": "everyday errands", "Formal": "the office", "Sports": "the gym",
            "Ethnic": "a traditional festival", "Party": "a party", "Smart Casual": "smart casual dinners",
            "Travel": "travelling"}
COLOUR_TWEAKS = ["could I get this in {v}?", "I'd love the same thing but {v}", "swap the colour to {v}"]
SEASON_TWEAKS = ["something like this I can wear in {v}", "adapt it to {v} weather", "a {v}-friendly take on this"]
USAGE_TWEAKS = ["same vibe but for {v}", "would this work for {v}? show me options", "a take on this for {v}"]
GENDER_TWEAKS = ["the equivalent for {v}", "what would {v} wear like this?"]


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


def photo_split(split: str) -> str:
    """The user photos' part that goes with a catalog split: validation for test, dev for dev."""
    return "validation" if split == "test" else "dev"


def half(items: pd.DataFrame, split: str) -> pd.DataFrame:
    """The dev (id % 20 == 0) or test (id % 20 == 10) half of the held-out items."""
    return items[(items["id"] % 20 == 0) == (split == "dev")]


def relevant_ids(items: pd.DataFrame, wanted: dict) -> set[int]:
    mask = np.ones(len(items), bool)
    for column, value in wanted.items():
        column_values = items[column].map(type_group) if column == "group" else items[column]
        mask &= column_values.isin(value if isinstance(value, (list, set)) else [value]).to_numpy()
    return set(items["id"][mask].astype(int))


def text_queries(items: pd.DataFrame, pool: pd.DataFrame, n: int, rng: random.Random) -> list[tuple[str, dict]]:
    """Attribute combos of the query half's items, in free wording."""
    combos = pool.groupby(["gender", "baseColour", "articleType", "usage", "season"]).size().index.tolist()
    rng.shuffle(combos)
    out = []
    for gender, colour, kind, usage, season in combos[:n]:
        choice = len(out) % 4
        if choice == 0:
            out.append((f"i need {colour.lower()} {natural(kind)} that {PERSON[gender]} would wear",
                        {"gender": gender, "baseColour": colour, "articleType": kind}))
        elif choice == 1:
            out.append((f"{natural(kind)}, colour {colour.lower()}, please", {"baseColour": colour, "articleType": kind}))
        elif choice == 2:
            out.append((f"got any {natural(kind)} for {season.lower()} and {OCCASION.get(usage, usage.lower())}?",
                        {"usage": usage, "articleType": kind, "season": season}))
        else:
            out.append((f"show me what you have for {PERSON[gender]} in {colour.lower()}",
                        {"gender": gender, "baseColour": colour}))
    return out


def composed_queries(items: pd.DataFrame, pool: pd.DataFrame, n: int,
                     rng: random.Random) -> list[tuple[dict, str, set[int]]]:
    records = pool.to_dict("records")
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
        templates = {"baseColour": COLOUR_TWEAKS, "season": SEASON_TWEAKS, "usage": USAGE_TWEAKS,
                     "gender": GENDER_TWEAKS}[attribute]
        word = {"usage": OCCASION, "gender": PERSON}.get(attribute, {}).get(value, value.lower())
        out.append((ref, rng.choice(templates).format(v=word),
                    relevant_ids(same_kind, {attribute: value}) - {ref["id"]}))
        if len(out) == n:
            break
    return out


class MiniLMBaseline:
    """Plain MiniLM over one text per item (product names, or captions built from the metadata),
    no images: what a text-only shop search would do."""

    def __init__(self, items: pd.DataFrame, texts: list[str]):
        from transformers import AutoModel, AutoTokenizer
        self.tokenizer, self.model = AutoTokenizer.from_pretrained(minilm_path()), AutoModel.from_pretrained(minilm_path())
        self.ids = items["id"].astype(int).to_numpy()
        self.vectors = self.embed(texts)

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), 128):
            tokens = self.tokenizer(texts[i:i + 128], padding=True, truncation=True, return_tensors="pt")
            pooled = mean_pool(self.model(**tokens).last_hidden_state, tokens["attention_mask"])
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out)

    def rank(self, text: str) -> list[int]:
        return self.ids[np.argsort(-(self.vectors @ self.embed([text])[0]))[:K]].tolist()


class Table:
    def __init__(self):
        self.rows: dict[tuple[str, str], list] = defaultdict(list)

    def record(self, task: str, method: str, ranked: list[int], relevant: set[int]) -> None:
        self.rows[(task, method)].append(metrics(ranked, relevant))

    def result(self) -> list[dict]:
        return [{"task": task, "method": method, "queries": len(values),
                 **dict(zip(["R@10", "nDCG@10", "MRR", "P@10"], np.mean(values, axis=0).round(3).tolist()))}
                for (task, method), values in self.rows.items()]


def ids(results, exclude: int | None = None) -> list[int]:
    return [h.item_id for h in results if h.item_id != exclude][:K]


def catalog_blocks(engine: Engine, split: str, n: int, seed: int, table: Table) -> None:
    rng = random.Random(seed)
    items = engine.items
    pool = half(items, split)
    all_ids = items["id"].astype(int).tolist()

    def random_ranking(exclude: int | None = None) -> list[int]:
        return [i for i in rng.sample(all_ids, K + 1) if i != exclude][:K]

    names = MiniLMBaseline(items, items["productDisplayName"].replace("", "product").tolist())
    captions = MiniLMBaseline(items, [caption(r) for r in items.to_dict("records")])
    for text, wanted in text_queries(items, pool, n, rng):
        relevant = relevant_ids(items, wanted)
        for mode in ("text", "concat"):
            table.record("text->image", mode, ids(engine.search(text=text, mode=mode, guard=False)), relevant)
        table.record("text->image", "auto + guard", ids(engine.search(text=text)), relevant)
        table.record("text->image", "captions-only MiniLM (no images)", captions.rank(text), relevant)
        table.record("text->image", "names-only MiniLM (no images)", names.rank(text), relevant)
        table.record("text->image", "random", random_ranking(), relevant)

    for ref in rng.sample(pool.to_dict("records"), min(n, len(pool))):
        relevant = relevant_ids(items, {"articleType": ref["articleType"], "baseColour": ref["baseColour"]}) - {ref["id"]}
        if relevant:
            for mode in ("image", "guided") if "guided" in engine.modes else ("image",):
                hits = engine.search(image=ref["path"], mode=mode, k=K + 1, guard=False)
                table.record("image->image", mode, ids(hits, ref["id"]), relevant)
            table.record("image->image", "random", random_ranking(ref["id"]), relevant)

    for ref, tweak_text, relevant in composed_queries(items, pool, n, rng):
        for mode in engine.modes:
            hits = engine.search(image=ref["path"], text=tweak_text, mode=mode, k=K + 1, guard=False)
            table.record("composed", mode, ids(hits, ref["id"]), relevant)
        hits = engine.search(image=ref["path"], text=tweak_text, k=K + 1)
        table.record("composed", f"auto ({hits.mode}) + guard", ids(hits, ref["id"]), relevant)
        table.record("composed", "random", random_ranking(ref["id"]), relevant)


def photo_queries(engine: Engine, photos: pd.DataFrame, rng: random.Random) -> list[tuple[str, str, str, set[int]]]:
    """(photo path, block, tweak, relevant ids): alone, a colour tweak, a season or usage tweak."""
    items = engine.items
    groups = items["articleType"].map(type_group)
    out = []
    for photo in photos.to_dict("records"):
        of_type = items[groups.isin(photo["groups"])]
        out.append((photo["path"], "photo alone", "", set(of_type["id"].astype(int))))
        for block, column, templates, words in [
                ("photo + colour", "baseColour", COLOUR_TWEAKS, lambda v: v.lower()),
                ("photo + season/usage", None, None, None)]:
            if column is None:
                column = rng.choice(["season", "usage"])
                templates = SEASON_TWEAKS if column == "season" else USAGE_TWEAKS
                words = (lambda v: v.lower()) if column == "season" else (lambda v: OCCASION.get(v, v.lower()))
            counts = of_type[column].value_counts()
            values = sorted(v for v, c in counts.items() if c >= 10 and v not in ("", "NA"))
            if values:
                value = rng.choice(values)
                out.append((photo["path"], block, rng.choice(templates).format(v=words(value)),
                            set(of_type["id"][of_type[column] == value].astype(int))))
    return out


def photo_blocks(engine: Engine, photos: pd.DataFrame, seed: int, table: Table, label: str = "",
                 modes: tuple[str, ...] | None = None, guard: bool = False) -> None:
    rng = random.Random(seed)
    for path, block, tweak_text, relevant in photo_queries(engine, photos, rng):
        task = f"{label}{block}"
        for mode in modes or [m for m in engine.modes if tweak_text or m in ("image", "guided")]:
            if mode in ("text", "concat"):
                continue  # the photo would be ignored or absent
            table.record(task, mode, ids(engine.search(image=path, text=tweak_text or None, mode=mode,
                                                       guard=guard)), relevant)
        if not modes:
            hits = engine.search(image=path, text=tweak_text or None)
            table.record(task, f"auto ({hits.mode}) + guard", ids(hits), relevant)


def gender_block(engine: Engine, hand: pd.DataFrame, table: Table) -> None:
    """Photo alone on the hand-labelled uploads, scored on the gender of what comes back."""
    genders = engine.items["gender"]
    for path, allowed in zip(hand["path"], hand["genders"]):
        fits = set(allowed) | ({"Unisex"} if set(allowed) & {"Men", "Women"} else set())
        relevant = set(engine.items["id"][genders.isin(fits)].astype(int))
        for mode in [m for m in ("image", "guided") if m in engine.modes]:  # guided needs the reader
            hits = engine.search(image=path, mode=mode, guard=False)
            table.record("photo alone: gender", mode, ids(hits), relevant)
        hits = engine.search(image=path)
        table.record("photo alone: gender", f"auto ({hits.mode}) + guard", ids(hits), relevant)


def calibrated_floor(confidence: np.ndarray, draws: int = 1000) -> float:
    """The median ECE a perfectly calibrated reader would show with these confidences on this many
    photos (each read right with exactly its stated probability): on a few dozen photos, ten bins
    hold so few that even honest confidences measure 0.1 and more."""
    rng = np.random.default_rng(0)
    return float(np.median([calibration_error(confidence, rng.random(len(confidence)) < confidence)
                            for _ in range(draws)]))


def reader_accuracy(engine: Engine, catalog_pool: pd.DataFrame, photos: dict[str, pd.DataFrame],
                    hand: pd.DataFrame, split: str) -> list[dict]:
    """Top-1 accuracy of the photo reading, its mean confidence and expected calibration error,
    beside the ECE that perfect calibration would show on as many photos."""
    out = []

    def score(attribute: str, photos_name: str, readings, allowed) -> None:
        tops = [r.top(attribute) for r in readings]
        correct = np.array([value in ok for (value, _), ok in zip(tops, allowed)])
        confidence = np.array([c for _, c in tops])
        out.append({"attribute": attribute, "photos": photos_name, "accuracy": round(float(correct.mean()), 3),
                    "confidence": round(float(confidence.mean()), 3),
                    "ECE": round(calibration_error(confidence, correct), 3),
                    "ECE if calibrated": round(calibrated_floor(confidence), 3), "n": len(tops)})

    def one_value(attribute: str, what: str, readings, allowed) -> None:
        """The photos whose label names one value only. A label that admits several ("longsleeve":
        sweater, top or t-shirt; a plain tee: Men or Women) counts a top value right that may not
        be, and the calibration learns that from the dev labels; these rows show the rest."""
        single = [len(values) == 1 for values in allowed]
        score(attribute, f"  of which labels naming one {what}", [r for r, s in zip(readings, single) if s],
              [a for a, s in zip(allowed, single) if s])

    truth = {"type": catalog_pool["articleType"].map(type_group), "gender": catalog_pool["gender"],
             "colour": catalog_pool["baseColour"], "pattern": catalog_pool["productDisplayName"].map(pattern_of)}
    readings = [engine.describe(p) for p in catalog_pool["path"]]
    for attribute, values in truth.items():
        score(attribute, f"catalog shots (held-out {split} half)", readings, [[v] for v in values])
    for name, table in photos.items():
        readings, allowed = [engine.describe(p) for p in table["path"]], list(table["groups"])
        score("type", name, readings, allowed)
        one_value("type", "group", readings, allowed)
    if len(hand):
        readings = [engine.describe(p) for p in hand["path"]]
        first = (hand["round"] == 1).to_numpy()
        for attribute in ("colour", "gender", "pattern"):
            allowed = list(hand[f"{attribute}s"])
            score(attribute, f"uploads, hand-labelled ({photo_split(split)})", readings, allowed)
            if not first.all():  # the first round's photos, the set, on their own too
                score(attribute, f"  of which the first {first.sum()}", [r for r, f in zip(readings, first) if f],
                      [a for a, f in zip(allowed, first) if f])
            one_value(attribute, "value", readings, allowed)
    return out


def print_table(rows: list[dict]) -> None:
    header = f"{'task':<21} {'method':<34} {'R@10':>6} {'nDCG@10':>8} {'MRR':>6} {'P@10':>6} {'n':>5}"
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['task']:<21} {r['method']:<34} {r['R@10']:>6.3f} {r['nDCG@10']:>8.3f} {r['MRR']:>6.3f} "
              f"{r['P@10']:>6.3f} {r['queries']:>5}")


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets for real photos, checked against this run (auto + guard rows)."""
    out = []
    for task, goal in [("photo alone", 0.70), ("photo + colour", 0.65), ("photo + season/usage", 0.65)]:
        row = next((r for r in rows if r["task"] == task and r["method"].startswith("auto")), None)
        if row:
            out.append(f"{task}: auto P@10 {row['P@10']:.3f} (target >= {goal:.2f}): "
                       f"{'PASS' if row['P@10'] >= goal else 'FAIL'}")
    return out


def tune(product: Engine, seed: int) -> None:
    """Grid over the guided mode's settings on the dev photos (never the validation split); the
    gender prior also by whether results follow the photo's gender (dev hand-labelled uploads)."""
    photos = load_photos("dev").sample(frac=1.0, random_state=seed).head(200)
    hand = hand_labelled("dev")
    grid = [(w, t, 0.1, 0.1) for w, t in itertools.product([0.3, 0.5, 0.7], [0.15, 0.3, 0.6])]
    grid += [(0.7, 0.6, g, 0.1) for g in (0.2, 0.3)]
    print(f"tuning on {len(photos)} dev photos (P@10 of guided + guard by block) and {len(hand)} hand-labelled "
          "ones (gender: P@10 of photo alone, auto + guard, scored on gender)")
    print(f"{'weight':>6} {'prior type':>10} {'prior gender':>12} {'prior colour':>12}   alone  colour  "
          "season/usage  mean   gender")
    for weight, prior_type, prior_gender, prior_colour in grid:
        tweak.WEIGHT = weight
        tweak.PRIOR = {"type": prior_type, "gender": prior_gender, "colour": prior_colour,
                       "pattern": prior_colour / 2}
        table = Table()
        photo_blocks(product, photos, seed, table, modes=("guided",), guard=True)
        gender_block(product, hand, table)
        p10 = {(r["task"], r["method"]): r["P@10"] for r in table.result()}
        blocks = [p10.get((b, "guided"), float("nan"))
                  for b in ("photo alone", "photo + colour", "photo + season/usage")]
        gender = p10[("photo alone: gender", "auto (guided) + guard")]
        print(f"{weight:>6} {prior_type:>10} {prior_gender:>12} {prior_colour:>12}   "
              + "  ".join(f"{b:.3f}" for b in blocks) + f"        {np.mean(blocks):.3f}  {gender:.3f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate retrieval quality (see the module docstring).")
    p.add_argument("--model", default=settings.MODEL)
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR, help="the product index, for real photos")
    p.add_argument("--split", choices=["test", "dev"], default="test")
    p.add_argument("--queries", type=int, default=400, help="queries per catalog task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=settings.ROOT / "artifacts")
    p.add_argument("--json", type=Path, help="also write the tables here")
    p.add_argument("--tune", action="store_true", help="choose the guided settings on dev photos")
    p.add_argument("--outfits-only", action="store_true", help="only the outfit requests block")
    p.add_argument("--taste-only", action="store_true", help="only the personal-taste block")
    p.add_argument("--look-only", action="store_true", help="only the shop-the-look block")
    args = p.parse_args()
    splits = ["dev", "test"] if args.split == "test" else ["dev"]
    if args.taste_only:
        taste_rows = [row for split in splits for row in taste_eval.evaluate(args.index, split)]
        taste_eval.print_rows(taste_rows)
        return print("\n".join(taste_eval.report(taste_rows)))
    product = load_engine(args.index, model=args.model)
    if args.tune:
        return tune(product, args.seed)
    if args.look_only:
        look = look_eval.rows(product, splits)
        look_eval.print_rows(*look)
        return print("\n".join(look_eval.report(*look)))
    outfits = outfit_rows(product, args.split)
    if args.outfits_only:
        print_rows(outfits)
        return print("\n".join(report(outfits)))
    taste_rows = [row for split in splits for row in taste_eval.evaluate(args.index, split)]
    look = look_eval.rows(product, splits)
    held = held_out_engine(args.model, args.work)
    print(f"held-out index: {len(held.items)} items ({args.split} half queried); product index: "
          f"{len(product.items)} items; modes: {', '.join(held.modes)}")
    catalog, photos = Table(), Table()
    catalog_blocks(held, args.split, args.queries, args.seed, catalog)
    real = load_photos("validation" if args.split == "test" else "dev")
    main_folder = real[real["folder"] == settings.USER_PHOTOS_DIR.name]
    photo_blocks(product, main_folder, args.seed, photos)
    photo_blocks(product, real[real["folder"] != settings.USER_PHOTOS_DIR.name], args.seed, photos,
                 label="extra: ", modes=("image", "guided"))
    hand = hand_labelled(photo_split(args.split))
    gender_block(product, hand, photos)
    print("\nCatalog shots")
    print_table(catalog.result())
    print(f"\nReal photos ({'validation' if args.split == 'test' else 'dev'}: {len(main_folder)} from "
          f"{settings.USER_PHOTOS_DIR.name}, 'extra:' {len(real) - len(main_folder)} from "
          f"{settings.USER_PHOTOS_EXTRA_DIR.name}; 'gender': the {len(hand)} hand-labelled ones) against the product "
          "index")
    print_table(photos.result())
    accuracy = []
    if held.reader is not None:
        folders = {f"{f} ({photo_split(args.split)})": real[real["folder"] == f] for f in real["folder"].unique()}
        accuracy = reader_accuracy(held, half(held.items, args.split), folders,
                                   hand, args.split)
        print("\nPhoto reading: top-1 accuracy, mean confidence, expected calibration error (ECE, ten bins),"
              "\nand the ECE a perfectly calibrated reader would show on as many photos (median of 1,000 draws)")
        print(f"{'attribute':<9} {'photos':<40} {'accuracy':>8} {'confidence':>10} {'ECE':>6} {'if calibrated':>13} {'n':>5}")
        for r in accuracy:
            print(f"{r['attribute']:<9} {r['photos']:<40} {r['accuracy']:>8.3f} {r['confidence']:>10.3f} "
                  f"{r['ECE']:>6.3f} {r['ECE if calibrated']:>13.3f} {r['n']:>5}")
    print("\nOutfit requests (scripts/outfit_requests.json), engine.complete on the product index")
    print_rows(outfits)
    print("\nPersonal taste: simulated shoppers, five rounds of search + like/pass (scripts/taste_eval.py)")
    taste_eval.print_rows(taste_rows)
    print("\nShop the look: pieces on hand-labelled photos of people, and search by a piece (scripts/look_eval.py)")
    look_eval.print_rows(*look)
    print("\n" + "\n".join(targets(photos.result()) + report(outfits) + taste_eval.report(taste_rows)
                            + look_eval.report(*look)))
    if args.json:
        args.json.write_text(json.dumps({"catalog": catalog.result(), "photos": photos.result(),
                                         "reader": accuracy, "outfits": outfits, "taste": taste_rows,
                                         "look": {"labelled": look[0], "search": look[1]}},
                                        indent=2, default=float))


if __name__ == "__main__":
    main()
