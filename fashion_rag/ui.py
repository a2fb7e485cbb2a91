"""The web page: one Gradio Blocks app around an engine that is already loaded.

No retrieval logic lives here. Handlers turn widget values into `engine.search(...)` calls and
results into gallery items, Markdown and per-session state (gr.State), and every action is a
named API endpoint, so `gradio_client` and the page's "Use via API" drive the same code:

    /search (image, text, mode, weight, k, gender, article_type, colour, season, usage,
             type_is, gender_is, colour_is, pattern_is)
            -> (gallery, status line); the last four correct the photo reading ("" = as read)
    /describe (image)     -> what the photo shows: per attribute, ranked values with confidences
    /reply  ()            -> styling reply for the session's latest results (streamed)
    /complete (same inputs as /search) -> an outfit for the photo and/or words: (outfit as JSON,
            status line, board...); k = pieces per slot (at most SLOT_HITS on the page)
    /complete_item (text, k) -> an outfit around the selected product
    /swap   (slot, choice) -> piece `choice` of outfit slot `slot` becomes that slot's piece
    /select (index)       -> photo and details of result `index`, with why it matched
    /refine ()            -> the selected result's photo becomes the query photo (text cleared)
    /undo   ()            -> the previous step (search or outfit) is restored with its reply
    /like, /pass (index)  -> feedback on result `index`: the session's taste profile learns it
    /profile ()           -> the profile id and what it has learned; /forget () deletes it
    /quiz   (picks)       -> the style quiz: the picked positions of the shown round are liked,
                             the next round is shown (the first call starts the quiz)
/search takes one more input at the end, personal (default true): use the taste profile.
"""
from __future__ import annotations

import functools
import logging
from abc import ABCMeta
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from fashion_rag import serving, settings
from fashion_rag.data.catalog import MISSING
from fashion_rag.data.images import load_image
from fashion_rag.errors import FashionRagError
from fashion_rag.reply import llm
from fashion_rag.reply.markdown import escape
from fashion_rag.reply.stylist import stream_outfit_reply, stream_reply
from fashion_rag.retrieval.guard import MAX_CHARS
from fashion_rag.taste.profiles import new_profile_id
from fashion_rag.taste.quiz import QUIZ_ROUNDS

log = logging.getLogger(__name__)

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
MAX_STEPS = 20  # history kept per session (each step may hold a photo)
STEP_PHOTO_SIDE = 512  # a step keeps its photo this small (the encoder sees 224 px): Undo restores it
MAX_SLOTS, SLOT_HITS = 6, 4  # outfit board rows, pieces shown per row

INTRO = ("Upload an outfit photo and/or describe what you want (*\"in red\"*, *\"no stripes\"*, "
         "*\"same vibe but for summer\"*): you get matching catalog pieces and a short styling note.")
STATUS_EMPTY = "_Results appear here. Try an example on the left to start._"
REPLY_EMPTY = "_The stylist comments on your results after a search._"
REPLY_PENDING = "_Styling your results…_"
DETAILS_EMPTY = "_Click a product to see why it matched, then use it as your new reference._"
HISTORY_EMPTY = "_Your search steps are listed here; **Undo** goes back one._"
OUTFIT_EMPTY = ("_**Complete the look** builds an outfit here: from your photo and words "
                "(*\"shoes and a bag to go with this\"*, *\"what goes with my black jeans?\"*), "
                "or around a product you selected._")

THEME = gr.themes.Soft(primary_hue="rose", secondary_hue="slate", neutral_hue="slate")
CSS = """
.gradio-container {max-width: 1600px !important; margin: 0 auto !important;}
#status p {margin: 0;}
#reply {min-height: 120px;}
/* The grid keeps highlighting a position across new results; the panel below shows the pick. */
#gallery .thumbnail-item.selected {border-color: var(--border-color-primary); --ring-color: transparent;}
"""


class _PlainSubclass(type(gr.Image)):
    """Gradio's component metaclass writes a .pyi stub beside the source of every component
    subclass; QueryImage only changes preprocessing, so it is created without that side effect."""

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


