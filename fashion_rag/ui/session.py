"""What every panel's handlers share: the per-tab session (a gr.State dict) with its history of
steps, and engine calls whose failures reach the shopper as messages, never as stack traces."""
from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable, TypeVar

import gradio as gr
from PIL import Image

from fashion_rag.errors import FashionRagError

log = logging.getLogger(__name__)

Session = dict[str, Any]
T = TypeVar("T")

MAX_STEPS = 20  # history kept per session (each step may hold a photo)
STEP_PHOTO_SIDE = 512  # a step keeps its photo this small (the encoder sees 224 px): Undo restores it


def new_session() -> Session:
    """A fresh session.

    steps: one dict per search or outfit (query, hits, gallery or outfit, status, reply);
    selected: the Hit last clicked; anchor: the catalog item last put into the photo box with
    "Use as reference"; profile: the taste profile id (from the browser, or made on first
    feedback); quiz: the quiz round on show (None: no quiz) and quiz_hits, its items.
    """
    return {"steps": [], "selected": None, "anchor": None, "profile": None, "quiz": None, "quiz_hits": []}


def add_step(session: Session, step: dict) -> list[dict]:
    """The session's steps with `step` last; the oldest go past MAX_STEPS (they hold photos)."""
    return (session["steps"] + [step])[-MAX_STEPS:]


def small_photo(image: Any) -> Any:
    """A copy of the query photo small enough to keep in the session (anything else as it is)."""
    if not isinstance(image, Image.Image):
        return image
    small = image.copy()
    small.thumbnail((STEP_PHOTO_SIDE, STEP_PHOTO_SIDE))
    return small


def bind(fn: Callable, *first: Any) -> Callable:
    """`fn` with its first arguments given (the engine, a slot number), keeping the rest of its
    signature and its type hints: Gradio hands a handler its gr.Request by type hint, which a
    functools.partial hides."""
    def handler(*args, **kwargs):
        return fn(*first, *args, **kwargs)

    functools.update_wrapper(handler, fn)
    signature = inspect.signature(fn)
    handler.__signature__ = signature.replace(parameters=list(signature.parameters.values())[len(first):])
    return handler


def engine_call(call: Callable[[], T]) -> T:
    """Run an engine call; its input errors become messages, anything else a generic one."""
    try:
        return call()
    except FashionRagError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except Exception:  # noqa: BLE001 - never show a stack trace to the shopper
        log.exception("engine call failed")
        raise gr.Error("That failed unexpectedly. Please try again, or try another photo or wording.") from None
