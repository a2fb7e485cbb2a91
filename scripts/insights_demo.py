"""A simulated fortnight of shoppers through the real engine with the demand log on, then the demand
report for its second week, as `python -m fashion_rag insights` and the Insights page show it.

Requests come from the evaluation's wordings (scripts/evaluate.py: free-worded attribute
combinations, catalog photos with a colour, season, usage or gender tweak), real uploads (the user
photos' validation split, alone or "in <colour>") and the outfit requests of
scripts/outfit_requests.json. Into the second week, demand is planted on purpose:
- gaps, few items: red dresses (3 in the catalog), white jeans for women (0), kids' white sneakers (0)
- controls, ample supply (they must not come out as gaps): white sneakers for women (50 items),
  black t-shirts for men (196)
A shopper looks at the top 12 results: likes the first that has what they asked for (most of the
time), else passes the first and may refine (the same words with the page's filters set to what
they want), else leaves. The run checks that every planted gap ranks in the top 5 and that no
combination with at least 50 matching items is a gap; it exits with 1 otherwise.

    python scripts/insights_demo.py [--per-week 250] [--spike 30] [--seed 0] [--log PATH] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="fashion-rag-insights-demo-"))
# The simulated shoppers' likes and passes go to a throwaway profile store, never profiles/.
os.environ["FASHION_RAG_PROFILES"] = str(WORK / "profiles.sqlite3")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import COLOUR_TWEAKS, composed_queries, text_queries  # noqa: E402

from fashion_rag import settings  # noqa: E402
from fashion_rag.data.catalog import group_types  # noqa: E402
from fashion_rag.data.photos import load_photos  # noqa: E402
from fashion_rag.engine import Engine, load_engine  # noqa: E402
from fashion_rag.insights import DemandLog, build_report  # noqa: E402
from fashion_rag.insights.show import as_json, as_text  # noqa: E402
from fashion_rag.insights.wants import label as label_of  # noqa: E402
from fashion_rag.retrieval.guard import Constraints  # noqa: E402
from fashion_rag.taste.profiles import new_profile_id  # noqa: E402

DAY = 86400.0
END = float(int(time.time()) // 60 * 60)  # the fortnight ends as the run starts: the page shows it as "the last 7 days"
K, LIKE, PASS, REFINE = 12, 0.8, 0.5, 0.5  # results looked at; chances to like a fit, pass a miss, refine
TOP, AMPLE = 5, 50
SNEAKERS = ["Casual Shoes", "Sports Shoes"]
# (what is planted, its words, photo tweaks for photos of the same type, what the shopper wants, a gap?)
PLANTED = [
    ("red dresses", ["a red dress", "red dresses please", "i need red dresses that a woman would wear",
                     "dresses, colour red, please", "got any red dresses for a party?"],
     ("Dresses", "red"), {"articleType": ["Dresses"], "baseColour": ["Red"]}, True),
    ("white jeans for women", ["white jeans for women", "i need white jeans that a woman would wear",
                               "jeans, colour white, please"],
     ("Jeans", "white"), {"gender": ["Women"], "articleType": ["Jeans"], "baseColour": ["White"]}, True),
    ("kids' white sneakers", ["white sneakers for kids", "kids' white sneakers", "white sneakers for girls and boys"],
     None, {"gender": ["Boys", "Girls"], "articleType": SNEAKERS, "baseColour": ["White"]}, True),
    ("white sneakers for women", ["white sneakers for women", "i need white sneakers that a woman would wear"],
     None, {"gender": ["Women"], "articleType": SNEAKERS, "baseColour": ["White"]}, False),
    ("black t-shirts for men", ["black t-shirts for men", "i need black t-shirts that a man would wear"],
     None, {"gender": ["Men"], "articleType": ["Tshirts"], "baseColour": ["Black"]}, False),
]


@dataclass
class Ask:
    text: str = ""
    image: str | None = None
    want: dict[str, list[str]] = field(default_factory=dict)  # what the shopper wants, as the page's filters
    relevant: set[int] | None = None  # or exactly these items (a tweak the filters cannot say)
    outfit: bool = False

    def fits(self, item: dict) -> bool:
        return item["id"] in self.relevant if self.relevant is not None else \
            Constraints({c: set(v) for c, v in self.want.items() if v}).allows(item)


class Clock:
    """The simulated time every request is logged at."""
    now = END

    def __call__(self) -> float:
        return self.now


def baseline(engine: Engine, n: int, rng: random.Random) -> list[Ask]:
    """A week's ordinary demand: evaluation wordings, uploads and outfit requests."""
    items = engine.items
    asks = [Ask(text, want={c: [v] for c, v in wanted.items()})
            for text, wanted in text_queries(items, items, int(n * 0.4), rng)]
    for ref, tweak, relevant in composed_queries(items, items, int(n * 0.25), rng):
        asks.append(Ask(tweak, ref["path"], {"articleType": [ref["articleType"]]}, relevant))
    photos = load_photos("validation").sample(n=int(n * 0.25), random_state=rng.randrange(1 << 30))
    kinds = list(items["articleType"].unique())
    for path, groups in zip(photos["path"], photos["groups"]):
        want = {"articleType": [t for g in groups for t in group_types(g, kinds)]}
        if rng.random() < 0.5:
            asks.append(Ask("", path, want))
        else:
            colour = rng.choice(["Black", "White", "Blue", "Red", "Green", "Pink", "Grey", "Navy Blue"])
            asks.append(Ask(rng.choice(COLOUR_TWEAKS).format(v=colour.lower()), path, want | {"baseColour": [colour]}))
    requests = json.loads((Path(__file__).parent / "outfit_requests.json").read_text())["requests"]
    for request in rng.choices(requests, k=n - len(asks)):
        photo = settings.USER_PHOTOS_DIR.parent / request["photo"] if request.get("photo") else None
        asks.append(Ask(request["text"], str(photo) if photo and photo.is_file() else None, outfit=True))
    return asks