TASTE_EMPTY = ("_Like 👍 or pass 👎 products (or take the style quiz) and your results start "
               "following your taste. Only your likes and passes are kept, under a random id "
               "stored in this browser._")


def new_session() -> dict[str, Any]:
    # steps: one dict per search or outfit (query, hits, gallery or outfit, status, reply);
    # selected: the Hit last clicked; anchor: the catalog item last put into the photo box with
    # "Use as reference"; profile: the taste profile id (from the browser, or made on first
    # feedback); quiz: the quiz round on show (None: no quiz) and its items.
    return {"steps": [], "selected": None, "anchor": None, "profile": None, "quiz": None, "quiz_hits": []}


# ---------------------------------------------------------------- formatting


def _value(item: dict, key: str) -> str:
    value = str(item.get(key, "") or "").strip()
    return "" if value in MISSING else value


def item_name(item: dict) -> str:
    return (_value(item, "productDisplayName")
            or " ".join(filter(None, [_value(item, "baseColour"), _value(item, "articleType")]))
            or f"Item {item.get('id', '')}")


def caption(hit) -> str:
    kind = " ".join(filter(None, [_value(hit.item, "baseColour"), _value(hit.item, "articleType")]))
    return f"{kind} · {hit.score:.2f} · {item_name(hit.item)}"  # the start shows in the grid


def reading_line(results) -> str:
    """'In your photo: dress 92% · Green 61% · ...' and what the tweak changes; '' without a photo."""
    reading = getattr(results, "reading", None)
    if reading is None:
        return ""
    parts = []
    for attribute, _ in READ:
        value, confidence = reading.top(attribute)
        parts.append(f"{value} _(corrected)_" if attribute in reading.corrected
                     else f"{value} _{confidence:.0%}_")
    line = "**In your photo:** " + " · ".join(parts)
    the_plan = getattr(results, "plan", None)
    if the_plan is not None and the_plan.changed:
        line += " — **your words change:** " + ", ".join(f"{a} → {v}" for a, v in the_plan.changed.items())
    return line + "  \n_Wrong? Correct it with the menus under the results._"


def status_line(results) -> str:
    plan_lines = set(getattr(getattr(results, "plan", None), "describe", lambda: [])())
    applied = [a for a in (getattr(results, "applied", []) or []) if a not in plan_lines]
    notes = list(getattr(results, "notes", []) or [])
    line = f"**{len(results)} items** · mode `{getattr(results, 'mode', '?')}` · "
    line += ("guard applied: " + ", ".join(f"**{a}**" for a in applied) if applied
             else "no attribute constraints applied")
    return "  \n".join(filter(None, [reading_line(results), line] + [f"_Note: {escape(note)}_" for note in notes]))


def history_markdown(steps: list[dict]) -> str:
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


def outfit_status(outfit) -> str:
    line = f"**Outfit: {len(outfit.pieces())} pieces** · " + " · ".join(escape(d) for d in outfit.describe())
    return "  \n".join([line] + [f"_Note: {escape(note)}_" for note in outfit.notes])


def outfit_json(outfit) -> dict:
    """The outfit for API clients: slots in order, each with its ranked pieces."""
    def piece(hit):
        return {"id": hit.item_id, "score": round(hit.score, 4), "name": item_name(hit.item),
                **{k: _value(hit.item, k) for k in ("gender", "articleType", "baseColour", "season", "usage")},
                "image": hit.item["path"], "why": hit.why}
    return {"planner": outfit.planner, "gender": outfit.gender, "notes": outfit.notes,
            "context": [{"role": p.role, "what": p.words, "from": p.source} for p in outfit.context],
            "slots": [{"role": s.role, "asked": s.asked, "why": s.why, "hits": [piece(h) for h in s.hits]}
                      for s in outfit.slots]}


def board(outfit) -> list:
    """Updates for the outfit board: its intro, then per row (visible, label, gallery of the
    slot's piece, ticked, and its alternatives)."""
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


def details_markdown(hit, index: int | None = None) -> str:
    item = hit.item
    facts = " · ".join(filter(None, [_value(item, k) for k in
                                     ("gender", "articleType", "baseColour", "season", "usage")]))
    why = "\n".join(f"- {escape(reason)}" for reason in hit.why) or "- close to your query overall"
    number = f"#{index + 1} " if index is not None else ""
    return (f"#### {number}{escape(item_name(item))}\n{escape(facts)}  \nid {hit.item_id} · "
            f"score {hit.score:.3f}\n\n**Why it matched**\n{why}")


