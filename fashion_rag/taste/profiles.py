"""Shopper profiles: likes, passes and what was shown, kept in SQLite; the taste learned from them.

The store keeps events only (append-only tables), so concurrent sessions and app processes
never overwrite each other's feedback: SQLite in WAL mode serialises the inserts. What a profile
*is* is derived from its events when asked (they are few per shopper):
- a preference vector: an exponential moving average of liked item vectors minus passed ones,
  v <- (1 - EMA) v + EMA * (+/-) item, in event order;
- attribute affinities: per colour (and colour family), type, usage, season and pattern, how much
  likelier the shopper is to like an item with that value than any item they rated (a smoothed
  like rate minus their overall one, each event weighted by AFFINITY_DECAY ** (events since)).
  A value every rated item shares (all shirts, when only shirts were shown) learns nothing, and
  a value never rated is 0: passes say what to avoid without condemning what the items share;
- passes (when, how often) and what recent searches showed.
No personal data is stored beyond the profile id (random, made in the browser session) and the
feedback itself. A corrupt file is moved aside (and named in the warning) and a fresh store begins.
"""
from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashion_rag.data.catalog import PATTERN_NAMES, pattern_tags
from fashion_rag.data.wardrobe import family
from fashion_rag.errors import InputError

log = logging.getLogger(__name__)

