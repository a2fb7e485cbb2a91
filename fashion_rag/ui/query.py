"""Search and reading corrections: a photo and/or words in, ranked catalog pieces out, with what
the photo reader saw, so that a shopper can correct a wrong reading with the menus under the
results instead of rewording the query."""
from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from fashion_rag import Engine, Results, settings
from fashion_rag.data.images import load_image
from fashion_rag.errors import FashionRagError
from fashion_rag.reply.markdown import escape
from fashion_rag.retrieval.tweak import DESCRIBE_AT
from fashion_rag.ui.format import caption
from fashion_rag.ui.pieces import shown
from fashion_rag.ui.session import Session, add_step, engine_call, small_photo

Menu = list[str]  # the values ticked in a filter menu

FILTERS = [("gender", "Gender"), ("articleType", "Article type"), ("baseColour", "Colour"),
           ("season", "Season"), ("usage", "Usage")]
READ = [("type", "Type"), ("gender", "Gender"), ("colour", "Colour"), ("pattern", "Pattern")]
AS_READ = ("as read", "")  # a correction dropdown's neutral choice
# (catalog id of the photo or None for text only, what the photo shows, tweak); the photos are
# read from CATALOG_DIR/images at run time, and examples whose photo is missing are left out.
EXAMPLES = [(10360, "black dress", "in red"), (10188, "striped shirt", "no stripes"),
            (10568, "navy sweater", "for summer"),
            (10335, "striped top", "same vibe but in softer colours for fall"),
            (None, "", "black formal shoes for men")]
STATUS_EMPTY = "_Results appear here. Try an example on the left to start._"


def example_rows() -> tuple[list[list], list[str]]:
    """Example queries (photo path or None, tweak) and the labels shown for them."""
    rows, labels = [], []
    for item_id, shows, tweak in EXAMPLES:
        path = settings.CATALOG_DIR / "images" / f"{item_id}.jpg" if item_id else None
        if path is None or path.is_file():
            rows.append([str(path) if path else None, tweak])
            labels.append(f"{shows} photo + “{tweak}”" if path else f"text only: “{tweak}”")
    return rows, labels


def reading_line(results: Results) -> str:
    """'In your photo: dress 92% · Green 61% · ...' and what the tweak changes; '' without a photo."""
    reading = getattr(results, "reading", None)
    if reading is None:
        return ""
    parts = []
    for attribute, _ in READ:
        value, confidence = reading.top(attribute)
        torn = reading.candidates(attribute)
        if attribute in reading.corrected:
            parts.append(f"{value} _(corrected)_")
        elif len(torn) > 1:  # "sandals 46% or shoes 40%?": the search covers both until one is picked
            parts.append(" or ".join(f"{v} _{reading.probability(attribute)[v]:.0%}_" for v in torn) + "?")
        elif confidence < DESCRIBE_AT:  # a guess is not shown as a fact, and not kept by the search
            parts.append(f"{attribute} not sure")
        else:
            parts.append(f"{value} _{confidence:.0%}_")
    line = "**In your photo:** " + " · ".join(parts)
    the_plan = getattr(results, "plan", None)
    if the_plan is not None and the_plan.changed:
        line += " — **your words change:** " + ", ".join(f"{a} → {v}" for a, v in the_plan.changed.items())
    return line + "  \n_Wrong? Correct it with the menus under the results._"


def status_line(results: Results) -> str:
    """The line above the results: the reading, the mode, the constraints the guard applied (those
    the reading line does not already show) and the engine's notes."""
    plan_lines = set(getattr(getattr(results, "plan", None), "describe", lambda: [])())
    applied = [a for a in (getattr(results, "applied", []) or []) if a not in plan_lines]
    notes = list(getattr(results, "notes", []) or [])
    line = f"**{len(results)} items** · mode `{getattr(results, 'mode', '?')}` · "
    line += ("guard applied: " + ", ".join(f"**{a}**" for a in applied) if applied
             else "no attribute constraints applied")
    return "  \n".join(filter(None, [reading_line(results), line] + [f"_Note: {escape(note)}_" for note in notes]))


def filters_and_corrections(gender: Menu, article_type: Menu, colour: Menu, season: Menu, usage: Menu,
                            type_is: str, gender_is: str, colour_is: str, pattern_is: str) -> tuple[dict, dict]:
    """The filter menus and reading corrections as the engine takes them (untouched ones left out)."""
    filters = {col: list(values) for (col, _), values in
               zip(FILTERS, (gender, article_type, colour, season, usage)) if values}
    corrections = {attr: value for (attr, _), value in
                   zip(READ, (type_is, gender_is, colour_is, pattern_is)) if value}
    return filters, corrections


def _same_picture(image: Image.Image, path: str) -> bool:
    """Whether the query photo is still the catalog photo put there by "Use as new reference"
    (the shopper may have uploaded another one since)."""
    try:
        small = [np.asarray(im.convert("L").resize((16, 16)), dtype=np.float32)
                 for im in (image, load_image(path))]
        return float(np.abs(small[0] - small[1]).mean()) < 8.0
    except Exception:  # noqa: BLE001 - only decides a label
        return False


def search(engine: Engine, image: Image.Image | None, text: str | None, mode: str | None, weight: float,
           k: int, gender: Menu, article_type: Menu, colour: Menu, season: Menu, usage: Menu, type_is: str,
           gender_is: str, colour_is: str, pattern_is: str, personal: bool | None, piece: float | None,
           box: str | None, session: Session, progress: gr.Progress = gr.Progress()) -> tuple:
    """Run one search and record it as a step of the session: (gallery, status, tab, session).
    `piece` (a number among the photo's pieces; -1: none) or `box` ("x0,y0,x1,y1") picks what in
    the photo to search for; neither: the piece the words name, else the photo as a whole."""
    text = (text or "").strip()
    filters, corrections = filters_and_corrections(gender, article_type, colour, season, usage,
                                                   type_is, gender_is, colour_is, pattern_is)
    progress(0.1, desc="Searching the catalog…")
    profile = session.get("profile") if personal is not False else None
    results = engine_call(lambda: engine.search(
        image=image, text=text or None, k=k, mode=mode or "auto", weight=weight,
        filters=filters or None, corrections=corrections or None, profile=profile,
        piece=None if piece is None or piece < 0 or image is None else piece, box=(box or None) if image is not None else None))
    for note in getattr(results, "notes", []) or []:
        gr.Warning(note)
    anchor = session.get("anchor")
    from_item = image is not None and anchor is not None and _same_picture(image, anchor["path"])
    source = (f"item {anchor['id']}" if from_item else "your photo") if image is not None else ""
    gallery = [(hit.item["path"], caption(hit)) for hit in results]
    status = status_line(results)
    photo = small_photo(image)
    step = {"image": anchor["path"] if from_item else photo, "anchor": anchor if from_item else None,
            "source": source, "text": text, "hits": list(results), "gallery": gallery,
            "status": status, "reply": "", "pieces": shown(results.pieces, image, photo),
            "piece": getattr(results, "piece", None)}
    return gallery, status, gr.Tabs(selected="matches"), {**session, "steps": add_step(session, step),
                                                          "selected": None, "anchor": step["anchor"]}


def describe(engine: Engine, image: Image.Image | None) -> dict:
    """What the photo shows, as JSON: per attribute, ranked values with confidences."""
    if image is None:
        raise gr.Error("Upload a photo to read.", print_exception=False)
    try:
        return engine.describe(image).as_dict()
    except FashionRagError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
