"""The demand log's SQLite file: append-only tables in WAL mode, so that the app's writer and a
report's reader never wait for each other; rows older than the retention are deleted.

    requests   one row per search or outfit request: when, kind, mode, whether a photo was given
               (never the photo), what was asked as JSON (the guard's constraints, the tweak's
               changes, the photo reading's top values with confidences, the outfit's slots),
               the items matching the constraints, results shown, the top score, and the words
               as typed only where FASHION_RAG_INSIGHTS_TEXT allows
    wants      what each request wants, one column per catalog attribute ("A|B": either will do)
    followups  what the shopper did next: "like" or "pass" (an item), "refine" (searched again)

No profile id, address or photo is written.
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pandas as pd

from fashion_rag.encoding.reader import ATTRIBUTES as READ
from fashion_rag.insights.wants import COLUMNS

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL,
    mode TEXT NOT NULL, photo INTEGER NOT NULL, asked TEXT NOT NULL, changed TEXT NOT NULL, reading TEXT,
    slots TEXT, matched INTEGER, shown INTEGER NOT NULL, top_score REAL, text TEXT);
CREATE INDEX IF NOT EXISTS requests_at ON requests (at);
CREATE TABLE IF NOT EXISTS wants (request INTEGER NOT NULL, at REAL NOT NULL,
    {", ".join(f"{c} TEXT NOT NULL" for c in COLUMNS)});
CREATE INDEX IF NOT EXISTS wants_at ON wants (at);
CREATE TABLE IF NOT EXISTS followups (request INTEGER, at REAL NOT NULL, what TEXT NOT NULL, item_id INTEGER);
CREATE INDEX IF NOT EXISTS followups_at ON followups (at);
"""
REQUEST_COLUMNS = ("id", "at", "kind", "mode", "photo", "asked", "changed", "reading", "slots", "matched",
                   "shown", "top_score", "text")
TABLES = {"requests": len(REQUEST_COLUMNS), "wants": 2 + len(COLUMNS), "followups": 4}
LIKED = "(SELECT request FROM followups WHERE what = 'like' AND request IS NOT NULL)"
WINDOW = "at >= ? AND at < ?"


class DemandStore:
    """One SQLite file; each thread has its own connection (sqlite3 connections stay in theirs)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db.executescript(SCHEMA)

    @property
    def _db(self) -> sqlite3.Connection:
        if getattr(self._local, "db", None) is None:
            db = sqlite3.connect(self.path, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return self._local.db

    def write(self, rows: dict[str, list[tuple]]) -> None:
        """Append rows (table name -> row tuples) in one transaction."""
        with self._db as db:
            for table, values in rows.items():
                if values:
                    db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * TABLES[table])})", values)

    def forget_before(self, at: float) -> int:
        """Delete every row older than `at` (seconds since the epoch); returns the requests deleted."""
        with self._db as db:
            removed = db.execute("DELETE FROM requests WHERE at < ?", (at,)).rowcount
            for table in ("wants", "followups"):
                db.execute(f"DELETE FROM {table} WHERE at < ?", (at,))
        return removed

    # Reports read aggregates, computed inside SQLite: a window of 100,000 requests is a few
    # thousand rows to hand over instead of hundreds of thousands.

    def asks(self, since: float, until: float) -> pd.DataFrame:
        """Per combination of wanted values in [since, until): how many wants (n), and how many of
        those (unliked) belong to a request that no like followed."""
        columns = ", ".join(COLUMNS)
        return pd.read_sql_query(f"SELECT {columns}, COUNT(*) AS n, SUM(request NOT IN {LIKED}) AS unliked "
                                 f"FROM wants WHERE {WINDOW} GROUP BY {columns}", self._db, params=(since, until))

    def totals(self, since: float, until: float) -> dict[str, int]:
        """Requests in [since, until) by kind, with a photo, without a like; their follow-ups by kind."""
        db, window = self._db, (since, until)
        requests, searches, outfits, photos, unliked = db.execute(
            f"SELECT COUNT(*), SUM(kind = 'search'), SUM(kind = 'outfit'), SUM(photo), SUM(id NOT IN {LIKED}) "
            f"FROM requests WHERE {WINDOW}", window).fetchone()
        done = dict(db.execute(f"SELECT what, COUNT(*) FROM followups WHERE request IN "
                               f"(SELECT id FROM requests WHERE {WINDOW}) GROUP BY what", window).fetchall())
        return {"requests": requests, "searches": searches or 0, "outfits": outfits or 0, "photos": photos or 0,
                "unliked": unliked or 0, "likes": done.get("like", 0), "passes": done.get("pass", 0),
                "refines": done.get("refine", 0)}

    def count(self, since: float, until: float) -> int:
        """Requests in [since, until)."""
        return self._db.execute(f"SELECT COUNT(*) FROM requests WHERE {WINDOW}", (since, until)).fetchone()[0]

    def readings(self, since: float, until: float, sure: float, unsure: str) -> dict[str, pd.Series]:
        """Per read attribute, how many photos in [since, until) showed each top value (`unsure` where
        its confidence is below `sure`)."""
        rows = self._db.execute(
            "SELECT e.key, CASE WHEN json_extract(e.value, '$[0].confidence') >= ? "
            "THEN json_extract(e.value, '$[0].value') ELSE ? END AS top, COUNT(*) "
            f"FROM requests r, json_each(r.reading) e WHERE r.photo AND r.reading IS NOT NULL AND r.{WINDOW} "
            f"AND e.key IN ({', '.join('?' * len(READ))}) GROUP BY e.key, top",
            (sure, unsure, since, until, *READ)).fetchall()
        return {a: pd.Series({v: n for key, v, n in rows if key == a}, dtype=int) for a in READ}

    def rated(self, since: float, until: float) -> pd.DataFrame:
        """Per item liked or passed in [since, until): its likes and passes."""
        return pd.read_sql_query("SELECT item_id, SUM(what = 'like') AS likes, SUM(what = 'pass') AS passes "
                                 f"FROM followups WHERE item_id IS NOT NULL AND {WINDOW} GROUP BY item_id",
                                 self._db, params=(since, until))
