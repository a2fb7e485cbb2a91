"""The Insights tab: the demand report (fashion_rag.insights) for the shop's owner, as tables,
Gradio's own plots and a CSV download.

Only the owner sees it: when the app has a login, the user FASHION_RAG_OWNER; without one, only a
local run (listening on this machine, no share link, not a Space). Hiding the tab is not the only
guard: the report comes from a handler that checks the same for every call.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from fashion_rag import Engine, settings
from fashion_rag.insights.report import build_report
from fashion_rag.insights.store import READ
from fashion_rag.insights.show import as_csv, summary
from fashion_rag.ui.session import bind
from fashion_rag.ui.widgets import CheckedDropdown, CheckedRadio

WINDOWS = [("7 days", 7), ("30 days", 30), ("90 days", 90)]
ATTRIBUTES = [("Types", "types"), ("Colours", "colours"), ("Usages", "usages"), ("Seasons", "seasons")]
LOCAL = {"127.0.0.1", "localhost", "::1"}
NOT_OWNER = "The insights are for the shop's owner: log in as the owner to see them."
GAP_HEADERS = {"combination": "asked for", "requests": "requests", "items": "items",
               "unliked_share": "no like", "unmet_demand": "unmet", "previous": "before", "asked_as": "also asked as"}
EMPTY_GAPS = pd.DataFrame(columns=list(GAP_HEADERS.values()))
VERDICT_COLOURS = {"like": "#16a34a", "pass": "#94a3b8"}
PLOT = {"x_title": " ", "y_lim": [0, None], "sort": "-y", "tooltip": "all", "x_label_angle": -30, "height": 260}


def is_owner(demo: gr.Blocks, request: gr.Request | None) -> bool:
    """Whether this request comes from the owner (see the module's docstring)."""
    user = getattr(request, "username", None)
    if user is not None:
        return user == settings.OWNER
    return not demo.share and getattr(demo, "server_name", None) in LOCAL and not os.environ.get("SPACE_ID")


def show_tab(demo: gr.Blocks, request: gr.Request) -> gr.Tab:
    return gr.Tab(visible=is_owner(demo, request))


def tab(engine: Engine, demo: gr.Blocks) -> gr.Tab:
    """The Insights tab, hidden until the page loads for the owner; call it inside the page's Tabs."""
    downloads = Path(tempfile.mkdtemp(prefix="fashion-rag-insights-"))
    with gr.Tab("Insights", id="insights", visible=False, elem_id="insights") as insights:
        with gr.Row(equal_height=False):
            days = CheckedDropdown(WINDOWS, value=7, label="Window", scale=1, min_width=120)
            attribute = CheckedRadio(ATTRIBUTES, value="types", label="Attribute", scale=3)
            with gr.Column(scale=1, min_width=130):
                refresh = gr.Button("Refresh", size="sm", elem_id="insights-refresh")
                download = gr.DownloadButton("Download CSV", size="sm", elem_id="insights-csv")
        totals = gr.Markdown(elem_id="insights-summary")
        gaps = gr.Dataframe(EMPTY_GAPS, label="Gaps: asked often, few items (by unmet demand)", interactive=False,
                            wrap=True, elem_id="insights-gaps", max_height=440,
                            column_widths=["24%", "14%", "9%", "9%", "10%", "10%", "24%"])
        with gr.Row():
            asked = gr.BarPlot(x="value", y="requests", title="Most asked", elem_id="insights-asked", **PLOT)
            supply = gr.BarPlot(x="value", y="ratio", title="Demand ÷ catalog share", y_title="× its catalog share",
                                **PLOT)
        with gr.Row():
            with gr.Column():
                photographed = gr.BarPlot(x="value", y="share", title="What shoppers photograph", **PLOT)
                read = CheckedRadio(list(READ), value="type", label="Read from the photos", container=False)
            verdicts = gr.BarPlot(x="value", y="count", color="verdict", color_map=VERDICT_COLOURS,
                                  title="Likes and passes of results", **PLOT)
        outputs = [totals, gaps, asked, supply, photographed, verdicts, download]
        load = bind(report_view, engine, demo, downloads)
        gr.on([insights.select, refresh.click, days.change, attribute.change, read.change], load,
              [days, attribute, read], outputs, api_visibility="private", concurrency_id="insights")
    demo.load(bind(show_tab, demo), None, insights, api_visibility="private", show_progress="hidden")
    return insights


def report_view(engine: Engine, demo: gr.Blocks, downloads: Path, days: int, attribute: str, read: str,
                request: gr.Request) -> tuple:
    """The report for the owner: (summary, gaps, four plots' frames, the CSV file)."""
    if not is_owner(demo, request):
        raise gr.Error(NOT_OWNER, print_exception=False)
    log = engine.demand
    if not log.enabled:
        return ("The demand log is off (`FASHION_RAG_INSIGHTS=off`): nothing is recorded.", EMPTY_GAPS,
                None, None, None, None, None)
    log.flush()
    report = build_report(log.store, engine.items, days, supply=log.supply)
    lines = summary(report)
    failed = f"  \n_{log.failures:,} requests could not be logged since the app started._" if log.failures else ""
    csv = downloads / f"demand-report-{days}-days.csv"
    csv.write_text(as_csv(report))
    table = report.gaps.assign(asked_as=report.gaps["asked_as"].map("; ".join),
                               unliked_share=report.gaps["unliked_share"].map("{:.0%}".format))
    verdicts = report.verdicts[attribute].melt("value", ["likes", "passes"], "verdict", "count")
    return (f"**{lines[0]}**  \n" + "  \n".join(lines[1:]) + failed,
            table.rename(columns=GAP_HEADERS)[list(GAP_HEADERS.values())],
            report.asked[attribute], report.supply[attribute], report.photographed[read],
            verdicts.assign(verdict=verdicts["verdict"].map({"likes": "like", "passes": "pass"})), str(csv))
