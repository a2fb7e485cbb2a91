"""Taste and quiz: likes, passes and the style quiz teach the session's taste profile, which then
re-ranks its searches. Only feedback is kept, under a random id that lives in the browser."""
from __future__ import annotations

import re

import gradio as gr

from fashion_rag import Engine, Hit
from fashion_rag.taste.profiles import new_profile_id
from fashion_rag.taste.quiz import QUIZ_ROUNDS
from fashion_rag.ui.format import item_name, kind
from fashion_rag.ui.selection import select_item
from fashion_rag.ui.session import Session, engine_call

TASTE_EMPTY = ("_Like 👍 or pass 👎 products (or take the style quiz) and your results start "
               "following your taste. Only your likes and passes are kept, under a random id "
               "stored in this browser._")
LEARNED = (("colours", "colours"), ("types", "types"), ("usages", "usage"), ("seasons", "season"),
           ("patterns", "patterns"))  # (summary key, label) in the order the taste panel lists them


def taste_markdown(summary: dict | None) -> str:
    """The taste panel: how much feedback there is and what the profile has learned from it."""
    if not summary or not (summary.get("likes") or summary.get("passes")):
        return TASTE_EMPTY
    learned = [f"{label} {', '.join(summary[key])}" for key, label in LEARNED if summary.get(key)]
    likes, passes = summary["likes"], summary["passes"]
    counts = f"{likes} like{'s' * (likes != 1)}, {passes} pass{'es' * (passes != 1)}"
    return (f"**Your taste** ({counts})  \n"
            + (" · ".join(learned) or "_nothing clear yet_"))


# The ids this page makes (new_profile_id: 128 random bits). An id is the bearer secret of its
# profile, since whoever sends it gets that taste: the page takes back only ids it could have made.
PAGE_ID = re.compile(r"^[0-9a-f]{32}$")


def load_profile(stored: str | None, session: Session) -> tuple[Session, str]:
    """On page load: the browser's profile id (a new one on the first visit, or for anything
    else the browser sends, so a damaged id never locks a shopper out of the taste panel)."""
    profile = stored if isinstance(stored, str) and PAGE_ID.match(stored) else new_profile_id()
    return {**session, "profile": profile}, profile


def _rate(engine: Engine, hit: Hit, liked: bool, session: Session) -> tuple[str, Session]:
    profile = session.get("profile") or new_profile_id()
    summary = engine_call(lambda: engine.feedback(profile, hit.item_id, liked))
    gr.Info(f"{'Liked' if liked else 'Passed'} “{item_name(hit.item)}”"
            + ("" if liked else ": it is left out of your results for a week"))
    return taste_markdown(summary), {**session, "profile": profile}


def rate_selected(engine: Engine, liked: bool, session: Session) -> tuple[str, Session]:
    """Like or pass the product on show in the Selected product panel."""
    if session.get("selected") is None:
        raise gr.Error("First click a product, then like or pass it.", print_exception=False)
    return _rate(engine, session["selected"], liked, session)


def rate_position(engine: Engine, liked: bool, index: int | None, session: Session) -> tuple[str, Session]:
    """Like or pass result `index` of the latest step (as /select counts)."""
    _, _, session = select_item(index, session)
    return _rate(engine, session["selected"], liked, session)


def _summary(engine: Engine, profile: str | None) -> dict:
    return engine_call(lambda: engine.taste(profile)) if profile else {"likes": 0, "passes": 0}


def panel(engine: Engine, session: Session) -> str:
    """The taste panel for the session's profile."""
    return taste_markdown(_summary(engine, session.get("profile")))


def profile_info(engine: Engine, session: Session) -> dict:
    """The profile id and what it has learned, for API clients."""
    return {"profile": session.get("profile"), **_summary(engine, session.get("profile"))}


def forget(engine: Engine, session: Session) -> tuple[str, Session, str]:
    """Delete the profile's feedback; a new, empty profile takes its place."""
    if session.get("profile"):
        engine_call(lambda: engine.forget(session["profile"]))
    gr.Info("Your likes and passes were deleted; results no longer follow them.")
    profile = new_profile_id()
    return TASTE_EMPTY, {**session, "profile": profile}, profile


def without_quiz(session: Session) -> Session:
    """The session with no quiz round on show (the next /quiz call starts a new quiz)."""
    return {**session, "quiz": None, "quiz_hits": []}


def _close_quiz(session: Session, message: str, *taste: str) -> tuple:
    """The quiz panel emptied and hidden: (panel, gallery, picks, message, [taste panel,] session)."""
    return gr.update(visible=False), [], gr.update(choices=[], value=[]), message, *taste, without_quiz(session)


def skip_quiz(session: Session) -> tuple:
    """Close the quiz half-way; what was liked so far stays learned."""
    return _close_quiz(session, "_Quiz skipped._")


def start_quiz(engine: Engine, session: Session) -> tuple:
    """Start the quiz afresh: its first round."""
    return quiz(engine, [], without_quiz(session))


def quiz(engine: Engine, picks: list[str] | None, session: Session) -> tuple:
    """Like the picked items of the round on show, then show the next round (or finish):
    (panel, gallery, picks, message, taste panel, session). The picks widget lets each pick
    through once, so a round costs at most one like per look on show."""
    profile = session.get("profile") or new_profile_id()
    shown, round_ = session.get("quiz_hits") or [], session.get("quiz")
    for pick in picks or []:
        try:
            hit = shown[int(pick)]
        except (TypeError, ValueError, IndexError):
            raise gr.Error("Pick looks by their numbers in the round on show.", print_exception=False) from None
        engine_call(lambda: engine.feedback(profile, hit.item_id, True, source="quiz"))
    round_ = 0 if round_ is None else round_ + 1
    session = {**session, "profile": profile}
    if round_ >= len(QUIZ_ROUNDS):
        return _close_quiz(session, "_Quiz done: thank you!_", panel(engine, session))
    hits = engine_call(lambda: engine.quiz(round_))
    choices = [(f"{n + 1}. {kind(h.item)}", str(n)) for n, h in enumerate(hits)]
    return (gr.update(visible=True), [(h.item["path"], f"{n + 1}. {item_name(h.item)}") for n, h in enumerate(hits)],
            gr.update(choices=choices, value=[]),
            f"**Round {round_ + 1} of {len(QUIZ_ROUNDS)}**: tick the looks you like, then **Next**.",
            gr.skip(), {**session, "quiz": round_, "quiz_hits": hits})