def planted(engine: Engine, spike: int, rng: random.Random) -> list[Ask]:
    """The planted demand: each spike's words, and photos of the same type with a colour tweak."""
    items, asks = engine.items, []
    for _, words, photo, want, _ in PLANTED:
        for n in range(spike):
            if photo and n % 3 == 2:  # a third of them: "this, in red" on a photo of another colour
                kind, colour = photo
                others = items[(items["articleType"] == kind) & (items["baseColour"].str.lower() != colour)]
                asks.append(Ask(rng.choice(COLOUR_TWEAKS).format(v=colour), rng.choice(list(others["path"])), want))
            else:
                asks.append(Ask(rng.choice(words), None, want))
    return asks


def shop(engine: Engine, ask: Ask, rng: random.Random) -> None:
    """One shopper: the request, then a like, a pass and a refinement, or leaving."""
    if ask.outfit:
        engine.complete(image=ask.image, text=ask.text, planner="rules")
        return
    profile = new_profile_id()
    for filters in (None, ask.want):
        hits = engine.search(image=ask.image, text=ask.text or None, k=K, profile=profile, filters=filters)
        fits = [h for h in hits if ask.fits(h.item)]
        if fits and rng.random() < LIKE:
            engine.feedback(profile, fits[0].item_id, True)
            return
        if hits and rng.random() < PASS:
            engine.feedback(profile, hits[0].item_id, False)
        if filters is not None or rng.random() >= REFINE:
            return


def simulate(engine: Engine, clock: Clock, per_week: int, spike: int, seed: int) -> int:
    rng, served = random.Random(seed), 0
    for week in (0, 1):
        asks = baseline(engine, per_week, rng) + (planted(engine, spike, rng) if week else [])
        rng.shuffle(asks)
        start = END - (2 - week) * 7 * DAY
        for n, ask in enumerate(asks):
            clock.now = start + 7 * DAY * (n + rng.random()) / len(asks)
            shop(engine, ask, rng)
            served += 1
        print(f"  week {week + 1}: {len(asks)} shoppers", file=sys.stderr, flush=True)
    return served


def checks(gaps) -> list[str]:
    """Where each planted gap ranks, and any gap with ample supply; '' lines mean all is well."""
    ranks = {label: n for n, row in gaps.iterrows() for label in [row["combination"], *row["asked_as"]]}
    failed = []
    for name, _, _, want, gap in PLANTED:
        rank = ranks.get(label_of({c: tuple(sorted(v)) for c, v in want.items()}))
        ok = (rank is not None and rank < TOP) if gap else rank is None
        print(f"check: {name}: {'gap #' + str(rank + 1) if rank is not None else 'not a gap'} "
              f"({'planted gap' if gap else 'ample supply'}) {'ok' if ok else 'FAILED'}")
        failed += [] if ok else [name]
    ample = gaps[gaps["items"] >= AMPLE]
    print(f"check: gaps with >= {AMPLE} items: {len(ample)} {'ok' if ample.empty else 'FAILED'}")
    return failed + list(ample["combination"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-week", type=int, default=250, help="ordinary shoppers per week")
    parser.add_argument("--spike", type=int, default=30, help="shoppers per planted demand (second week)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, default=WORK / "insights.sqlite3", help="the demand log to write (new)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.log.exists():
        parser.error(f"{args.log} exists; the simulation writes a new log")
    engine, clock = load_engine(settings.INDEX_DIR), Clock()
    engine.demand = DemandLog(args.log, engine.items, days=365, clock=clock)
    started = time.perf_counter()
    served = simulate(engine, clock, args.per_week, args.spike, args.seed)
    engine.demand.close()
    print(f"  {served} shoppers in {time.perf_counter() - started:.0f} s; log: {args.log}", file=sys.stderr)
    started = time.perf_counter()
    report = build_report(engine.demand.store, engine.items, days=7, until=END)
    shown = json.dumps(as_json(report), indent=2, ensure_ascii=False) if args.json else as_text(report)
    print(shown)
    print(f"(report built and rendered in {time.perf_counter() - started:.2f} s)", file=sys.stderr)
    return 1 if checks(report.gaps) else 0


if __name__ == "__main__":
    sys.exit(main())
