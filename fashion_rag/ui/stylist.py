"""The stylist's reply: a short styling note on the latest step, streamed after its results show,
so the results never wait for the language model."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import gradio as gr

from fashion_rag import llm, serving
from fashion_rag.reply.stylist import stream_outfit_reply, stream_reply
from fashion_rag.ui.session import Session

log = logging.getLogger(__name__)

REPLY_EMPTY = "_The stylist comments on your results after a search._"
REPLY_PENDING = "_Styling your results…_"


def reply(session: Session, request: gr.Request) -> Iterator[str]:
    """Stream the stylist's reply to the latest results (cumulative Markdown). Calls to the paid
    model come out of the client's budget (serving.model_call_held); past it, the automatic
    summary says so."""
    if not session["steps"]:
        yield "_Search first: the stylist comments on the results._"
        return
    step = session["steps"][-1]
    text = ""
    held = serving.model_call_held(request) if llm.configured() else ""
    replies = stream_outfit_reply(step["text"], step["outfit"], held) if step.get("outfit") is not None \
        else stream_reply(step["text"], step["hits"], has_image=bool(step["source"]), held=held)
    try:
        for text in replies:
            yield text
    except Exception:  # noqa: BLE001 - the stylist promises not to raise; belt and braces
        log.exception("stylist failed")
        text = "_The stylist is unavailable right now; the results above are unaffected._"
        yield text
    step["reply"] = text  # kept in the session (State holds this very dict) for Undo
