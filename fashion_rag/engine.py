"""The engine: what the app, the CLI and the scripts call, composed of the stages below it.

A search runs the query side (fashion_rag.retrieval.search: photo and/or text -> hits; for a photo of
a person, one of the pieces they wear) and, with a
shopper's profile, their taste re-ranks the matches (fashion_rag.taste). `Engine.complete`
answers outfit requests instead: a plan of slots (fashion_rag.outfits.planner) around what the
shopper has (fashion_rag.outfits.context), then pieces that go together (fashion_rag.outfits.outfit).
"""
from __future__ import annotations

import logging
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from fashion_rag import settings
from fashion_rag.data.catalog import fingerprint, load_catalog
from fashion_rag.data.images import ImageLike
from fashion_rag.data.wardrobe import roles_named
from fashion_rag.encoding.encoder import Encoder, load_encoder
from fashion_rag.encoding.fusion import GatedComposer
from fashion_rag.encoding.pieces import Piece
from fashion_rag.encoding.pose import FILES as POSE_FILES
from fashion_rag.encoding.pose import PoseModel
from fashion_rag.encoding.reader import PhotoReader, Reading
from fashion_rag.errors import FashionRagError, InputError, StaleIndexError
from fashion_rag.insights.log import DemandLog
from fashion_rag.outfits.context import item_pieces, photo_pieces, restrict
from fashion_rag.outfits.outfit import MAX_ALTERNATIVES, Outfit, Outfitter
from fashion_rag.outfits.planner import Vocabulary
from fashion_rag.outfits.planner import plan as plan_outfit
from fashion_rag.retrieval.hits import Hit
from fashion_rag.retrieval.index import Index, load_index
from fashion_rag.retrieval.inputs import clean_text, whole
from fashion_rag.retrieval.search import Searcher
from fashion_rag.retrieval.tweak import Plan
from fashion_rag.taste.profiles import Profile, ProfileStore, check_id
from fashion_rag.taste.quiz import QUIZ_ROUNDS, quiz_round
from fashion_rag.taste.ranking import crowd_scores, personalise

log = logging.getLogger(__name__)
POOL = 1000  # candidates (matching the query) a profile re-ranks, beyond k


class Results(list):
    """A list of Hit, plus what the search did: the mode used, the constraints applied, warnings,
    and for a photo the one searched for (`piece`), its reading and what the tweak kept and
    changed (guided mode). `pieces`: the pieces in the photo when the search needed them (a piece
    asked for or named), else None: `Engine.pieces` finds them after the results are shown."""

    def __init__(self, hits: list[Hit], mode: str, applied: list[str], notes: list[str],
                 reading: Reading | None = None, plan: Plan | None = None,
                 pieces: list[Piece] | None = None, piece: int | None = None):
        super().__init__(hits)
        self.mode, self.applied, self.notes = mode, applied, notes
        self.reading, self.plan, self.pieces, self.piece = reading, plan, pieces, piece


