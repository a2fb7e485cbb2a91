"""The outfit board: "Complete the look" from the photo and words or around the selected product,
shown one row per slot, where any ranked piece can be swapped in without planning the outfit again."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from PIL import Image

from fashion_rag import Engine, Outfit, llm, serving
from fashion_rag.reply.markdown import escape
from fashion_rag.ui.format import FACTS, caption, details_markdown, field, item_name
from fashion_rag.ui.query import Menu, filters_and_corrections
from fashion_rag.ui.session import Session, add_step, engine_call, small_photo

MAX_SLOTS, SLOT_HITS = 6, 4  # outfit board rows, pieces shown per row
OUTFIT_EMPTY = ("_**Complete the look** builds an outfit here: from your photo and words "
                "(*\"shoes and a bag to go with this\"*, *\"what goes with my black jeans?\"*), "
                "or around a product you selected._")


@dataclass
class Board:
    """The board's widgets: an intro and MAX_SLOTS rows (label, swap button, ranked pieces)."""

    intro: gr.Markdown
    rows: list[gr.Row]
    labels: list[gr.Markdown]
    galleries: list[gr.Gallery]
    next_buttons: list[gr.Button]

    @property
    def outputs(self) -> list:
        """What `fill_board` updates, in its order."""
        return [self.intro, *self.rows, *self.labels, *self.galleries]


def board_layout() -> Board:
    """The board inside the current Blocks: its rows stay hidden until an outfit fills them."""
    widgets = Board(gr.Markdown(OUTFIT_EMPTY), [], [], [], [])
    for n in range(MAX_SLOTS):
        with gr.Row(visible=False, equal_height=False, elem_id=f"slot-{n}") as row:
            with gr.Column(scale=1, min_width=160):
                widgets.labels.append(gr.Markdown(elem_id=f"slot-{n}-label"))
                widgets.next_buttons.append(gr.Button("Swap for the next ↻", size="sm", elem_id=f"slot-{n}-next"))
            widgets.galleries.append(gr.Gallery(
                show_label=False, columns=SLOT_HITS, height=150, object_fit="contain",
                allow_preview=False, interactive=False, scale=4, elem_id=f"slot-{n}-pieces"))
        widgets.rows.append(row)
    return widgets


def outfit_status(outfit: Outfit) -> str:
    """The status line for an outfit: its pieces, how it was planned, the planner's notes."""
    line = f"**Outfit: {len(outfit.pieces())} pieces** · " + " · ".join(escape(d) for d in outfit.describe())
    return "  \n".join([line] + [f"_Note: {escape(note)}_" for note in outfit.notes])


def outfit_json(outfit: Outfit) -> dict:
    """The outfit for API clients: slots in order, each with its ranked pieces."""
    def piece(hit):
        return {"id": hit.item_id, "score": round(hit.score, 4), "name": item_name(hit.item),
                **{k: field(hit.item, k) for k in FACTS}, "image": hit.item["path"], "why": hit.why}
    return {"planner": outfit.planner, "gender": outfit.gender, "notes": outfit.notes,
            "context": [{"role": p.role, "what": p.words, "from": p.source} for p in outfit.context],
            "slots": [{"role": s.role, "asked": s.asked, "why": s.why, "hits": [piece(h) for h in s.hits]}
                      for s in outfit.slots]}


def fill_board(outfit: Outfit | None) -> list:
    """Updates for Board.outputs: the intro, then per row (visible, label, gallery of the slot's
    piece, ticked, and its alternatives); no outfit empties the board."""
    slots = list(outfit.slots if outfit is not None else [])[:MAX_SLOTS]
    slots += [None] * (MAX_SLOTS - len(slots))
    rows, labels, galleries = [], [], []
    for slot in slots:
        rows.append(gr.update(visible=slot is not None))
        if slot is None:
            labels.append("")
            galleries.append([])
            continue
        piece = f"{escape(item_name(slot.hits[0].item))}  \n" if slot.hits else ""
        labels.append(f"**{slot.role.capitalize()}**: {piece}_{escape(slot.why)}_")
        galleries.append([(h.item["path"], ("✓ " if i == 0 else "") + caption(h)) for i, h in enumerate(slot.hits)])
    return [OUTFIT_EMPTY if outfit is None else ""] + rows + labels + galleries