def _same_picture(image: Image.Image, path: str) -> bool:
    """Whether the query photo is still the catalog photo put there by "Use as new reference"
    (the shopper may have uploaded another one since)."""
    try:
        small = [np.asarray(im.convert("L").resize((16, 16)), dtype=np.float32)
                 for im in (image, load_image(path))]
        return float(np.abs(small[0] - small[1]).mean()) < 8.0
    except Exception:  # noqa: BLE001 - only decides a label
        return False


# ---------------------------------------------------------------- handlers


def search(engine, image, text, mode, weight, k, gender, article_type, colour, season, usage,
           type_is, gender_is, colour_is, pattern_is, personal, session, progress=gr.Progress()):
    """Run one search and record it as a step of the session."""
    text = (text or "").strip()
    filters, corrections = _filters_and_corrections(gender, article_type, colour, season, usage,
                                                    type_is, gender_is, colour_is, pattern_is)
    progress(0.1, desc="Searching the catalog…")
    profile = session.get("profile") if personal is not False else None
    results = _engine_call(lambda: engine.search(
        image=image, text=text or None, k=k, mode=mode or "auto", weight=weight,
        filters=filters or None, corrections=corrections or None, profile=profile))
    for note in getattr(results, "notes", []) or []:
        gr.Warning(note)
    anchor = session.get("anchor")
    from_item = image is not None and anchor is not None and _same_picture(image, anchor["path"])
    source = (f"item {anchor['id']}" if from_item else "your photo") if image is not None else ""
    gallery = [(hit.item["path"], caption(hit)) for hit in results]
    status = status_line(results)
    step = {"image": anchor["path"] if from_item else _small(image), "anchor": anchor if from_item else None,
            "source": source, "text": text, "hits": list(results), "gallery": gallery,
            "status": status, "reply": ""}
    steps = (session["steps"] + [step])[-MAX_STEPS:]
    return gallery, status, gr.Tabs(selected="matches"), {**session, "steps": steps, "selected": None,
                                                          "anchor": step["anchor"]}


def _small(image):
    """A copy of the query photo small enough to keep in the session."""
    if not isinstance(image, Image.Image):
        return image
    small = image.copy()
    small.thumbnail((STEP_PHOTO_SIDE, STEP_PHOTO_SIDE))
    return small


def _filters_and_corrections(gender, article_type, colour, season, usage, type_is, gender_is, colour_is,
                             pattern_is) -> tuple[dict, dict]:
    filters = {col: list(values) for (col, _), values in
               zip(FILTERS, (gender, article_type, colour, season, usage)) if values}
    corrections = {attr: value for (attr, _), value in
                   zip(READ, (type_is, gender_is, colour_is, pattern_is)) if value}
    return filters, corrections


def _engine_call(call):
    """Run an engine call; its InputErrors become messages, anything else a generic one."""
    try:
        return call()
    except FashionRagError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except Exception:  # noqa: BLE001 - never show a stack trace to the shopper
        log.exception("engine call failed")
        raise gr.Error("That failed unexpectedly. Please try again, or try another photo or wording.") from None


def _outfit_step(outfit, session, text: str, image=None, source: str = "") -> tuple:
    """Record an outfit as a step and return the outputs that show it."""
    for note in outfit.notes:
        gr.Warning(note)
    status = outfit_status(outfit)
    anchor = session.get("anchor") if image is not None else None
    step = {"image": _small(image), "anchor": anchor, "source": source, "text": text, "hits": outfit.pieces(),
            "outfit": outfit, "status": status, "reply": ""}
    session = {**session, "steps": (session["steps"] + [step])[-MAX_STEPS:], "selected": None}
    return (outfit_json(outfit), status, *board(outfit), gr.Tabs(selected="outfit"), session)


def _per_slot(k) -> int:
    """The page's number of results as pieces per outfit slot (1 to SLOT_HITS)."""
    return min(max(int(k if k is not None else SLOT_HITS), 1), SLOT_HITS)


