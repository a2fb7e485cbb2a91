"""The demand report for people (text), programs (JSON with a fixed shape) and spreadsheets (CSV)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from fashion_rag.insights.report import THIN, Report

SECTIONS = ("asked", "supply", "photographed", "verdicts")  # the per-attribute tables, in print order


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _records(table: pd.DataFrame) -> list[dict]:
    """Rows as plain JSON values (NaN -> null)."""
    return json.loads(table.to_json(orient="records", force_ascii=False))


def as_json(report: Report) -> dict:
    """Always the same keys in the same order; empty tables are empty lists."""
    return {"window": {"days": report.days, "from": _when(report.since), "to": _when(report.until)},
            "totals": report.totals, "gaps": _records(report.gaps)} | \
        {section: {name: _records(table) for name, table in getattr(report, section).items()}
         for section in SECTIONS}


def as_csv(report: Report) -> str:
    """Every table of the report in one: a section and attribute column, then each table's own."""
    tables = [report.gaps.assign(section="gaps", attribute="",
                                 asked_as=report.gaps["asked_as"].map("; ".join))]
    tables += [table.assign(section=section, attribute=name) for section in SECTIONS
               for name, table in getattr(report, section).items()]
    merged = pd.concat(tables, ignore_index=True)
    return merged[["section", "attribute"] + [c for c in merged.columns if c not in ("section", "attribute")]] \
        .to_csv(index=False)


def _pct(share: float) -> str:
    return "<0.1%" if 0 < share < 0.001 else f"{share:.1%}" if 0 < share < 0.095 else f"{share:.0%}"


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 'es' if word.endswith(('s', 'ch')) else 's'}"


def _change(previous: int, change: float | None) -> str:
    return f"{previous}, new" if previous == 0 else f"{previous}, {change:+.0%}"


def summary(report: Report) -> list[str]:
    """The window and its totals, in a line or two."""
    t, days = report.totals, f"{report.days:g} days"
    lines = [f"Demand report · last {days} ({_when(report.since)} to {_when(report.until)})"]
    if not t["requests"]:
        return lines + ["No requests were logged in this window."]
    return lines + [f"{_n(t['requests'], 'request')} ({_n(t['searches'], 'search')}, {_n(t['outfits'], 'outfit')}; "
                    f"{_pct(t['photos'] / t['requests'])} with a photo); {t['previous']:,} in the {days} before. "
                    f"Afterwards: {_n(t['likes'], 'like')}, {_n(t['passes'], 'pass')}, "
                    f"{_n(t['refines'], 'refined search')}; {_pct(t['unliked_share'])} of requests ended "
                    "without a like."]


def as_text(report: Report) -> str:
    t, days = report.totals, f"{report.days:g} days"
    lines = summary(report)
    if not t["requests"]:
        return "\n".join(lines)
    lines += ["", f"Gaps: asked often, fewer than {THIN} items (by unmet demand = requests × (1 − items/{THIN}))"]
    for n, gap in enumerate(report.gaps.itertuples(), 1):
        lines.append(f"  {n}. {gap.combination}: {_n(gap.requests, 'request')}, {_n(gap.items, 'item')}, "
                     f"{_pct(gap.unliked_share)} of them refined or abandoned (the {days} before: {gap.previous})")
        if gap.asked_as:
            more = f" and {len(gap.asked_as) - 3} more" if len(gap.asked_as) > 3 else ""
            lines.append(f"     also asked as: {'; '.join(gap.asked_as[:3])}{more}")
    if report.gaps.empty:
        lines.append("  none")
    blocks = [("Most asked (requests; the window before, change)", report.asked,
               lambda r: f"{r.value} {r.requests} ({_change(r.previous, r.change)})"),
              ("Supply against demand (share of requests / share of catalog items)", report.supply,
               lambda r: f"{r.value} {_pct(r.demand_share)} / {_pct(r.catalog_share)} ({r.ratio:.1f}×)"),
              (f"What shoppers photograph ({t['photos']:,} photos; the reader's top value when sure)",
               report.photographed, lambda r: f"{r.value} {_pct(r.share)}"),
              ("Likes / passes of results", report.verdicts,
               lambda r: f"{r.value} {r.likes}/{r.passes}")]
    for title, tables, cell in blocks:
        lines += ["", title]
        for name, table in tables.items():
            shown = " · ".join(cell(r) for r in table.head(6).itertuples()) or "none"
            lines.append(f"  {name:<8} {shown}")
    return "\n".join(lines)