def _show(outfit: Outfit, session: Session, text: str, image: Image.Image | None = None,
          source: str = "") -> tuple:
    """Record an outfit as a step and return the outputs that show it."""
    for note in outfit.notes:
        gr.Warning(note)
    status = outfit_status(outfit)
    anchor = session.get("anchor") if image is not None else None
    step = {"image": small_photo(image), "anchor": anchor, "source": source, "text": text,
            "hits": outfit.pieces(), "outfit": outfit, "status": status, "reply": ""}
    session = {**session, "steps": add_step(session, step), "selected": None}
    return (outfit_json(outfit), status, *fill_board(outfit), gr.Tabs(selected="outfit"), session)


def _per_slot(k: float | None) -> int:
    """The page's number of results as pieces per outfit slot (1 to SLOT_HITS)."""
    return min(max(int(k if k is not None else SLOT_HITS), 1), SLOT_HITS)


def _plan(engine: Engine, request: gr.Request, **query) -> Outfit:
    """engine.complete, with the AI planner only within the client's budget for the paid model
    (serving.model_call_held); past it the rules plan, and the outfit's notes say why."""
    held = serving.model_call_held(request) if llm.configured() else ""
    outfit = engine_call(lambda: engine.complete(planner="rules" if held else "auto", **query))
    if held:
        outfit.notes.append(f"{held} The rules planned this outfit.")
    return outfit


def complete(engine: Engine, image: Image.Image | None, text: str | None, mode: str | None, weight: float,
             k: int, gender: Menu, article_type: Menu, colour: Menu, season: Menu, usage: Menu, type_is: str,
             gender_is: str, colour_is: str, pattern_is: str, personal: bool | None, piece: float | None,
             box: str | None, session: Session, request: gr.Request) -> tuple:
    """An outfit for the photo and/or words, around every piece worn in the photo. It takes the
    search's inputs so that one API call shape serves both; mode, weight, personal, piece and box
    are search settings, unused here."""
    text = (text or "").strip()
    filters, corrections = filters_and_corrections(gender, article_type, colour, season, usage,
                                                   type_is, gender_is, colour_is, pattern_is)
    outfit = _plan(engine, request, image=image, text=text, k=_per_slot(k), filters=filters or None,
                   corrections=corrections or None)
    return _show(outfit, session, text, image, "your photo" if image is not None else "")


def complete_item(engine: Engine, text: str | None, k: int, session: Session, request: gr.Request) -> tuple:
    """An outfit around the selected product (and the words, if any)."""
    hit = session.get("selected")
    if hit is None:
        raise gr.Error("First click a product, then complete the look around it.", print_exception=False)
    text = (text or "").strip()
    outfit = _plan(engine, request, item_id=hit.item_id, text=text, k=_per_slot(k))
    return _show(outfit, session, text, source=f"item {hit.item_id}")


def swap(slot: int, choice: int, session: Session) -> tuple:
    """Make piece `choice` of outfit slot `slot` that slot's piece; the other slots stay. The new
    piece becomes the selected product, so its details show why it fits."""
    steps = session["steps"]
    outfit = steps[-1].get("outfit") if steps else None
    if outfit is None:
        raise gr.Error("Complete the look first, then swap its pieces.", print_exception=False)
    try:
        swapped = outfit.swap(int(slot), int(choice))
    except (TypeError, ValueError, IndexError):
        raise gr.Error(f"Pick a slot from 0 to {len(outfit.slots) - 1} and one of its pieces.",
                       print_exception=False) from None
    step = {**steps[-1], "outfit": swapped, "hits": swapped.pieces(), "status": outfit_status(swapped),
            "reply": ""}
    picked = swapped.slots[int(slot)].hits[0]
    return (outfit_json(swapped), *fill_board(swapped), picked.item["path"], details_markdown(picked),
            {**session, "steps": steps[:-1] + [step], "selected": picked})