class Engine:
    def __init__(self, index: Index, encoder: Encoder, composer: GatedComposer | None = None,
                 reader: PhotoReader | None = None, warnings: list[str] | None = None,
                 profiles_path: str | Path | None = None, pose: PoseModel | None = None):
        self.index, self.encoder, self.composer, self.reader = index, encoder, composer, reader
        self.searcher = Searcher(index, encoder, composer, reader, pose)
        self.profiles_path = Path(profiles_path or settings.PROFILES)
        self.items = index.items
        self.attribute_values, self.guard = self.searcher.attribute_values, self.searcher.guard
        self.modes = self.searcher.modes
        self.demand = DemandLog()  # off: the app turns the demand log on (DemandLog.configured)
        # For whoever runs the engine (logged once where they arise), not for each result: a
        # shopper can do nothing about a stale index or a damaged profile store.
        self.warnings = warnings or []

    def warm_up(self) -> None:
        """One photo + text search and one outfit on the first catalog photo, so that one-time
        costs (torch's first calls, lazily built tables) are paid at start-up, not by the first
        shopper, and a server's memory at start already includes them."""
        photo = self.items["path"].iloc[0]
        try:
            self.search(image=photo, text="in red", k=12)
            self.complete(image=photo, text="complete this look", planner="rules")  # never a paid call
        except FashionRagError as exc:  # e.g. the photo went missing: the shoppers pay instead
            log.warning("Warm-up skipped: %s", exc)

    def describe(self, image: ImageLike, corrections: dict[str, str] | None = None) -> Reading:
        """What the photo shows: per attribute (type, gender, colour, pattern), ranked (value,
        confidence) pairs. `corrections` (attribute -> value) override the reading."""
        return self.searcher.describe(image, corrections)

    def check_corrections(self, corrections: dict | None) -> dict[str, str]:
        """Corrections of the photo reading in canonical form; unknown ones are an InputError."""
        return self.searcher.check_corrections(corrections)

    def pieces(self, image: ImageLike) -> list[Piece]:
        """The pieces worn in a photo of a person (box, reading, role), most prominent first; a
        photo with nobody in it (a garment, a product shot) is one piece: the whole photo."""
        return self.searcher.pieces(image)

    def item(self, item_id: int) -> dict[str, Any]:
        return self.searcher.item(item_id)

    def resolve_mode(self, mode: str, has_image: bool, has_text: bool) -> str:
        return self.searcher.resolve_mode(mode, has_image, has_text)

    def search(self, image: ImageLike | None = None, text: str | None = None, k: int = 10,
               mode: str = "auto", weight: float = 0.5, filters: dict[str, list[str]] | None = None,
               guard: bool = True, corrections: dict[str, str] | None = None,
               profile: str | None = None, piece: int | None = None, box=None) -> Results:
        """Ranked catalog items for a photo, a text, or both (see README for the modes).
        `corrections` (attribute -> value) fix the photo reading, for the guided mode. With a
        `profile` id, the shopper's taste re-ranks the matches (fashion_rag.taste.ranking).
        `piece` (a number in `pieces(image)`) or `box` (x0, y0, x1, y1 pixels) says what in the
        photo to search for; by default the piece the words name, else the photo as a whole."""
        query = self.searcher.query(image, text, k, mode, weight, filters, guard, corrections, piece, box)
        person = self._profile(profile) if profile is not None else None
        # With a profile, more candidates: room to re-rank, explore and leave passed items out.
        hits = self.searcher.find(query, extra=POOL + len(person.passed) if person else 0)
        if person is not None:
            vectors = self.searcher.vectors([h.item_id for h in hits])
            crowd = crowd_scores(person.id, self.profiles.histories()) if person.feedback else {}
            hits = personalise(hits, query.k, person, vectors, crowd, time.time())
            self.profiles.add_shown(person.id, [h.item_id for h in hits])
        self.demand.searched(query, hits, profile, text)
        return Results(hits, query.mode, query.applied(), query.notes, query.reading, query.plan,
                       query.pieces, query.piece)

    def complete(self, image: ImageLike | None = None, text: str | None = "", k: int = 3,
                 filters: dict[str, list[str]] | None = None, corrections: dict[str, str] | None = None,
                 item_id: int | None = None, planner: str = "auto") -> Outfit:
        """An outfit: slots (role, ranked hits, why) for what the words ask, around what the
        shopper has: the photo (every piece worn in it, as read; a piece the words ask for anew,
        "shoes to go with this", is left out), the catalog item `item_id`, or pieces the words
        call theirs ("my black jeans"). `k` hits per slot; `filters` restrict every piece; `planner`
        is auto (the AI planner when configured, else rules), llm or rules."""
        k = whole(k, "k", 1, MAX_ALTERNATIVES)
        text, notes = clean_text(text)
        filters = self.guard.check_filters(filters)
        if planner not in ("auto", "llm", "rules"):
            raise InputError(f"Unknown planner {planner!r}; choose auto, llm or rules.")
        has, reading = [], None
        if image is not None and self.reader is None:
            has += photo_pieces(None, self.attribute_values["articleType"], notes)
        elif image is not None:
            worn = self.searcher.pieces(image)
            if len(worn) > 1:  # a person: a piece the words ask for is wanted anew, the rest is theirs
                asked = self.guard.parse(text).include.get("articleType", set())
                worn = [p for p in worn if p.role not in roles_named(asked)]
            readings = [self.searcher.corrected(p.reading, corrections if len(worn) == 1 else None) for p in worn]
            for one in readings:
                has += photo_pieces(one, self.attribute_values["articleType"], notes)
            reading = readings[0] if readings else None
        if item_id is not None:
            has += item_pieces(self.item(item_id), notes)
        request = plan_outfit(text, self.outfits.vocab, has, planner)
        restrict(request, filters, self.attribute_values)
        outfit = self.outfits.complete(request, k)
        outfit.notes = notes + outfit.notes
        self.demand.outfitted(request, outfit, text, reading)
        return outfit

    @cached_property
    def outfits(self) -> Outfitter:
        """The outfit builder over this catalog (made on first use)."""
        return Outfitter(self.items, Vocabulary(self.items, self.guard), self.searcher.rank_texts)

    # ---------------------------------------------------------------- personal taste

    @cached_property
    def profiles(self) -> ProfileStore:
        """The shoppers' feedback store (opened on first use; a corrupt file is set aside, and the
        store logs that once)."""
        store = ProfileStore(self.profiles_path)
        if store.warning:
            self.warnings.append(store.warning)
        return store

    def _profile(self, profile: str) -> Profile:
        records, row_of = self.searcher.records, self.searcher.row_of
        return self.profiles.load(check_id(profile), self.searcher.vectors,
                                  lambda i: records[row_of[i]] if i in row_of else None)

    def _vector_of(self, item_id: int) -> np.ndarray:
        return self.index.vectors[self.searcher.row_of[item_id]]

    def feedback(self, profile: str, item_id: int, liked: bool, source: str = "page") -> dict:
        """Record a like (liked=True) or a pass of a catalog item; returns the profile's summary."""
        check_id(profile)
        self.item(item_id)  # an unknown item is an InputError
        if not isinstance(liked, bool):
            raise InputError("liked must be True (a like) or False (a pass).")
        self.profiles.add_feedback(check_id(profile), int(item_id), liked, source)
        self.demand.rated(profile, int(item_id), liked, source)
        return self.taste(profile)

    def taste(self, profile: str) -> dict:
        """What the profile has taught so far: counts and the liked colours, types, usages, seasons."""
        return self._profile(profile).summary()

    def forget(self, profile: str) -> int:
        """Delete the profile's feedback and history; returns the number of feedback events removed."""
        return self.profiles.forget(check_id(profile))

    def quiz(self, round_: int, gender: str = "") -> list[Hit]:
        """Round `round_` of the style quiz: items as different from each other as the catalog
        allows (fashion_rag.taste.quiz), for the shopper to pick the ones they like."""
        if gender and gender not in self.attribute_values["gender"]:
            raise InputError(f"Unknown gender {gender!r}; choose from {', '.join(self.attribute_values['gender'])}.")
        rows = quiz_round(self.items, whole(round_, "The quiz round", 0, len(QUIZ_ROUNDS) - 1), gender)
        records = self.searcher.records
        return [Hit(int(records[r]["id"]), 0.0, dict(records[r]), ["style quiz"]) for r in rows]


