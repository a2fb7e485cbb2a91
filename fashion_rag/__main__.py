"""Command line: `python -m fashion_rag search --image PATH --text "..." [--k 10] [--mode M] [--json]`,
`python -m fashion_rag complete [--image PATH] [--text "..."] [--item ID] [--k 3] [--json]` (an outfit),
`python -m fashion_rag insights [--days 7] [--json]` (the demand report) and
`python -m fashion_rag prepare` (train/build whatever is missing)."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from fashion_rag import settings
from fashion_rag.encoding.fusion import MODES
from fashion_rag.errors import FashionRagError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fashion_rag", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="query the index with a photo, a text, or both")
    search.add_argument("--image", help="path of a photo")
    search.add_argument("--text", help="what you want, e.g. 'same but in red, no stripes'")
    search.add_argument("--k", type=int, default=10)
    search.add_argument("--mode", default="auto", choices=("auto",) + MODES)
    search.add_argument("--weight", type=float, default=0.5, help="text share in sum/concat (0-1)")
    search.add_argument("--filter", action="append", default=[], metavar="COLUMN=VALUE",
                        help="keep only items with this value, e.g. --filter gender=Women (repeatable)")
    search.add_argument("--no-guard", action="store_true", help="do not parse the text for attributes")
    search.add_argument("--index", default=str(settings.INDEX_DIR))
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    complete = commands.add_parser("complete", help="an outfit: slots to fill around a photo, an item or words")
    complete.add_argument("--image", help="path of a photo of what you have")
    complete.add_argument("--text", default="", help="e.g. 'shoes and a bag to go with this'")
    complete.add_argument("--item", type=int, help="catalog id of a piece to build around")
    complete.add_argument("--k", type=int, default=3, help="pieces per slot (the first is the outfit's)")
    complete.add_argument("--planner", default="auto", choices=("auto", "llm", "rules"))
    complete.add_argument("--filter", action="append", default=[], metavar="COLUMN=VALUE",
                          help="restrict every piece, e.g. --filter gender=Men (repeatable)")
    complete.add_argument("--index", default=str(settings.INDEX_DIR))
    complete.add_argument("--json", action="store_true", help="print JSON instead of a list")
    insights = commands.add_parser("insights", help="the demand report: what shoppers ask for, and the gaps")
    insights.add_argument("--days", type=float, default=7, help="the window: the last N days (default 7)")
    insights.add_argument("--until", help="the window's end, YYYY-MM-DD[THH:MM] UTC (default: now)")
    insights.add_argument("--log", default=str(settings.INSIGHTS), help="the demand log (FASHION_RAG_INSIGHTS)")
    insights.add_argument("--index", default=str(settings.INDEX_DIR), help="the index whose items are the supply")
    insights.add_argument("--json", action="store_true", help="print JSON (always the same keys) instead of text")
    insights.add_argument("--csv", metavar="PATH", help="also write every table of the report to this CSV file")
    prepare = commands.add_parser("prepare", help="train the encoder/composer and build the index if missing")
    prepare.add_argument("--index", default=str(settings.INDEX_DIR))
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            from fashion_rag.prepare import prepare as run_prepare
            print(json.dumps(run_prepare(args.index) or {"status": "everything already in place"}))
            return 0
        return {"complete": _complete, "insights": _insights}.get(args.command, _search)(args)
    except FashionRagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _filters(specs: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for spec in specs:
        column, _, value = spec.partition("=")
        if not value:
            raise FashionRagError(f"--filter wants COLUMN=VALUE, got {spec!r}")
        filters.setdefault(column.strip(), []).append(value.strip())
    return filters


def _complete(args) -> int:
    from fashion_rag.engine import load_engine
    outfit = load_engine(args.index).complete(image=args.image, text=args.text, k=args.k, item_id=args.item,
                                              filters=_filters(args.filter) or None, planner=args.planner)
    if args.json:
        print(json.dumps({"planner": outfit.planner, "gender": outfit.gender, "notes": outfit.notes,
                          "context": [{"role": p.role, "what": p.words, "from": p.source} for p in outfit.context],
                          "slots": [{"role": s.role, "why": s.why, "hits": [
                              {"item_id": h.item_id, "score": round(h.score, 4), "item": h.item} for h in s.hits]}
                              for s in outfit.slots]}, indent=2))
        return 0
    print("; ".join(outfit.describe()))
    for note in outfit.notes:
        print(f"note: {note}")
    for slot in outfit.slots:
        print(f"{slot.role}: {slot.why}")
        for rank, hit in enumerate(slot.hits):
            print(f"  {'*' if rank == 0 else ' '} #{hit.item_id}  {hit.item['productDisplayName'] or '(no name)'}"
                  f"  [{hit.item['gender']}, {hit.item['baseColour']}, {hit.item['articleType']}]")
    return 0


def _insights(args) -> int:
    from fashion_rag.insights import build_report
    from fashion_rag.insights.show import as_csv, as_json, as_text
    from fashion_rag.insights.store import DemandStore
    from fashion_rag.retrieval.index import load_index
    if not Path(args.log).is_file():
        raise FashionRagError(f"No demand log at {args.log}: the app writes one while it serves shoppers "
                              "(FASHION_RAG_INSIGHTS).")
    if not args.days > 0:
        raise FashionRagError("--days wants a number of days above 0.")
    try:
        until = datetime.fromisoformat(args.until).replace(tzinfo=timezone.utc).timestamp() if args.until else None
    except ValueError:
        raise FashionRagError(f"--until wants a date like 2025-06-02 or 2025-06-02T18:00, got {args.until!r}") from None
    report = build_report(DemandStore(args.log), load_index(args.index, check_store=False).items, args.days, until)
    if args.csv:
        Path(args.csv).write_text(as_csv(report))
    print(json.dumps(as_json(report), indent=2, ensure_ascii=False) if args.json else as_text(report))
    return 0


def _search(args) -> int:
    from fashion_rag.engine import load_engine
    engine = load_engine(args.index)
    results = engine.search(image=args.image, text=args.text, k=args.k, mode=args.mode, weight=args.weight,
                            filters=_filters(args.filter) or None, guard=not args.no_guard)
    if args.json:
        print(json.dumps({"mode": results.mode, "applied": results.applied, "notes": results.notes,
                          "hits": [{"item_id": h.item_id, "score": round(h.score, 4), "why": h.why,
                                    "item": h.item} for h in results]}, indent=2))
        return 0
    print(f"mode: {results.mode}" + (f" | applied: {'; '.join(results.applied)}" if results.applied else ""))
    for note in results.notes:
        print(f"note: {note}")
    for rank, hit in enumerate(results, 1):
        item = hit.item
        print(f"{rank:>3}. {hit.score:6.3f}  #{hit.item_id}  {item['productDisplayName'] or '(no name)'}"
              f"  [{item['gender']}, {item['baseColour']}, {item['articleType']}]")
        print(f"        why: {'; '.join(hit.why)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
