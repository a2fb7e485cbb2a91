"""The query side: photo and/or text -> fused query vector -> vector store search, filtered by the
attribute guard -> hits.

With a photo, the photo reader says what it shows, and the `guided` mode (what `auto` picks for a
photo, with or without words) keeps that through the tweak (fashion_rag.retrieval.tweak).
`Engine.complete` answers outfit requests instead: a plan of slots (fashion_rag.outfits.planner), then
pieces that go together (fashion_rag.outfits.outfit)."""
from __future__ import annotations

import logging
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fashion_rag import settings
from fashion_rag.data.catalog import (
    attribute_values,
    fingerprint,
    group_types,
    load_catalog,
    type_group,
)
from fashion_rag.data.images import ImageLike, load_image
from fashion_rag.encoding.encoder import Encoder, load_encoder
from fashion_rag.encoding.fusion import MODES, NEEDS, GatedComposer, query_vector
from fashion_rag.encoding.reader import ATTRIBUTES as READ_ATTRIBUTES
from fashion_rag.encoding.reader import PhotoReader, Reading, pattern_of
from fashion_rag.errors import FashionRagError, InputError, StaleIndexError
from fashion_rag.outfits.outfit import MAX_ALTERNATIVES, Outfit, Outfitter
from fashion_rag.outfits.planner import GROUP_ROLE, ROLE_OF, Piece, Vocabulary
from fashion_rag.outfits.planner import plan as plan_outfit
from fashion_rag.retrieval import tweak
from fashion_rag.retrieval.guard import MAX_CHARS, Constraints, Guard
from fashion_rag.retrieval.hits import Hit
from fashion_rag.retrieval.index import Index, load_index
from fashion_rag.retrieval.tweak import Plan, plan, prior
from fashion_rag.taste.profiles import Profile, ProfileStore, check_id
from fashion_rag.taste.quiz import QUIZ_ROUNDS, quiz_round
from fashion_rag.taste.ranking import crowd_scores, personalise

log = logging.getLogger(__name__)
# What auto picks, by scripts/evaluate.py: with a photo, the reading-guided mode (it needs a trained
# photo reader; else gated, which needs a composer); for text alone, text against photos and descriptions.
AUTO_BOTH = ("guided", "gated", "concat")
AUTO_IMAGE = ("guided", "image")
AUTO_TEXT = "concat"
MIN_POOL = 2000  # candidates a reading prior re-ranks in catalogs of over 50k items (else all)
MAX_K = 100
POOL = 1000  # candidates (matching the query) a profile re-ranks, beyond k


class Results(list):
    """A list of Hit, plus what the search did: the mode used, the constraints applied, warnings,
    and for a photo the reading of it and what the tweak kept and changed (guided mode)."""

    def __init__(self, hits: list[Hit], mode: str, applied: list[str], notes: list[str],
                 reading: Reading | None = None, plan: Plan | None = None):
        super().__init__(hits)
        self.mode, self.applied, self.notes = mode, applied, notes
        self.reading, self.plan = reading, plan


