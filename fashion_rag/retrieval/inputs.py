"""What callers pass, checked: the shopper's text and the numbers of a request (k, the text weight,
a quiz round). An unusable value is an InputError that says what to pass instead."""
from __future__ import annotations

import re

from fashion_rag.errors import InputError
from fashion_rag.retrieval.guard import MAX_CHARS


# Lone surrogates (no UTF-8 for them: every encoder, tokenizer and JSON writer fails on one) and
# control characters other than tab and newline, which no shopper types.
UNSHOWABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(text: str) -> str:
    """`text` without the characters nothing downstream can encode or show (see UNSHOWABLE)."""
    return UNSHOWABLE.sub("", text)


def clean_text(text) -> tuple[str, list[str]]:
    """The shopper's text on one line and at most MAX_CHARS long, and a note if it was cut."""
    if text is not None and not isinstance(text, str):
        raise InputError("The text must be a string.")
    text = " ".join(plain_text(text or "").split())
    if len(text) > MAX_CHARS:
        return text[:MAX_CHARS], [f"Your text was long; only its first {MAX_CHARS} characters were used."]
    return text, []


def whole(value, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] from what a caller passed (int, float, numeric string)."""
    try:
        checked = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number between {low} and {high}, not {value!r}.") from None
    if not checked.is_integer():
        raise InputError(f"{name} must be a whole number between {low} and {high}.")
    if not low <= checked <= high:
        raise InputError(f"{name} must be between {low} and {high}.")
    return int(checked)


def number(value, name: str, low: float, high: float) -> float:
    try:
        checked = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number between {low:g} and {high:g}, not {value!r}.") from None
    if not low <= checked <= high:  # also rejects NaN
        raise InputError(f"{name} must be between {low:g} and {high:g}.")
    return checked


def box(value, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box (x0, y0, x1, y1, in the photo's pixels) from a list or a "x0,y0,x1,y1" string,
    clipped to the photo; one under 8 pixels a side is an InputError."""
    parts = value.replace(",", " ").split() if isinstance(value, str) else value
    try:
        x0, y0, x1, y1 = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise InputError("A box is four numbers: left, top, right, bottom, in the photo's pixels.") from None
    width, height = size
    x0, x1 = sorted((min(max(x0, 0), width), min(max(x1, 0), width)))
    y0, y1 = sorted((min(max(y0, 0), height), min(max(y1, 0), height)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise InputError(f"The box is too small or outside the photo ({width}×{height} pixels): "
                         "draw it around the piece you want.")
    return int(x0), int(y0), int(x1), int(y1)
