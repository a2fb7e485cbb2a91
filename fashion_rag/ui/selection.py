"""Selection and history: a clicked product shows why it matched and can become the next query
photo; every search or outfit is a step, and Undo goes back one with its results and reply."""
from __future__ import annotations

import gradio as gr

from fashion_rag.reply.markdown import escape
from fashion_rag.ui.format import details_markdown, item_name
from fashion_rag.ui.outfit import MAX_SLOTS, fill_board
from fashion_rag.ui.query import STATUS_EMPTY
from fashion_rag.ui.session import Session, new_session
from fashion_rag.ui.stylist import REPLY_EMPTY, REPLY_PENDING

DETAILS_EMPTY = "_Click a product to see why it matched, then use it as your new reference._"
HISTORY_EMPTY = "_Your search steps are listed here; **Undo** goes back one._"


def history_markdown(steps: list[dict]) -> str:
    """The steps panel: one numbered line per search or outfit."""
    if not steps:
        return HISTORY_EMPTY
    lines = []
    for n, step in enumerate(steps, 1):
        query = " + ".join(filter(None, [step["source"], f"“{escape(step['text'])}”" if step["text"] else ""]))
        if step.get("outfit") is not None:
            lines.append(f"{n}. outfit for {query or 'you'} → {len(step['hits'])} pieces")
        else:
            lines.append(f"{n}. {query} → {len(step['hits'])} items")
    return "**Your steps**\n\n" + "\n".join(lines)


def after_step(session: Session) -> tuple:
    """After a new step: its history line; the selection cleared; the reply on its way."""
    return history_markdown(session["steps"]), None, DETAILS_EMPTY, REPLY_PENDING


def pick(evt: gr.SelectData) -> int:
    """The position clicked in a gallery."""
    return evt.index


def select_item(index: int | None, session: Session) -> tuple:
    """Show result `index` of the latest step (for an outfit: its pieces, slot by slot)."""
    steps = session["steps"]
    hits = steps[-1]["hits"] if steps else []
    try:
        index = int(index)
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < len(hits):
        raise gr.Error("Pick one of the products in the current results (a position from 0).",
                       print_exception=False)
    hit = hits[index]
    return hit.item["path"], details_markdown(hit, index), {**session, "selected": hit}


def use_as_reference(session: Session) -> tuple:
    """The selected product's photo becomes the query photo (words cleared for a new tweak)."""
    hit = session.get("selected")
    if hit is None:
        raise gr.Error("First click a product in the results, then use it as your new reference.",
                       print_exception=False)
    gr.Info(f"“{item_name(hit.item)}” is now your reference photo: type a tweak and search.")
    anchor = {"id": hit.item_id, "path": hit.item["path"]}
    return hit.item["path"], "", {**session, "anchor": anchor}


def undo(session: Session) -> tuple:
    """Drop the latest step and show the one before it (query, results or outfit, and reply)."""
    if not session["steps"]:
        gr.Warning("Nothing to undo yet.")
        return *[gr.skip()] * (10 + 3 * MAX_SLOTS), session
    steps = session["steps"][:-1]
    if not steps:
        return (None, "", [], STATUS_EMPTY, REPLY_EMPTY, HISTORY_EMPTY, None, DETAILS_EMPTY,
                *fill_board(None), gr.Tabs(selected="matches"), new_session())
    prev = steps[-1]
    outfit = prev.get("outfit")
    return (prev["image"], prev["text"], prev.get("gallery", gr.skip()), prev["status"],
            prev["reply"] or REPLY_EMPTY, history_markdown(steps), None, DETAILS_EMPTY,
            *fill_board(outfit), gr.Tabs(selected="outfit" if outfit is not None else "matches"),
            {**session, "steps": steps, "selected": None, "anchor": prev["anchor"]})