class Engine:
    def __init__(self, index: Index, encoder: Encoder, composer: GatedComposer | None = None,
                 reader: PhotoReader | None = None, warnings: list[str] | None = None,
                 profiles_path: str | Path | None = None):
        self.index, self.encoder, self.composer, self.reader = index, encoder, composer, reader
        self.profiles_path = Path(profiles_path or settings.PROFILES)
        self.items = index.items
        self._records = self.items.to_dict("records")
        self._row_of = {int(i): row for row, i in enumerate(self.items["id"])}
        self._row_index = pd.Index(self.items["id"].astype(np.int64))
        self.attribute_values = attribute_values(self.items)
        self.guard = Guard(self.attribute_values)
        self.warnings = warnings or []
        available = {"gated": composer is not None, "guided": reader is not None}
        self.modes = [m for m in MODES if available.get(m, True)]
        self._codes = self._reader_codes() if reader is not None else {}

    def _reader_codes(self) -> dict[str, np.ndarray]:
        """Each item's class index per read attribute (-1: a value the reader does not predict)."""
        values = {"type": self.items["articleType"].map(type_group), "gender": self.items["gender"],
                  "colour": self.items["baseColour"], "pattern": self.items["productDisplayName"].map(pattern_of)}
        codes = {}
        for attribute in READ_ATTRIBUTES:
            index_of = {c: i for i, c in enumerate(self.reader.classes[attribute])}
            codes[attribute] = values[attribute].map(lambda v: index_of.get(v, -1)).to_numpy()
        return codes

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
        if self.reader is None:
            raise InputError("Photo reading is not available: no photo reader was trained for this "
                             "encoder (run `python -m fashion_rag prepare`).")
        picture = load_image(image)
        return self._read(picture, self.encoder.look_at_images([picture])[1][0], corrections)

    def _read(self, picture, features: np.ndarray, corrections: dict[str, str] | None) -> Reading:
        """The reading of a photo from its image tower features (Encoder.look), with corrections."""
        reading = self.reader.read(features, picture)
        for attribute, value in self.check_corrections(corrections).items():
            reading.values[attribute] = [(value, 1.0)] + [(v, 0.0) for v, _ in reading.values[attribute] if v != value]
            reading.corrected += (attribute,)
        return reading

    def check_corrections(self, corrections: dict | None) -> dict[str, str]:
        """Corrections of the photo reading in canonical form; unknown ones are an InputError."""
        if not corrections:
            return {}
        if not isinstance(corrections, dict):
            raise InputError("Corrections must map an attribute (type, gender, colour, pattern) to a value.")
        checked = {}
        for attribute, value in corrections.items():
            if value in (None, ""):
                continue
            choices = self.reader.classes.get(attribute) if self.reader else None
            if choices is None:
                raise InputError(f"Unknown attribute {attribute!r} to correct; use {', '.join(READ_ATTRIBUTES)}.")
            known = {c.lower(): c for c in choices}
            if str(value).lower() not in known:
                raise InputError(f"{value!r} is not a {attribute} the reader knows; choose from {', '.join(choices)}.")
            checked[attribute] = known[str(value).lower()]
        return checked

    def item(self, item_id: int) -> dict[str, Any]:
        if int(item_id) not in self._row_of:
            raise InputError(f"No item {item_id} in this catalog.")
        return dict(self._records[self._row_of[int(item_id)]])

    def resolve_mode(self, mode: str, has_image: bool, has_text: bool) -> str:
        if mode == "auto":
            if has_image:
                return next(m for m in (AUTO_BOTH if has_text else AUTO_IMAGE) if m in self.modes)
            return AUTO_TEXT
        if mode not in self.modes:
            raise InputError(f"Unknown or unavailable mode {mode!r}; choose one of auto, {', '.join(self.modes)}.")
        given = {"image": has_image, "text": has_text}
        missing = [p for p in NEEDS[mode] if not given[p]]
        if missing:
            raise InputError(f"Mode {mode!r} needs {' and '.join(NEEDS[mode])}; please add "
                             f"{' and '.join('a photo' if p == 'image' else 'a text' for p in missing)}.")
        return mode

    def search(self, image: ImageLike | None = None, text: str | None = None, k: int = 10,
               mode: str = "auto", weight: float = 0.5, filters: dict[str, list[str]] | None = None,
               guard: bool = True, corrections: dict[str, str] | None = None,
               profile: str | None = None) -> Results:
        """Ranked catalog items for a photo, a text, or both (see README for the modes).
        `corrections` (attribute -> value) fix the photo reading, for the guided mode. With a
        `profile` id, the shopper's taste re-ranks the matches (fashion_rag.taste.ranking)."""
        k, weight = _whole(k, "k", 1, MAX_K), _number(weight, "The text weight", 0.0, 1.0)
        text, notes = _clean_text(text)
        filters = self.guard.check_filters(filters)
        picture = load_image(image) if image is not None else None
        if picture is None and not text and not filters:
            raise InputError("Nothing to search for: upload a photo, type what you want, or both.")
        # What the words ask for; it becomes hard filters only with the guard on.
        asked = self.guard.parse(text).merge(filters)
        constraints = asked if guard else self.guard.parse("").merge(filters)
        constraints.text = asked.text if guard else text
        # Negated words ("no stripes") are kept out of the text vector, which would pull towards them.
        query_text = constraints.text or (text if picture is None else "")
        mode = self.resolve_mode(mode, picture is not None, bool(query_text) or (not text and picture is None))
        image_vec = features = reading = the_plan = bonus = None
        if picture is not None:
            (image_vec,), (features,) = self.encoder.look_at_images([picture])
        if picture is not None and self.reader is not None:
            reading = self._read(picture, features, corrections)
        if mode == "guided":
            the_plan = plan(reading, asked, query_text)
            query_text, weight = the_plan.text, tweak.WEIGHT
            bonus = prior(the_plan, self._codes, self.reader.classes)
        text_vec = self.encoder.encode_texts([query_text or "a fashion product"])[0] \
            if query_text or (picture is None and mode != "guided") else None
        query = query_vector(mode, image_vec, text_vec, weight, self.composer)
        person = self._profile(profile) if profile is not None else None
        # With a profile, more candidates: room to re-rank, explore and leave passed items out.
        extra = POOL + len(person.passed) if person else 0
        hits = self._ranked(query, k, constraints, notes, bonus, extra=extra)
        for hit in hits:
            hit.why = self._why(hit, image_vec, text_vec, query_text, the_plan) + constraints.reasons(hit.item)
        if person is not None:
            vectors = self.index.vectors[[self._row_of[h.item_id] for h in hits]]
            crowd = crowd_scores(person.id, self.profiles.histories()) if person.feedback else {}
            hits = personalise(hits, k, person, vectors, crowd, time.time())
            self.profiles.add_shown(person.id, [h.item_id for h in hits])
        applied = constraints.describe() + (the_plan.describe() if the_plan else [])
        return Results(hits, mode, applied, notes + self.warnings, reading, the_plan)

    def complete(self, image: ImageLike | None = None, text: str | None = "", k: int = 3,
                 filters: dict[str, list[str]] | None = None, corrections: dict[str, str] | None = None,
                 item_id: int | None = None, planner: str = "auto") -> Outfit:
        """An outfit: slots (role, ranked hits, why) for what the words ask, around what the
        shopper has: the photo (as read), the catalog item `item_id`, or pieces the words call
        theirs ("my black jeans"). `k` hits per slot; `filters` restrict every piece; `planner`
        is auto (the AI planner when configured, else rules), llm or rules."""
        k = _whole(k, "k", 1, MAX_ALTERNATIVES)
        text, notes = _clean_text(text)
        filters = self.guard.check_filters(filters)
        if planner not in ("auto", "llm", "rules"):
            raise InputError(f"Unknown planner {planner!r}; choose auto, llm or rules.")
        has = []
        if image is not None:
            picture = load_image(image)
            if self.reader is None:
                notes.append("Photos cannot be read here (no photo reader); the outfit follows your words.")
            else:
                has += self._piece(self._read(picture, self.encoder.look_at_images([picture])[1][0], corrections), notes)
        if item_id is not None:
            item = self.item(item_id)
            if item["articleType"] in ROLE_OF:
                has.append(Piece(ROLE_OF[item["articleType"]], [item["articleType"]], [item["baseColour"]],
                                 words=f"{item['baseColour']} {item['articleType']}".lower(), source="item",
                                 gender=item["gender"] if item["gender"] in ("Men", "Women") else ""))
            else:
                notes.append(f"{item['articleType']} is not part of an outfit here; the outfit follows your words.")
        request = plan_outfit(text, self.outfits.vocab, has, planner)
        for column, values in filters.items():  # explicit filters restrict every piece
            request.exclude[column] = request.exclude.get(column, set()) | \
                (set(self.attribute_values[column]) - set(values) - ({"Unisex"} if column == "gender" else set()))
            if column == "gender" and len(values) == 1:
                request.gender = values[0]
        outfit = self.outfits.complete(request, k)
        outfit.notes = notes + outfit.notes + self.warnings
        return outfit

    # ---------------------------------------------------------------- personal taste

    @cached_property
    def profiles(self) -> ProfileStore:
        """The shoppers' feedback store (opened on first use; a corrupt file is set aside)."""
        store = ProfileStore(self.profiles_path)
        if store.warning:
            self.warnings.append(store.warning)
        return store

    def _profile(self, profile: str) -> Profile:
        return self.profiles.load(check_id(profile), lambda ids: self.index.vectors[[self._row_of[i] for i in ids]],
                                  lambda i: self._records[self._row_of[i]] if i in self._row_of else None)

    def _vector_of(self, item_id: int) -> np.ndarray:
        return self.index.vectors[self._row_of[item_id]]

    def feedback(self, profile: str, item_id: int, liked: bool, source: str = "page") -> dict:
        """Record a like (liked=True) or a pass of a catalog item; returns the profile's summary."""
        check_id(profile)
        self.item(item_id)  # an unknown item is an InputError
        if not isinstance(liked, bool):
            raise InputError("liked must be True (a like) or False (a pass).")
        self.profiles.add_feedback(check_id(profile), int(item_id), liked, source)
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
        rows = quiz_round(self.items, _whole(round_, "The quiz round", 0, len(QUIZ_ROUNDS) - 1), gender)
        return [Hit(int(self._records[r]["id"]), 0.0, dict(self._records[r]), ["style quiz"]) for r in rows]

    @cached_property
    def outfits(self) -> Outfitter:
        """The outfit builder over this catalog (made on first use)."""
        return Outfitter(self.items, Vocabulary(self.items, self.guard), self._rank_texts)

    def _piece(self, reading: Reading, notes: list[str]) -> list[Piece]:
        """What the photo shows as a piece the shopper has, or a note when it is no outfit piece."""
        group, colour = reading.top("type")[0], reading.top("colour")[0]
        gender, confidence = reading.top("gender")
        if group not in GROUP_ROLE:
            notes.append(f"Your photo seems to show {group}, which is not part of an outfit here; "
                         "the outfit follows your words.")
            return []
        # Torn between two groups of one role ("sandals or shoes?"): the piece may be either.
        groups = [g for g in reading.candidates("type") if GROUP_ROLE.get(g) == GROUP_ROLE[group]]
        kinds = [t for g in groups for t in group_types(g, self.attribute_values["articleType"])]
        return [Piece(GROUP_ROLE[group], kinds, [colour], words=f"{colour} {' or '.join(groups)}".lower(), source="photo",
                      gender=gender if confidence >= tweak.DESCRIBE_AT and gender in ("Men", "Women") else "")]

    def _rank_texts(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each text, catalog rows by similarity (text against photos and descriptions)."""
        if not texts:
            return []
        vectors = self.encoder.encode_texts(texts)
        queries = np.stack([query_vector(AUTO_TEXT, None, v, 0.5) for v in vectors])
        total = len(self.items)
        scores, ids = self.index.store.search(queries, total if total <= 50_000 else 20 * MIN_POOL)
        return [self._rows(i, s) for i, s in zip(ids, scores)]

    def _rows(self, ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Item-table rows (and their scores) of the ids a store found; padding and ids the table
        does not have are dropped."""
        rows = self._row_index.get_indexer(ids)
        return rows[rows >= 0], scores[rows >= 0]

    def _ranked(self, query: np.ndarray, k: int, constraints: Constraints, notes: list[str],
                bonus: np.ndarray | None = None, extra: int = 0) -> list[Hit]:
        """Up to k (+ extra, for re-ranking) hits that meet the constraints, best first, and a note
        when fewer match. The store applies the constraints inside its search; a reading prior
        (bonus) re-ranks, so it gets the whole catalog (or MIN_POOL+) to re-rank."""
        total = len(self.items)
        pool = k + extra if bonus is None else total if total <= 50_000 else max(MIN_POOL, 20 * k)
        scores, ids = self.index.store.search(query[None], pool, constraints.where())
        rows, scores = self._rows(ids[0], scores[0])
        if bonus is not None:
            scores = scores + bonus[rows]
            order = np.argsort(-scores, kind="stable")
            scores, rows = scores[order], rows[order]
        hits = [Hit(int(self._records[row]["id"]), float(score), dict(self._records[row]))
                for score, row in zip(scores[:k + extra], rows[:k + extra])]
        if constraints and len(hits) < k:
            notes.append(f"Only {len(hits)} item{'s' * (len(hits) != 1)} in the catalog match "
                         f"{'; '.join(constraints.describe())}.")
        return hits

    def _why(self, hit: Hit, image_vec, text_vec, query_text: str, the_plan: Plan | None) -> list[str]:
        stored = self.index.vectors[self._row_of[hit.item_id]]
        dim = self.index.dim
        why = []
        if image_vec is not None:
            why.append(f"looks like your photo (similarity {float(stored[:dim] @ image_vec):.2f})")
        if text_vec is not None and query_text:
            why.append(f"matches “{query_text[:60]}” (image {float(stored[:dim] @ text_vec):.2f}, "
                       f"description {float(stored[dim:] @ text_vec):.2f})")
        if the_plan is not None:
            row = self._row_of[hit.item_id]
            same = [f"{a} {the_plan.reading.top(a)[0]}" for a in the_plan.kept
                    if self._codes[a][row] >= 0 and self.reader.classes[a][self._codes[a][row]] == the_plan.reading.top(a)[0]]
            if same:
                why.append(f"same as your photo: {', '.join(same)}")
        return why


def load_engine(index_dir: str | Path | None = None, model: str | None = None,
                composer_dir: str | Path | None = None, check_catalog: bool = True,
                reader_dir: str | Path | None = None, profiles: str | Path | None = None) -> Engine:
    """Load the index, the encoder it was built with (or `model`), and the gated composer and the
    photo reader if trained for that encoder. `profiles`: the shoppers' feedback store file."""
    index_dir = Path(index_dir or settings.INDEX_DIR)
    index = load_index(index_dir)
    encoder = load_encoder(model or index.model)
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
    return Engine(index, encoder, composer, reader, warnings, profiles)


def _clean_text(text) -> tuple[str, list[str]]:
    """The shopper's text on one line and at most MAX_CHARS long, and a note if it was cut."""
    if text is not None and not isinstance(text, str):
        raise InputError("The text must be a string.")
    text = " ".join((text or "").split())
    if len(text) > MAX_CHARS:
        return text[:MAX_CHARS], [f"Your text was long; only its first {MAX_CHARS} characters were used."]
    return text, []


def _whole(value, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] from what a caller passed (int, float, numeric string)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number between {low} and {high}, not {value!r}.") from None
    if not number.is_integer():
        raise InputError(f"{name} must be a whole number between {low} and {high}.")
    if not low <= number <= high:
        raise InputError(f"{name} must be between {low} and {high}.")
    return int(number)


def _number(value, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number between {low:g} and {high:g}, not {value!r}.") from None
    if not low <= number <= high:  # also rejects NaN
        raise InputError(f"{name} must be between {low:g} and {high:g}.")
    return number
