"""The stylist's reply: a short styling note on the latest step, streamed after its results show,
so the results never wait for the language model."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import gradio as gr

from fashion_rag import llm, serving, settings
from fashion_rag.reply.stylist import stream_outfit_reply, stream_reply
from fashion_rag.ui.session import Session

log = logging.getLogger(__name__)

REPLY_EMPTY = "_The stylist comments on your results after a search._"
REPLY_PENDING = "_Styling your results…_"
REPLY_LIMIT = serving.RateLimit(settings.REPLIES_PER_MINUTE, settings.REPLIES_PER_MINUTE_ALL)


def reply(session: Session, request: gr.Request) -> Iterator[str]:
    """Stream the stylist's reply to the latest results (cumulative Markdown). Calls to the paid
    model are rate-limited per session and for everyone; past the limit the automatic summary
    says so."""
    if not session["steps"]:
        yield "_Search first: the stylist comments on the results._"
        return
    step = session["steps"][-1]
    text, held = "", ""
    if llm.configured():
        wait = REPLY_LIMIT.wait(getattr(request, "session_hash", None) or "")
        if wait:
            held = (f"The AI stylist has answered as many times as it may for now "
                    f"(at most {REPLY_LIMIT.per_key} replies a minute per shopper, {REPLY_LIMIT.everyone} "
                    f"for everyone); try again in {wait:.0f} s.")
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
