"""The pieces in the query photo: chips and boxes over the photo for each piece a person wears
(white shirt · blue jeans · brown shoes), so the shopper picks which one to shop, and a hand-marked
area for whatever the finder missed. The search itself (which piece, which box) is the engine's."""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from fashion_rag import Engine
from fashion_rag.ui.session import Session, engine_call

PIECES_INFO = "What in your photo to search for: pick a piece, or mark one by hand below."


def chips(pieces: list[dict]) -> list[tuple[str, int]]:
    """Radio choices: (“white shirt”, 0), ... (a hand-marked area reads “marked area: ...”)."""
    return [(("marked area: " if p["region"] == "drawn" else "") + p["label"], n) for n, p in enumerate(pieces)]


def shown(pieces: list | None, image: Image.Image | None, photo) -> list[dict] | None:
    """The photo's pieces for the page: each as JSON, with its box on the step's (smaller) photo;
    None while they are not looked for yet, [] without a photo."""
    if image is None or not isinstance(photo, Image.Image):
        return []
    if pieces is None:
        return None
    scale = photo.size[0] / image.size[0]
    return [p.as_dict() | {"shown_box": [round(v * scale) for v in p.box]} for p in pieces]


def show(engine: Engine, image: Image.Image | None, session: Session) -> tuple:
    """The latest step's pieces as chips and as boxes over its photo (hidden for one piece that is
    the whole photo: nothing to choose). A search that did not need them left them to here: they
    are found now, with the results already on the page and the photo's look remembered."""
    step = (session.get("steps") or [{}])[-1]
    photo = step.get("image")  # a catalog item's path when the search was from an item: no pieces
    if step.get("pieces") is None:
        found = engine_call(lambda: engine.pieces(image)) if image is not None and isinstance(photo, Image.Image) else []
        step["pieces"] = shown(found, image, photo)
    pieces, chosen = step.get("pieces") or [], step.get("piece")
    choose = len(pieces) > 1 or any(p["region"] == "drawn" for p in pieces)
    if not choose or not isinstance(photo, Image.Image):
        return gr.update(choices=[], value=None, visible=False), gr.update(value=None, visible=False), session
    boxes = [(tuple(p["shown_box"]), label) for p, (label, _) in zip(pieces, chips(pieces))]
    return (gr.update(choices=chips(pieces), value=chosen, visible=True),
            gr.update(value=(photo, boxes), visible=True), session)


def choose(chosen: int | None) -> tuple:
    """A chip picked: search that piece (a marked area is dropped)."""
    return -1 if chosen is None else chosen, ""


def clicked_box(evt: gr.SelectData) -> tuple:
    """A box over the photo clicked: search its piece."""
    return int(evt.index), ""


def forget_choice() -> tuple:
    """A new photo: no piece chosen and no marked area."""
    return -1, ""


def marking_canvas(image: Image.Image | None) -> Any:
    """The photo as the marking canvas's background (nothing marked yet)."""
    return None if image is None else {"background": image, "layers": [], "composite": image}


def marked_box(marking: dict | None, image: Image.Image | None) -> str:
    """"x0,y0,x1,y1": the area painted over on the canvas, in the photo's pixels."""
    if image is None:
        raise gr.Error("Upload a photo first, then mark a piece on it.", print_exception=False)
    layers = [np.asarray(layer) for layer in (marking or {}).get("layers") or [] if layer is not None]
    painted = [layer[..., 3] > 0 for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if not painted or not any(mask.any() for mask in painted):
        raise gr.Error("Paint over the piece you want on the photo under “Mark a piece by hand” first.",
                       print_exception=False)
    mask = np.logical_or.reduce(painted)
    ys, xs = np.nonzero(mask)
    sx, sy = image.size[0] / mask.shape[1], image.size[1] / mask.shape[0]  # the canvas may be scaled
    return f"{int(xs.min() * sx)},{int(ys.min() * sy)},{int((xs.max() + 1) * sx)},{int((ys.max() + 1) * sy)}"


def find(engine: Engine, image: Image.Image | None) -> list[dict]:
    """/pieces: the pieces worn in a photo as JSON (label, role, box, reading)."""
    if image is None:
        raise gr.Error("Upload a photo to find its pieces.", print_exception=False)
    return [p.as_dict() for p in engine_call(lambda: engine.pieces(image))]