def complete(engine, image, text, mode, weight, k, gender, article_type, colour, season, usage,
             type_is, gender_is, colour_is, pattern_is, personal, session):
    """An outfit for the photo and/or words (mode, weight and personal are search settings,
    unused here)."""
    text = (text or "").strip()
    filters, corrections = _filters_and_corrections(gender, article_type, colour, season, usage,
                                                    type_is, gender_is, colour_is, pattern_is)
    outfit = _engine_call(lambda: engine.complete(image=image, text=text, k=_per_slot(k),
                                                  filters=filters or None, corrections=corrections or None))
    return _outfit_step(outfit, session, text, image, "your photo" if image is not None else "")


def complete_item(engine, text, k, session):
    """An outfit around the selected product (and the words, if any)."""
    hit = session.get("selected")
    if hit is None:
        raise gr.Error("First click a product, then complete the look around it.", print_exception=False)
    text = (text or "").strip()
    outfit = _engine_call(lambda: engine.complete(item_id=hit.item_id, text=text, k=_per_slot(k)))
    return _outfit_step(outfit, session, text, source=f"item {hit.item_id}")


def swap(slot, choice, session):
    """Make piece `choice` of outfit slot `slot` that slot's piece; the other slots stay."""
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
    return (outfit_json(swapped), *board(swapped), picked.item["path"], details_markdown(picked),
            {**session, "steps": steps[:-1] + [step], "selected": picked})


def after_search(session):
    return history_markdown(session["steps"]), None, DETAILS_EMPTY, REPLY_PENDING


REPLY_LIMIT = serving.RateLimit(settings.REPLIES_PER_MINUTE, settings.REPLIES_PER_MINUTE_ALL)


def reply(session, request: gr.Request):
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


def describe(engine, image) -> dict:
    """What the photo shows, as JSON: per attribute, ranked values with confidences."""
    if image is None:
        raise gr.Error("Upload a photo to read.", print_exception=False)
    try:
        return engine.describe(image).as_dict()
    except FashionRagError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def pick(evt: gr.SelectData):
    return evt.index


def select_item(index, session):
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


def taste_markdown(summary: dict | None) -> str:
    if not summary or not (summary.get("likes") or summary.get("passes")):
        return TASTE_EMPTY
    learned = [f"{label} {', '.join(summary[key])}" for key, label in
               (("colours", "colours"), ("types", "types"), ("usages", "usage"), ("seasons", "season"),
                ("patterns", "patterns"))
               if summary.get(key)]
    likes, passes = summary["likes"], summary["passes"]
    counts = f"{likes} like{'s' * (likes != 1)}, {passes} pass{'es' * (passes != 1)}"
    return (f"**Your taste** ({counts})  \n"
            + (" · ".join(learned) or "_nothing clear yet_"))


def load_profile(stored, session):
    """On page load: the browser's profile id (a new one on the first visit)."""
    profile = stored if isinstance(stored, str) and stored else new_profile_id()
    return {**session, "profile": profile}, profile


def _rate(engine, hit, liked: bool, session):
    profile = session.get("profile") or new_profile_id()
    summary = _engine_call(lambda: engine.feedback(profile, hit.item_id, liked))
    gr.Info(f"{'Liked' if liked else 'Passed'} “{item_name(hit.item)}”"
            + ("" if liked else ": it is left out of your results for a week"))
    return taste_markdown(summary), {**session, "profile": profile}


def rate_selected(engine, liked: bool, session):
    """Like or pass the product on show in the Selected product panel."""
    if session.get("selected") is None:
        raise gr.Error("First click a product, then like or pass it.", print_exception=False)
    return _rate(engine, session["selected"], liked, session)


def rate_position(engine, liked: bool, index, session):
    """Like or pass result `index` of the latest step (as /select counts)."""
    _, _, session = select_item(index, session)
    return _rate(engine, session["selected"], liked, session)


def profile_info(engine, session) -> dict:
    profile = session.get("profile")
    return {"profile": profile, **(engine.taste(profile) if profile else {"likes": 0, "passes": 0})}