def load_engine(index_dir: str | Path | None = None, model: str | None = None,
                composer_dir: str | Path | None = None, check_catalog: bool = True,
                reader_dir: str | Path | None = None, profiles: str | Path | None = None) -> Engine:
    """Load the index, the encoder it was built with (or `model`), and the gated composer and the
    photo reader if trained for that encoder. `profiles`: the shoppers' feedback store file."""
    index_dir = Path(index_dir or settings.INDEX_DIR)
    index = load_index(index_dir)
    encoder = load_encoder(model or index.model, arena=False)  # a server's batches are small: fast.py
    if encoder.weights_hash != index.manifest["model_hash"]:
        raise StaleIndexError(
            f"The index in {index_dir} was built with other encoder weights ({index.manifest['model']}); "
            f"its vectors would not match the queries. Rebuild it: `python scripts/build_index.py --out {index_dir}`.")
    warnings = []
    catalog_csv = index.catalog_csv
    if check_catalog and catalog_csv.is_file():
        current = fingerprint(load_catalog(catalog_csv, check_images=False).items)
        if current != index.manifest["catalog_fingerprint"]:
            warnings.append(f"The catalog at {catalog_csv} changed since the index was built; new or edited "
                            "items are missing from results. Run `python scripts/build_index.py --update`.")
            log.warning(warnings[-1])
    composer = GatedComposer.load(Path(composer_dir or settings.COMPOSER_DIR), encoder.weights_hash)
    reader = PhotoReader.load(Path(reader_dir or settings.READER_DIR), encoder.weights_hash)
    pose = None
    if str(settings.POSE_DIR) != "off" and all((settings.POSE_DIR / f).is_file() for f in POSE_FILES):
        pose = PoseModel(settings.POSE_DIR)
    elif str(settings.POSE_DIR) != "off":
        warnings.append(f"No pose models in {settings.POSE_DIR}: a photo of a person is searched as one piece. "
                        "Run `python -m fashion_rag prepare` to fetch them.")
        log.warning(warnings[-1])
    return Engine(index, encoder, composer, reader, warnings, profiles, pose)