EMA = 0.3  # weight of each new like / pass in the preference vector
AFFINITY_DECAY = 0.95  # per later event
PRIOR_EVENTS = 2.0  # pseudo-events at the shopper's overall like rate, smoothing each value's rate
AFFINITY_COLUMNS = ("baseColour", "family", "articleType", "usage", "season", "pattern")
ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (profile TEXT NOT NULL, item_id INTEGER NOT NULL,
                                     liked INTEGER NOT NULL, at REAL NOT NULL, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_profile ON feedback (profile);
CREATE TABLE IF NOT EXISTS shown (profile TEXT NOT NULL, search INTEGER NOT NULL, item_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS shown_profile ON shown (profile, search);
"""


def new_profile_id() -> str:
    return uuid.uuid4().hex


def check_id(profile: str) -> str:
    if not isinstance(profile, str) or not ID.match(profile):
        raise InputError("A profile id is 8 to 64 letters, digits, '-' or '_'.")
    return profile


def traits(item: dict) -> dict[str, list[str]]:
    """The values of an item that a taste is learned over, per AFFINITY_COLUMNS."""
    colour = str(item.get("baseColour", "") or "")
    return {"baseColour": [colour], "family": [family(colour)] if colour else [],
            "articleType": [item.get("articleType", "")], "usage": [item.get("usage", "")],
            "season": [item.get("season", "")],
            "pattern": [PATTERN_NAMES[tag] for tag in pattern_tags(item.get("productDisplayName", ""))]}


@dataclass
class Profile:
    id: str
    vector: np.ndarray | None  # EMA of +liked / -passed item vectors; None without feedback
    likes: int = 0
    passes: int = 0
    affinity: dict[str, dict[str, float]] = field(default_factory=dict)  # column -> value -> lift
    passed: dict[int, tuple[int, float]] = field(default_factory=dict)  # item -> (times, last at)
    liked: set[int] = field(default_factory=set)
    recent: list[set[int]] = field(default_factory=list)  # items shown by the latest searches, newest first
    searches: int = 0

    @property
    def feedback(self) -> int:
        return self.likes + self.passes

    def summary(self, top: int = 3) -> dict:
        """What was learned, for people: the strongest liked values per attribute, and counts."""
        names = {"baseColour": "colours", "articleType": "types", "usage": "usages", "season": "seasons",
                 "pattern": "patterns"}
        return {"likes": self.likes, "passes": self.passes, "searches": self.searches} | {
            name: [v for v, w in sorted(self.affinity.get(c, {}).items(), key=lambda p: -p[1]) if w > 0][:top]
            for c, name in names.items()}


class ProfileStore:
    """One SQLite file shared by every session and process of the app."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.warning = ""
        self._local = threading.local()
        self._open()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as connection:
                if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("quick_check failed")
                connection.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                extra = Path(f"{self.path}{suffix}")
                if extra.exists():
                    extra.replace(Path(f"{aside}{suffix}"))
            self.warning = (f"The profile store {self.path} could not be read ({exc}); it was moved to "
                            f"{aside.name} and a fresh store was started.")
            log.warning(self.warning)
            with self._connect() as connection:
                connection.executescript(SCHEMA)

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections are not shared between threads)."""
        if getattr(self._local, "connection", None) is None:
            self._local.connection = self._connect()
        return self._local.connection

    def add_feedback(self, profile: str, item_id: int, liked: bool, source: str = "page") -> None:
        self._db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?, ?)",
                         (check_id(profile), int(item_id), int(bool(liked)), time.time(), source))

    def add_shown(self, profile: str, item_ids: list[int]) -> None:
        """Record what one search showed (for pushing repeats down next time)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            search = db.execute("SELECT COALESCE(MAX(search), 0) + 1 FROM shown WHERE profile = ?",
                                (check_id(profile),)).fetchone()[0]
            db.executemany("INSERT INTO shown VALUES (?, ?, ?)", [(profile, search, int(i)) for i in item_ids])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def events(self, profile: str) -> list[tuple[int, bool, float]]:
        rows = self._db.execute("SELECT item_id, liked, at FROM feedback WHERE profile = ? ORDER BY rowid",
                                (check_id(profile),)).fetchall()
        return [(int(i), bool(liked), float(at)) for i, liked, at in rows]

    def forget(self, profile: str) -> int:
        """Delete everything stored for a profile; returns how many events were removed."""
        db = self._db
        removed = db.execute("DELETE FROM feedback WHERE profile = ?", (check_id(profile),)).rowcount
        db.execute("DELETE FROM shown WHERE profile = ?", (profile,))
        return removed

    def histories(self) -> dict[str, dict[int, int]]:
        """Every profile's latest verdict per item (+1 like, -1 pass): the collaborative signal."""
        out: dict[str, dict[int, int]] = defaultdict(dict)
        for profile, item, liked in self._db.execute("SELECT profile, item_id, liked FROM feedback ORDER BY rowid"):
            out[profile][int(item)] = 1 if liked else -1
        return dict(out)

    def load(self, profile: str, vectors_of, items_of, recent_searches: int = 3) -> Profile:
        """The profile as learned from its events. `vectors_of(ids)` gives item vectors (rows for
        unknown ids are skipped), `items_of(id)` an item's catalog columns or None."""
        events = self.events(profile)
        known = [(i, liked, at) for i, liked, at in events if items_of(i) is not None]
        result = Profile(profile, None)
        if known:
            vectors = vectors_of([i for i, _, _ in known])
            vector = np.zeros(vectors.shape[1], np.float32)
            for (item, liked, at), v in zip(known, vectors):
                vector = (1 - EMA) * vector + EMA * (v if liked else -v)
            result.vector = vector
        liked_by: dict[str, Counter] = {c: Counter() for c in AFFINITY_COLUMNS}
        rated_by: dict[str, Counter] = {c: Counter() for c in AFFINITY_COLUMNS}
        liked_all = rated_all = 0.0
        for age, (item, liked, at) in enumerate(reversed(known)):
            weight = AFFINITY_DECAY ** age
            liked_all, rated_all = liked_all + weight * liked, rated_all + weight
            for column, values in traits(items_of(item)).items():
                for value in values:
                    liked_by[column][value] += weight * liked
                    rated_by[column][value] += weight
            if liked:
                result.likes += 1
                result.liked.add(item)
            else:
                result.passes += 1
                times, _ = result.passed.get(item, (0, 0.0))
                result.passed[item] = (times + 1, at)
        base = (liked_all + 1) / (rated_all + 2)  # the overall like rate, smoothed towards 1/2
        result.affinity = {c: {v: (liked_by[c][v] + PRIOR_EVENTS * base) / (n + PRIOR_EVENTS) - base
                               for v, n in rated.items() if v} for c, rated in rated_by.items()}
        rows = self._db.execute("SELECT search, item_id FROM shown WHERE profile = ? AND search > "
                                "(SELECT COALESCE(MAX(search), 0) FROM shown WHERE profile = ?) - ?",
                                (profile, profile, recent_searches)).fetchall()
        by_search: dict[int, set[int]] = defaultdict(set)
        for search, item in rows:
            by_search[search].add(int(item))
        result.recent = [by_search[s] for s in sorted(by_search, reverse=True)]
        result.searches = max(by_search, default=0)
        return result
