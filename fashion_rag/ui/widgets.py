"""Input components that reject bad values with a clear message: an upload the project's image
loader cannot open, or a value sent through the API that the widget does not allow."""
from __future__ import annotations

import logging
from abc import ABCMeta

import gradio as gr

from fashion_rag.data.images import load_image
from fashion_rag.errors import FashionRagError

log = logging.getLogger(__name__)


class _PlainSubclass(type(gr.Image)):
    """Gradio's component metaclass writes a .pyi stub beside the source of every component
    subclass; these only change preprocessing, so they are created without that side effect."""

    def __new__(mcls, name, bases, attrs):
        return ABCMeta.__new__(mcls, name, bases, attrs)


class QueryImage(gr.Image, metaclass=_PlainSubclass):
    """A gr.Image whose uploads are opened by the project's own loader, so a broken, huge or odd
    file (EXIF-rotated, transparent, 16-bit) becomes a clear message or a clean RGB image instead
    of Gradio's bare "Error"."""

    is_template = True  # the browser renders it as a plain gr.Image

    def preprocess(self, payload):
        if payload is None or not payload.path:
            return super().preprocess(payload)
        try:
            return load_image(payload.path)
        except FashionRagError as exc:
            raise gr.Error(str(exc), print_exception=False) from None


def _checked(base: type) -> type:
    """`base` (gr.Slider, gr.Dropdown, ...) whose preprocessing turns a bad value sent through the
    API (k="ten", a colour not on the menu) into a clear message and one log line, instead of
    Gradio's bare "Error" or a stack trace in the server log."""

    def preprocess(self, payload):
        try:
            return base.preprocess(self, payload)
        except (TypeError, ValueError) as exc:  # gr.Error is a ValueError too
            message = getattr(exc, "message", None) or str(exc)
            if hasattr(self, "minimum"):  # a number that is not one, or out of range: name it
                name = self.label or "This value"
                try:
                    float(payload)
                    message = f"{name} must be between {self.minimum} and {self.maximum}, not {payload!r}."
                except (TypeError, ValueError):
                    message = f"{name} must be a number, not {payload!r}."
        log.info("Rejected input: %s", message[:200])
        raise gr.Error(message, print_exception=False) from None

    return _PlainSubclass(f"Checked{base.__name__}", (base,), {"is_template": True, "preprocess": preprocess})


CheckedSlider, CheckedNumber, CheckedDropdown, CheckedRadio, CheckedCheckboxGroup = map(
    _checked, (gr.Slider, gr.Number, gr.Dropdown, gr.Radio, gr.CheckboxGroup))