def forget(engine, session):
    """Delete the profile's feedback; a new, empty profile takes its place."""
    if session.get("profile"):
        engine.forget(session["profile"])
    gr.Info("Your likes and passes were deleted; results no longer follow them.")
    profile = new_profile_id()
    return TASTE_EMPTY, {**session, "profile": profile}, profile


def quiz(engine, picks, session):
    """Like the picked items of the round on show, then show the next round (or finish)."""
    profile = session.get("profile") or new_profile_id()
    shown, round_ = session.get("quiz_hits") or [], session.get("quiz")
    for pick in picks or []:
        try:
            hit = shown[int(pick)]
        except (TypeError, ValueError, IndexError):
            raise gr.Error("Pick looks by their numbers in the round on show.", print_exception=False) from None
        _engine_call(lambda: engine.feedback(profile, hit.item_id, True, source="quiz"))
    round_ = 0 if round_ is None else round_ + 1
    session = {**session, "profile": profile}
    if round_ >= len(QUIZ_ROUNDS):
        done = taste_markdown(engine.taste(profile))
        return ([], gr.update(choices=[], value=[], visible=False), "_Quiz done: thank you!_", done,
                {**session, "quiz": None, "quiz_hits": []})
    hits = _engine_call(lambda: engine.quiz(round_))
    choices = [(f"{n + 1}. {_value(h.item, 'baseColour')} {_value(h.item, 'articleType')}", str(n))
               for n, h in enumerate(hits)]
    return ([(h.item["path"], f"{n + 1}. {item_name(h.item)}") for n, h in enumerate(hits)],
            gr.update(choices=choices, value=[], visible=True),
            f"**Round {round_ + 1} of {len(QUIZ_ROUNDS)}**: tick the looks you like, then **Next**.",
            gr.skip(), {**session, "quiz": round_, "quiz_hits": hits})


def use_as_reference(session):
    hit = session.get("selected")
    if hit is None:
        raise gr.Error("First click a product in the results, then use it as your new reference.",
                       print_exception=False)
    gr.Info(f"“{item_name(hit.item)}” is now your reference photo: type a tweak and search.")
    anchor = {"id": hit.item_id, "path": hit.item["path"]}
    return hit.item["path"], "", {**session, "anchor": anchor}


def undo(session):
    """Drop the latest step and show the one before it (query, results or outfit, and reply)."""
    if not session["steps"]:
        gr.Warning("Nothing to undo yet.")
        return *[gr.skip()] * (10 + 3 * MAX_SLOTS), session
    steps = session["steps"][:-1]
    if not steps:
        return (None, "", [], STATUS_EMPTY, REPLY_EMPTY, HISTORY_EMPTY, None, DETAILS_EMPTY,
                *board(None), gr.Tabs(selected="matches"), new_session())
    prev = steps[-1]
    outfit = prev.get("outfit")
    return (prev["image"], prev["text"], prev.get("gallery", gr.skip()), prev["status"],
            prev["reply"] or REPLY_EMPTY, history_markdown(steps), None, DETAILS_EMPTY,
            *board(outfit), gr.Tabs(selected="outfit" if outfit is not None else "matches"),
            {**session, "steps": steps, "selected": None, "anchor": prev["anchor"]})


# ---------------------------------------------------------------- the page


def example_rows() -> tuple[list[list], list[str]]:
    """Example queries and the labels shown for them."""
    rows, labels = [], []
    for item_id, shows, tweak in EXAMPLES:
        path = settings.CATALOG_DIR / "images" / f"{item_id}.jpg" if item_id else None
        if path is None or path.is_file():
            rows.append([str(path) if path else None, tweak])
            labels.append(f"{shows} photo + “{tweak}”" if path else f"text only: “{tweak}”")
    return rows, labels


def image_dirs(engine) -> list[str]:
    """The folders holding the indexed items' photos (as given and with symlinks resolved): the
    only folders the app serves files from, so the catalog table beside them stays private."""
    dirs = {settings.CATALOG_DIR / "images"}
    items = getattr(engine, "items", None)
    if items is not None and "path" in getattr(items, "columns", ()):
        dirs = {Path(p).parent for p in items["path"].unique()}
    return sorted({str(d) for d in dirs} | {str(d.resolve()) for d in dirs})


