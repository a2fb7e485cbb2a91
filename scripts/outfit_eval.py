"""Outfit requests (scripts/outfit_requests.json) through `engine.complete`, scored by what each
request must satisfy. Used by scripts/evaluate.py; `python scripts/outfit_eval.py` runs it alone.

Per planner, over the requests of one split:
- slot coverage: required slots that are filled / required slots;
- context leakage: outfits with a piece (any shown, alternatives too) in a slot the shopper's own
  pieces rule out (a dress for "my red dress", a top over "this dress");
- attribute satisfaction: the outfit's pieces meet the hard asks (a slot's colour or type, "no
  black", "no stripes", the gender) / such checks;
- gender consistency: outfits whose pieces are for one gender (unisex fits any), the asked one;
- usage consistency and colour harmony: outfits that break no usage / colour rule of
  fashion_rag.outfits.outfit's table (colour counted with what the shopper has, as the planner saw it);
- latency: engine.complete, median over `repeats` runs of every request.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag import llm, settings
from fashion_rag.engine import Engine, load_engine  # noqa: E402
from fashion_rag.outfits.outfit import clashes  # noqa: E402
from fashion_rag.outfits.planner import BLOCKS, ROLE_OF  # noqa: E402

REQUESTS = Path(__file__).resolve().parent / "outfit_requests.json"
TARGETS = {"slot coverage": 0.95, "context leakage": 0.0, "attribute satisfaction": 0.95,
           "gender consistency": 1.0}


def load_requests(split: str) -> list[dict]:
    return [r for r in json.loads(REQUESTS.read_text())["requests"] if split in ("all", r["split"])]


def _call(engine: Engine, request: dict, planner: str):
    photo = settings.CATALOG_DIR.parent / request["photo"] if "photo" in request else None
    return engine.complete(image=photo, text=request["text"], item_id=request.get("item"), planner=planner)


def score(outfit, request: dict) -> dict:
    """The checks of one outfit against what its request must satisfy."""
    hard = request.get("hard", {})
    filled = {slot.role for slot in outfit.slots if slot.hits}
    pieces = {slot.role: slot.hits[0].item for slot in outfit.slots if slot.hits}
    blocked = set().union(*(BLOCKS.get(r, {r}) for r in request["context"]))
    shown = [h.item for slot in outfit.slots for h in slot.hits]
    checks = []
    for kind, column in (("colours", "baseColour"), ("types", "articleType")):
        for role, allowed in hard.get(kind, {}).items():
            checks.append(role in pieces and pieces[role][column] in allowed)
    for item in pieces.values():
        checks += [item["baseColour"] not in hard.get("exclude_colours", [])]
        checks += [stem not in item["productDisplayName"].lower() for stem in hard.get("exclude_patterns", [])]
        if "gender" in hard:
            checks.append(item["gender"] in (hard["gender"], "Unisex"))
    genders = {item["gender"] for item in pieces.values()} - {"Unisex"}
    seen = [{"baseColour": p.colours[0]} for p in outfit.context if p.colours]
    return {"required": len(request["required"]), "covered": len(set(request["required"]) & filled),
            "leaked": any(ROLE_OF.get(item["articleType"]) in blocked for item in shown),
            "checks": len(checks), "passed": sum(checks),
            "one gender": len(genders) <= 1 and genders <= {hard.get("gender", next(iter(genders), ""))},
            "usage ok": "usage" not in clashes(list(pieces.values())),
            "harmony": "colour" not in clashes(seen + list(pieces.values())),
            "planner": outfit.planner}


def evaluate(engine: Engine, split: str, planner: str, repeats: int = 3) -> dict:
    requests = load_requests(split)
    scores, times = [], []
    for n in range(repeats):
        for request in requests:
            started = time.perf_counter()
            outfit = _call(engine, request, planner)
            times.append(time.perf_counter() - started)
            if n == 0:
                scores.append(score(outfit, request))
    total = len(scores)
    return {"planner": planner, "split": split, "requests": total,
            "slot coverage": sum(s["covered"] for s in scores) / sum(s["required"] for s in scores),
            "context leakage": sum(s["leaked"] for s in scores) / total,
            "attribute satisfaction": sum(s["passed"] for s in scores) / max(1, sum(s["checks"] for s in scores)),
            "gender consistency": sum(s["one gender"] for s in scores) / total,
            "usage consistency": sum(s["usage ok"] for s in scores) / total,
            "colour harmony": sum(s["harmony"] for s in scores) / total,
            "planned by llm": sum(s["planner"] == "llm" for s in scores) / total,
            "p50 ms": 1000 * statistics.median(times), "p95 ms": 1000 * sorted(times)[int(0.95 * (len(times) - 1))]}


COLUMNS = ["slot coverage", "context leakage", "attribute satisfaction", "gender consistency",
           "usage consistency", "colour harmony", "p50 ms", "p95 ms"]


def print_rows(rows: list[dict]) -> None:
    names = ["coverage", "leakage", "attributes", "gender", "usage", "harmony", "p50 ms", "p95 ms"]
    header = f"{'planner':<8} {'split':<5} {'n':>3} " + " ".join(f"{n:>10}" for n in names)
    print(header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['planner']:<8} {r['split']:<5} {r['requests']:>3} "
              + " ".join(f"{r[c]:>10.1f}" if c.endswith("ms") else f"{r[c]:>10.3f}" for c in COLUMNS))


def outfit_rows(engine: Engine, split: str, repeats: int = 3) -> list[dict]:
    """The rule planner on `split` (and dev beside test), and the LLM planner when one is configured."""
    splits = ["dev", "test"] if split == "test" else ["dev"]
    rows = [evaluate(engine, s, "rules", repeats) for s in splits]
    if llm.configured():
        rows += [evaluate(engine, s, "llm", 1) for s in splits]
    return rows


def report(rows: list[dict]) -> list[str]:
    lines = [] if llm.configured() else ["LLM planner: not run (no OPENAI_API_KEY; no model is reachable here)."]
    for row in rows:
        if row["planner"] == "rules" and row["split"] == "test":
            for metric, goal in TARGETS.items():
                ok = row[metric] <= goal if metric == "context leakage" else row[metric] >= goal
                lines.append(f"outfits, rules, {metric}: {row[metric]:.3f} (target "
                             f"{'<=' if metric == 'context leakage' else '>='} {goal:g}): {'PASS' if ok else 'FAIL'}")
            lines.append(f"outfits, rules, p50 {row['p50 ms']:.1f} ms (target < 150 ms): "
                         f"{'PASS' if row['p50 ms'] < 150 else 'FAIL'}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate outfit requests (see the module docstring).")
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR)
    p.add_argument("--split", choices=["test", "dev"], default="test")
    p.add_argument("--repeats", type=int, default=3, help="timing runs over all requests")
    args = p.parse_args()
    engine = load_engine(args.index)
    rows = outfit_rows(engine, args.split, args.repeats)
    print_rows(rows)
    print("\n".join(report(rows)))


if __name__ == "__main__":
    main()
