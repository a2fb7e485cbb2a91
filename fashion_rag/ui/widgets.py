"""Input components that check what they are sent: the page's values and the API's alike.

Every value an event receives passes through one of these, so a bad one is a clear message naming
the input (and one log line) before any handler runs: numbers must be finite and in range, lists
hold each choice once (so their length is bounded by the menu's), text loses what nothing can
encode, and a photo is a file uploaded here, opened by the project's own loader.
"""
from __future__ import annotations

import logging
import math
from abc import ABCMeta
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from gradio_client.utils import is_http_url_like

from fashion_rag.data.images import load_image
from fashion_rag.errors import FashionRagError
from fashion_rag.retrieval.inputs import plain_text
from fashion_rag.serving import UPLOADS
from fashion_rag.serving.failures import NOT_UPLOADED

log = logging.getLogger(__name__)

GONE = "Your photo is no longer on the server (uploads are kept for a limited time); please upload it again."
NO_LINKS = "Photos are not fetched from links: " + NOT_UPLOADED[0].lower() + NOT_UPLOADED[1:]


class _PlainSubclass(type(gr.Image)):
    """Gradio's component metaclass writes a .pyi stub beside the source of every component
    subclass; these only change preprocessing, so they are created without that side effect."""

    def __new__(mcls, name, bases, attrs):
        return ABCMeta.__new__(mcls, name, bases, attrs)


def rejected(message: str) -> gr.Error:
    """The error for a bad input: shown as is, logged in one line, no stack trace."""
    log.info("Rejected input: %s", message[:200])
    return gr.Error(message, print_exception=False)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _name(widget) -> str:
    return widget.label or "This value"


def _number(widget, payload: Any) -> Any:
    """A finite number within the widget's bounds (a numeric string counts); whole where the
    widget has no decimals."""
    try:
        if isinstance(payload, bool):
            raise TypeError
        value = float(payload)
    except (TypeError, ValueError):
        raise rejected(f"{_name(widget)} must be a number, not {_shown(payload)}.") from None
    low, high = getattr(widget, "minimum", None), getattr(widget, "maximum", None)
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low:g} and {high:g}" if low is not None and high is not None else "a finite number"
        raise rejected(f"{_name(widget)} must be {span}, not {_shown(payload)}.")
    if getattr(widget, "precision", None) == 0 and not value.is_integer():
        raise rejected(f"{_name(widget)} must be a whole number, not {_shown(payload)}.")
    return value


def _listing(widget) -> list:
    return [value for _, value in widget.choices]


def _not_a_choice(widget, value: Any) -> gr.Error:
    allowed = _listing(widget)
    shown = ", ".join(str(v) or '""' for v in allowed[:12]) + (", …" if len(allowed) > 12 else "")
    return rejected(f"{_name(widget)}: {_shown(value)} is not in the list of choices ({shown or 'none now'}).")


def _choice(widget, payload: Any) -> Any:
    """One of the widget's choices, or None."""
    if payload is not None and payload not in _listing(widget):
        raise _not_a_choice(widget, payload)
    return payload


def _choices(widget, payload: Any) -> list:
    """A list of the widget's choices, each once: a single value is a list of one, None is empty."""
    values = [] if payload is None else payload if isinstance(payload, list) else [payload]
    try:
        values = list(dict.fromkeys(values))
    except TypeError:  # a list or an object inside the list
        raise rejected(f"{_name(widget)} takes a list of choices, not {_shown(payload)}.") from None
    for value in values:
        if value not in _listing(widget):
            raise _not_a_choice(widget, value)
    return values


def _boolean(widget, payload: Any) -> Any:
    if payload is not None and not isinstance(payload, bool):
        raise rejected(f"{_name(widget)} must be true or false, not {_shown(payload)}.")
    return payload


def _text(widget, payload: Any) -> Any:
    if payload is None or isinstance(payload, str):
        return None if payload is None else plain_text(payload)
    if isinstance(payload, (int, float)) and not isinstance(payload, bool):
        return str(payload)
    raise rejected(f"The text must be a string, not {_shown(payload)}.")


def _checked(base: type, check: Callable[[Any, Any], Any]) -> type:
    """`base` (gr.Slider, gr.Dropdown, ...) whose values pass `check(widget, payload)` before
    Gradio's own preprocessing; any error left is a clear message too."""

    def preprocess(self, payload):
        value = check(self, payload)
        try:
            return base.preprocess(self, value)
        except (TypeError, ValueError, ArithmeticError) as exc:  # gr.Error is a ValueError too
            raise rejected(getattr(exc, "message", None) or str(exc)) from None

    return _PlainSubclass(f"Checked{base.__name__}", (base,), {"is_template": True, "preprocess": preprocess})


def _menu(widget, payload: Any) -> Any:
    return _choices(widget, payload) if widget.multiselect else _choice(widget, payload)


CheckedSlider = _checked(gr.Slider, _number)
CheckedNumber = _checked(gr.Number, _number)
CheckedDropdown = _checked(gr.Dropdown, _menu)
CheckedRadio = _checked(gr.Radio, _choice)
CheckedCheckboxGroup = _checked(gr.CheckboxGroup, _choices)
CheckedCheckbox = _checked(gr.Checkbox, _boolean)
CheckedTextbox = _checked(gr.Textbox, _text)


class QueryImage(gr.Image, metaclass=_PlainSubclass):
    """A gr.Image that takes only files uploaded here (a link is refused, never fetched) and
    opens them with the project's own loader, so a broken, huge or odd file (EXIF-rotated,
    transparent, 16-bit) becomes a clear message or a clean RGB image; a search marks its upload
    as used, so it is kept while the session lives."""

    is_template = True  # the browser renders it as a plain gr.Image

    async def async_move_resource_to_block_cache(self, url_or_file_path: str | Path | None) -> str | None:
        if url_or_file_path is not None and is_http_url_like(str(url_or_file_path)):
            raise rejected(NO_LINKS)  # Gradio would download it into its cache, at any size
        return await super().async_move_resource_to_block_cache(url_or_file_path)

    def preprocess(self, payload):
        if payload is None or not payload.path:  # no photo; a link alone is not one either
            if payload is not None and payload.url:
                raise rejected(NO_LINKS)
            return None
        if not Path(payload.path).is_file():
            raise rejected(GONE)
        UPLOADS.used(payload.path)
        try:
            return load_image(payload.path)
        except FashionRagError as exc:
            raise rejected(str(exc)) from None