def build_demo(engine, notice: str = "") -> gr.Blocks:
    """The whole page around an already-loaded engine (loaded once at start-up, shared).
    `notice`: a warning for the page footer (e.g. a public link without a password)."""
    # Catalog photos are shown from where they are instead of being copied per request.
    gr.set_static_paths(image_dirs(engine))
    # Uploads and other cached files are deleted once as old as an expired session.
    age = max(1, int(settings.SESSION_TTL))
    values = getattr(engine, "attribute_values", {}) or {}
    modes = ["auto"] + [m for m in engine.modes if m != "auto"]

    with gr.Blocks(title="Fashion RAG · find it, then tweak it", fill_width=True,
                   delete_cache=(max(1, age // 4), age)) as demo:
        session = gr.State(new_session())
        picked = CheckedNumber(visible=False, precision=0, label="The position")
        gr.Markdown(f"# Fashion RAG · find it, then tweak it\n{INTRO}")
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=300):
                image = QueryImage(label="Outfit photo (optional)", type="pil", height=240,
                                   sources=["upload", "webcam", "clipboard"])
                text = gr.Textbox(label="What you want", lines=1, max_lines=3, max_length=MAX_CHARS,
                                  placeholder="e.g. same vibe but in softer colours for fall")
                with gr.Row():
                    search_btn = gr.Button("Search", variant="primary", min_width=100)
                    complete_btn = gr.Button("Complete the look", min_width=100, elem_id="complete")
                rows, labels = example_rows()
                examples = gr.Examples(rows, inputs=[image, text], example_labels=labels,
                                       cache_examples=False, label="Try one")
                with gr.Accordion("Advanced", open=False):
                    mode = CheckedRadio(modes, value="auto", label="Mode",
                                    info="auto: photo, text or both, from what you give")
                    weight = CheckedSlider(0, 1, value=0.5, step=0.05, label="Text weight",
                                       info="How much your words count against the photo")
                    k = CheckedSlider(1, 40, value=12, step=1, label="Number of results",
                                      info=f"per slot in an outfit: at most {SLOT_HITS}")
                    filters = [CheckedDropdown(values.get(col, []), value=[], multiselect=True,
                                           label=label) for col, label in FILTERS]
            with gr.Column(scale=8, min_width=420):
                status = gr.Markdown(STATUS_EMPTY, label="status", elem_id="status")
                with gr.Tabs(selected="matches") as views:
                    with gr.Tab("Matches", id="matches"):
                        gallery = gr.Gallery(label="Matches", columns=4, height=520, object_fit="contain",
                                             allow_preview=False, interactive=False, elem_id="gallery")
                        classes = getattr(getattr(engine, "reader", None), "classes", None) or {}
                        with gr.Row(visible=bool(classes), elem_id="corrections"):
                            corrections = [CheckedDropdown([AS_READ] + [(v, v) for v in classes.get(attr, [])],
                                                       value="", label=f"{label} in the photo", min_width=120,
                                                       elem_id=f"correct-{attr}") for attr, label in READ]
                    with gr.Tab("Outfit", id="outfit", elem_id="outfit"):
                        outfit_intro = gr.Markdown(OUTFIT_EMPTY)
                        rows, labels, slot_galleries, next_buttons = [], [], [], []
                        for n in range(MAX_SLOTS):
                            with gr.Row(visible=False, equal_height=False, elem_id=f"slot-{n}") as row:
                                with gr.Column(scale=1, min_width=160):
                                    labels.append(gr.Markdown(elem_id=f"slot-{n}-label"))
                                    next_buttons.append(gr.Button("Swap for the next ↻", size="sm",
                                                                  elem_id=f"slot-{n}-next"))
                                slot_galleries.append(gr.Gallery(
                                    show_label=False, columns=SLOT_HITS, height=150, object_fit="contain",
                                    allow_preview=False, interactive=False, scale=4,
                                    elem_id=f"slot-{n}-pieces"))
                            rows.append(row)
                        outfit_json_box = gr.JSON(visible=False)
                with gr.Accordion("Selected product", open=True):
                    with gr.Row(equal_height=False):
                        chosen = gr.Image(label="photo", show_label=False, interactive=False,
                                          height=200, scale=1, min_width=140, buttons=[],
                                          elem_id="chosen")
                        with gr.Column(scale=3):
                            details = gr.Markdown(DETAILS_EMPTY, label="details", elem_id="details")
                            with gr.Row():
                                refine_btn = gr.Button("Use as new reference", size="sm")
                                complete_item_btn = gr.Button("Complete the look with this", size="sm",
                                                              elem_id="complete-item")
                            with gr.Row():
                                like_btn = gr.Button("👍 Like", size="sm", elem_id="like")
                                pass_btn = gr.Button("👎 Pass", size="sm", elem_id="pass")
            with gr.Column(scale=4, min_width=280):
                gr.Markdown("### Stylist")
                reply_md = gr.Markdown(REPLY_EMPTY, label="reply", elem_id="reply", max_height=560)
                with gr.Accordion("Steps", open=True):
                    history = gr.Markdown(HISTORY_EMPTY, label="history", elem_id="history")
                    undo_btn = gr.Button("Undo last step", size="sm")
                with gr.Accordion("Your taste", open=True, elem_id="taste"):
                    taste_md = gr.Markdown(TASTE_EMPTY, elem_id="taste-summary")
                    personal = gr.Checkbox(True, label="Personalise my results", elem_id="personal")
                    with gr.Row():
                        quiz_btn = gr.Button("Take the style quiz", size="sm", elem_id="quiz-start")
                        forget_btn = gr.Button("Forget me", size="sm", variant="stop", elem_id="forget")
                    quiz_msg = gr.Markdown()
                    quiz_gallery = gr.Gallery(show_label=False, columns=2, height=420, object_fit="contain",
                                              allow_preview=False, interactive=False, elem_id="quiz")
                    quiz_picks = CheckedCheckboxGroup([], label="Looks you like", visible=False, elem_id="quiz-picks")
                    with gr.Row():
                        quiz_next = gr.Button("Next", size="sm", elem_id="quiz-next")
                        quiz_skip = gr.Button("Skip the quiz", size="sm", elem_id="quiz-skip")

        search_inputs = [image, text, mode, weight, k, *filters, *corrections, personal, session]
        run_search = functools.partial(search, engine)
        reading_json = gr.JSON(visible=False)

        def then_reply(event, keep_selection: bool = False, **api):
            """After a step: refresh the history (unless only a piece was swapped), then the reply."""
            after = event.success(lambda: REPLY_PENDING, None, reply_md, show_progress="hidden",
                                  api_visibility="private") if keep_selection else \
                event.success(after_search, session, [history, chosen, details, reply_md],
                              show_progress="hidden", api_visibility="private")
            after.success(reply, session, reply_md, show_progress="minimal", **api)

        search_outputs = [gallery, status, views, session]
        board_outputs = [outfit_intro, *rows, *labels, *slot_galleries]
        then_reply(gr.on([search_btn.click, text.submit], run_search, search_inputs,
                         search_outputs, api_name="search", concurrency_id="search"),
                   api_name="reply")
        # An example click fills the inputs, then searches: one click to a first result.
        then_reply(examples.load_input_event.then(
            run_search, search_inputs, search_outputs, concurrency_id="search",
            api_visibility="private"), api_visibility="private")

        # A correction re-runs the search at once; a new photo starts from its own reading.
        then_reply(gr.on([c.input for c in corrections], run_search, search_inputs, search_outputs,
                         concurrency_id="search", api_visibility="private"), api_visibility="private")

        # Outfits: from the photo and words, or around the selected product; pieces swap per slot.
        outfit_outputs = [outfit_json_box, status, *board_outputs, views, session]
        then_reply(complete_btn.click(functools.partial(complete, engine), search_inputs, outfit_outputs,
                                      api_name="complete", concurrency_id="search"), api_visibility="private")
        then_reply(complete_item_btn.click(functools.partial(complete_item, engine), [text, k, session],
                                           outfit_outputs, api_name="complete_item", concurrency_id="search"),
                   api_visibility="private")
        slot_no = CheckedNumber(visible=False, precision=0, label="The slot")
        choice_no = CheckedNumber(visible=False, precision=0, label="The piece")
        swap_outputs = [outfit_json_box, *board_outputs, chosen, details, session]
        then_reply(gr.Button(visible=False).click(swap, [slot_no, choice_no, session], swap_outputs,
                                                  api_name="swap"), True, api_visibility="private")
        for n in range(MAX_SLOTS):
            then_reply(next_buttons[n].click(functools.partial(swap, n, 1), session, swap_outputs,
                                             api_visibility="private", show_progress="hidden"),
                       True, api_visibility="private")
            then_reply(slot_galleries[n].select(pick, None, choice_no, show_progress="hidden",
                                                api_visibility="private")
                       .then(functools.partial(swap, n), [choice_no, session], swap_outputs,
                             api_visibility="private", show_progress="hidden"), True, api_visibility="private")
        image.upload(lambda: [""] * len(corrections), None, corrections, api_visibility="private",
                     show_progress="hidden")
        gr.Button(visible=False).click(functools.partial(describe, engine), image, reading_json,
                                       api_name="describe")

        gallery.select(pick, None, picked, show_progress="hidden", api_visibility="private") \
            .then(select_item, [picked, session], [chosen, details, session], api_name="select",
                  show_progress="hidden")
        refine_btn.click(use_as_reference, session, [image, text, session], api_name="refine")
        # Taste: the profile id lives in the browser; likes, passes and the quiz teach it.
        browser_profile = gr.BrowserState("", storage_key="fashion_rag_profile")
        demo.load(load_profile, [browser_profile, session], [session, browser_profile], api_visibility="private") \
            .then(lambda s: taste_markdown(engine.taste(s["profile"])), session, taste_md, api_visibility="private")
        for button, liked in ((like_btn, True), (pass_btn, False)):
            button.click(functools.partial(rate_selected, engine, liked), session, [taste_md, session],
                         api_visibility="private")
            gr.Button(visible=False).click(functools.partial(rate_position, engine, liked), [picked, session],
                                           [taste_md, session], api_name="like" if liked else "pass")
        gr.Button(visible=False).click(functools.partial(profile_info, engine), session, gr.JSON(visible=False),
                                       api_name="profile")
        forget_btn.click(functools.partial(forget, engine), session, [taste_md, session, browser_profile],
                         api_name="forget")
        quiz_outputs = [quiz_gallery, quiz_picks, quiz_msg, taste_md, session]
        run_quiz = functools.partial(quiz, engine)
        quiz_btn.click(lambda s: {**s, "quiz": None, "quiz_hits": []}, session, session, api_visibility="private") \
            .then(run_quiz, [gr.State([]), session], quiz_outputs, api_visibility="private")
        quiz_next.click(run_quiz, [quiz_picks, session], quiz_outputs, api_name="quiz")
        quiz_skip.click(lambda s: ([], gr.update(choices=[], value=[], visible=False), "_Quiz skipped._",
                                   {**s, "quiz": None, "quiz_hits": []}),
                        session, [quiz_gallery, quiz_picks, quiz_msg, session], api_visibility="private")

        undo_btn.click(undo, session, [image, text, gallery, status, reply_md, history, chosen,
                                       details, *board_outputs, views, session], api_name="undo")
        if notice:
            gr.Markdown(f"⚠️ {notice}", elem_id="notice")
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """demo.launch with the page's theme and CSS (Gradio 6 takes them at launch) and the limits
    of a public server: upload size, number of sessions, idle sessions dropped."""
    kwargs.setdefault("max_file_size", int(settings.MAX_UPLOAD_MB * 1024 * 1024))
    # Never the catalog table, even if a catalog keeps images beside it (blocked beats allowed).
    table = settings.CATALOG_DIR / "styles.csv"
    kwargs.setdefault("blocked_paths", sorted({str(table), str(table.resolve())}))
    kwargs.setdefault("state_session_capacity", settings.MAX_SESSIONS)
    serving.quiet_bad_requests()
    serving.tune_heap()
    launched = demo.launch(theme=THEME, css=CSS, **kwargs)
    serving.expire_sessions_forever(demo)
    return launched
