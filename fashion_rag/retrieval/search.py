"""The query side: photo and/or text -> fused query vector -> vector store search, filtered by the
attribute guard -> hits, each with why it matched.

With a photo of a person, the search can be for one of the pieces they wear
(fashion_rag.encoding.pieces): the one the words name or the one asked for; else it is for the
photo as a whole, as before. The photo reader says what that shows, and the `guided` mode (what
`auto` picks for a photo, with or without words) keeps that through the tweak
(fashion_rag.retrieval.tweak). A search is two calls, `query` (check, read, encode, fuse) and
`find` (search the store, explain), so that the engine can load a shopper's profile in between
and ask for a wider pool to re-rank."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fashion_rag.data.catalog import attribute_values, type_group
from fashion_rag.data.images import ImageLike, load_image
from fashion_rag.data.wardrobe import roles_named
from fashion_rag.encoding.encoder import Encoder
from fashion_rag.encoding.fusion import MODES, NEEDS, GatedComposer, query_vector
from fashion_rag.encoding.pieces import Piece, PieceFinder, pointed
from fashion_rag.encoding.pose import PoseModel
from fashion_rag.encoding.reader import ATTRIBUTES as READ_ATTRIBUTES
from fashion_rag.encoding.reader import PhotoReader, Reading, pattern_of
from fashion_rag.errors import InputError
from fashion_rag.retrieval import tweak
from fashion_rag.retrieval.guard import Constraints, Guard
from fashion_rag.retrieval.hits import Hit
from fashion_rag.retrieval.index import Index
from fashion_rag.retrieval.inputs import box as checked_box
from fashion_rag.retrieval.inputs import clean_text, number, whole
from fashion_rag.retrieval.tweak import Plan, plan, prior

# What auto picks, by scripts/evaluate.py: with a photo, the reading-guided mode (it needs a trained
# photo reader; else gated, which needs a composer); for text alone, text against photos and descriptions.
AUTO_BOTH = ("guided", "gated", "concat")
AUTO_IMAGE = ("guided", "image")
AUTO_TEXT = "concat"
MIN_POOL = 2000  # candidates a reading prior re-ranks in catalogs of over 50k items (else all)
MAX_K = 100


@dataclass
class Query:
    """A checked, read and encoded search: what `find` needs, and what the results report."""
    k: int
    mode: str
    constraints: Constraints
    notes: list[str]
    vector: np.ndarray  # the fused query
    image_vec: np.ndarray | None
    text_vec: np.ndarray | None
    text: str  # the words the text vector encodes
    reading: Reading | None = None
    plan: Plan | None = None
    bonus: np.ndarray | None = None  # the reading prior per catalog row (guided mode)
    # What the photo shows: the pieces worn, or the whole photo. None when the search did not need
    # them (no piece asked for or named): the page asks `pieces` after showing the results.
    pieces: list[Piece] | None = None
    piece: int | None = None  # the one searched for

    def applied(self) -> list[str]:
        """The constraints applied and what the tweak kept and changed, for a status line."""
        return self.constraints.describe() + (self.plan.describe() if self.plan else [])


class Searcher:
    """Searches one index with the encoder it was built with, the gated composer and the photo
    reader if trained for that encoder, and a guard over the catalog's own attribute values."""

    def __init__(self, index: Index, encoder: Encoder, composer: GatedComposer | None = None,
                 reader: PhotoReader | None = None, pose: PoseModel | None = None):
        self.index, self.encoder, self.composer, self.reader = index, encoder, composer, reader
        self.finder = PieceFinder(encoder, reader, pose) if reader is not None else None
        self.items = index.items
        self.records = self.items.to_dict("records")
        self.row_of = {int(i): row for row, i in enumerate(self.items["id"])}
        self._row_index = pd.Index(self.items["id"].astype(np.int64))
        self.attribute_values = attribute_values(self.items)
        self.guard = Guard(self.attribute_values)
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

    def item(self, item_id: int) -> dict[str, Any]:
        if int(item_id) not in self.row_of:
            raise InputError(f"No item {item_id} in this catalog.")
        return dict(self.records[self.row_of[int(item_id)]])

    def vectors(self, ids) -> np.ndarray:
        """The stored vectors of these catalog items, in order."""
        return self.index.vectors[[self.row_of[i] for i in ids]]

    # ---------------------------------------------------------------- the photo

    def describe(self, image: ImageLike, corrections: dict[str, str] | None = None) -> Reading:
        """What the photo shows, corrections applied; an InputError when no reader was trained."""
        if self.reader is None:
            raise InputError("Photo reading is not available: no photo reader was trained for this "
                             "encoder (run `python -m fashion_rag prepare`).")
        return self.read(load_image(image), corrections)

    def read(self, picture, corrections: dict[str, str] | None = None,
             features: np.ndarray | None = None) -> Reading:
        """The reader's reading of a loaded photo (`features`: its image tower features from
        Encoder.look, if already computed), with the corrections applied."""
        if features is None:
            features = self.encoder.look_at_photo(picture)[1]
        return self.corrected(self.reader.read(features, picture), corrections)

    def corrected(self, reading: Reading, corrections: dict[str, str] | None) -> Reading:
        """The reading with the shopper's corrections (checked) put first, at confidence 1."""
        for attribute, value in self.check_corrections(corrections).items():
            reading.values[attribute] = [(value, 1.0)] + [(v, 0.0) for v, _ in reading.values[attribute] if v != value]
            reading.corrected += (attribute,)
        return reading

    def pieces(self, image: ImageLike) -> list[Piece]:
        """The pieces worn in the photo, most prominent first; a photo with nobody in it is one piece."""
        if self.finder is None:
            raise InputError("Finding pieces needs the photo reader, which was not trained for this "
                             "encoder (run `python -m fashion_rag prepare`).")
        return self.finder.look(load_image(image))[1]

    def _chosen(self, picture, asked: Constraints, piece, box) -> tuple[list[Piece] | None, int, Piece]:
        """The pieces in the photo, the one to search for, and what to search with: the hand-drawn
        box, the piece asked for by number or named by the words (its crop), else the photo as a
        whole, as before pieces, which reads as its most prominent piece (the first). The pieces
        are only looked for when the search needs them: finding a person costs as much again."""
        if box is not None:
            x0, y0, x1, y1 = checked_box(box, picture.size)
            drawn = self.finder.whole(picture.crop((x0, y0, x1, y1)))
            drawn.box, drawn.region = (x0, y0, x1, y1), "drawn"
            return [drawn], 0, drawn
        named = asked.include.get("articleType", set())
        as_a_whole, pieces = self.finder.look(picture, pieces=piece is not None or bool(roles_named(named)))
        if pieces is None:  # nothing asks for a piece: the photo as a whole, pieces looked for later
            return None, 0, as_a_whole
        chosen = whole(piece, "The piece", 0, len(pieces) - 1) if piece is not None else pointed(pieces, named)
        return (pieces, 0, as_a_whole) if chosen is None else (pieces, chosen, pieces[chosen])

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

    # ---------------------------------------------------------------- a search

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

    def query(self, image: ImageLike | None = None, text: str | None = None, k: int = 10,
              mode: str = "auto", weight: float = 0.5, filters: dict[str, list[str]] | None = None,
              guard: bool = True, corrections: dict[str, str] | None = None,
              piece: int | None = None, box=None) -> Query:
        """The search checked (anything unusable is an InputError), the photo read, and photo and
        words encoded and fused as `mode` asks; with `guard` on, the words' constraints filter.
        `piece` (its number in `pieces`) or `box` (x0, y0, x1, y1 pixels) picks what in the photo to
        search for; by default the piece the words name, else the photo as a whole."""
        k, weight = whole(k, "k", 1, MAX_K), number(weight, "The text weight", 0.0, 1.0)
        text, notes = clean_text(text)
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
        image_vec = reading = the_plan = bonus = pieces = chosen = None
        if picture is not None and self.finder is not None:
            pieces, chosen, searched = self._chosen(picture, asked, piece, box)
            image_vec, reading = searched.vector, self.corrected(searched.reading, corrections)
        elif picture is not None:
            if piece is not None or box is not None:
                raise InputError("Choosing a piece of the photo needs the photo reader (run `python -m fashion_rag prepare`).")
            image_vec = self.encoder.look_at_photo(picture)[0]
        if mode == "guided":
            the_plan = plan(reading, asked, query_text)
            query_text, weight = the_plan.text, tweak.WEIGHT
            bonus = prior(the_plan, self._codes, self.reader.classes)
        text_vec = self.encoder.encode_texts([query_text or "a fashion product"])[0] \
            if query_text or (picture is None and mode != "guided") else None
        vector = query_vector(mode, image_vec, text_vec, weight, self.composer)
        return Query(k, mode, constraints, notes, vector, image_vec, text_vec, query_text, reading, the_plan,
                     bonus, pieces, chosen)

    def find(self, query: Query, extra: int = 0) -> list[Hit]:
        """Up to k (+ extra, for re-ranking) hits that meet the query's constraints, best first,
        each with why it matched; a note on the query when fewer match."""
        hits = self._ranked(query.vector, query.k, query.constraints, query.notes, query.bonus, extra)
        for hit in hits:
            hit.why = self._why(hit, query.image_vec, query.text_vec, query.text, query.plan) + \
                query.constraints.reasons(hit.item)
        return hits

    def rank_texts(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
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
        hits = [Hit(int(self.records[row]["id"]), float(score), dict(self.records[row]))
                for score, row in zip(scores[:k + extra], rows[:k + extra])]
        if constraints and len(hits) < k:
            notes.append(f"Only {len(hits)} item{'s' * (len(hits) != 1)} in the catalog match "
                         f"{'; '.join(constraints.describe())}.")
        return hits

    def _why(self, hit: Hit, image_vec, text_vec, query_text: str, the_plan: Plan | None) -> list[str]:
        stored = self.index.vectors[self.row_of[hit.item_id]]
        dim = self.index.dim
        why = []
        if image_vec is not None:
            why.append(f"looks like your photo (similarity {float(stored[:dim] @ image_vec):.2f})")
        if text_vec is not None and query_text:
            why.append(f"matches “{query_text[:60]}” (image {float(stored[:dim] @ text_vec):.2f}, "
                       f"description {float(stored[dim:] @ text_vec):.2f})")
        if the_plan is not None:
            row = self.row_of[hit.item_id]
            same = [f"{a} {the_plan.reading.top(a)[0]}" for a in the_plan.kept
                    if self._codes[a][row] >= 0 and self.reader.classes[a][self._codes[a][row]] == the_plan.reading.top(a)[0]]
            if same:
                why.append(f"same as your photo: {', '.join(same)}")
        return why
