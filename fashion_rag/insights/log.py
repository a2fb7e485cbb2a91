"""The demand log: each search and outfit request the engine answers, as what was asked, never who
asked. A request pays only for putting a small dict on a queue; a background thread counts the
matching items, works out what the request wants and writes batches to the store.

Logging never breaks or slows a search: any failure (a full queue, a file that cannot be written)
is counted and logged once, never raised. What a shopper does next is tied to their latest request
in memory only, by the profile id their search came with (never written): a like or pass of one of
its results, or another search (a refinement). A request followed by none of these was abandoned.
"""
from __future__ import annotations

import atexit
import json
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pandas as pd

from fashion_rag import settings
from fashion_rag.encoding.reader import Reading
from fashion_rag.insights.store import DemandStore
from fashion_rag.insights.wants import COLUMNS, Supply, outfit_wants, search_want
from fashion_rag.retrieval.hits import Hit
from fashion_rag.retrieval.search import Query

log = logging.getLogger(__name__)

DAY = 86400.0
QUEUE_SIZE = 10_000  # entries waiting to be written; beyond this they are dropped (and counted)
BATCH_SECONDS = 0.5  # after an entry arrives, the writer gathers more for this long, then writes
BATCH_MAX = 1000
LINK_SECONDS = 1800.0  # a like, pass or new search this soon after a request is its follow-up
MAX_LINKS = 10_000  # shoppers whose latest request is remembered (in memory)
EXPIRE_EVERY = 3600.0  # s between deletions of rows past the retention
MAX_TEXT = 1000


class Link(NamedTuple):
    request: int
    items: frozenset[int]
    at: float


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=float)  # numpy scores and confidences too


class DemandLog:
    """Log requests into the SQLite file at `path` ("off" or None: log nothing), about the catalog
    `items`; rows older than `days` are deleted; the words as typed are kept only with `keep_text`.
    `clock` gives the time of each request (a simulation replays a week with its own)."""

    def __init__(self, path: str | Path | None = None, items: pd.DataFrame | None = None,
                 days: float | None = None, keep_text: bool | None = None, clock: Callable[[], float] = time.time):
        self.enabled = path is not None and str(path).lower() != "off"
        self.path, self.items, self.clock = path, items, clock
        self.days = settings.INSIGHTS_DAYS if days is None else days
        self.keep_text = settings.INSIGHTS_TEXT if keep_text is None else keep_text
        self.failures = 0  # requests and follow-ups that could not be logged, since start
        self._warned = False
        self._lock = threading.Lock()
        self._links: OrderedDict[str, Link] = OrderedDict()
        self._queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self._store: DemandStore | None = None
        if self.enabled:
            self.supply = Supply(items)
            self._thread = threading.Thread(target=self._run, name="demand-log", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    @classmethod
    def configured(cls, items: pd.DataFrame) -> "DemandLog":
        """The log the settings ask for (FASHION_RAG_INSIGHTS, _DAYS, _TEXT)."""
        return cls(settings.INSIGHTS, items)

    # ---------------------------------------------------------------- on the request path

    def searched(self, query: Query, hits: list[Hit], profile: str | None, text: str | None) -> None:
        """Log a search (its checked query and its results)."""
        if self.enabled:
            try:
                constraints = query.constraints
                self._put({"kind": "search", "mode": query.mode, "photo": query.image_vec is not None,
                           "asked": {"include": {c: sorted(v) for c, v in constraints.include.items()},
                                     "exclude": {c: sorted(v) for c, v in constraints.exclude.items()}},
                           "changed": dict(query.plan.changed) if query.plan else {},
                           "reading": query.reading.as_dict(top=2) if query.reading is not None else None,
                           "shown": len(hits), "top": hits[0].score if hits else None, "text": text},
                          profile, [h.item_id for h in hits])
            except Exception as exc:  # noqa: BLE001 - logging must never break a search
                self._failed(exc)

    def outfitted(self, request: Any, outfit: Any, text: str | None, reading: Reading | None) -> None:
        """Log an outfit request: the planner's request (fashion_rag.outfits.planner.Request), the
        outfit built for it and the photo's reading, if a photo was read."""
        if self.enabled:
            try:
                slots = [{"role": p.role, "asked": p.words if p.source in ("text", "llm") else "",
                          "types": list(p.types), "colours": list(p.colours), "patterns": list(p.patterns),
                          "shown": len(s.hits), "top": s.hits[0].score if s.hits else None}
                         for p, s in zip(request.targets, outfit.slots)]
                self._put({"kind": "outfit", "mode": outfit.planner, "photo": reading is not None,
                           "asked": {"gender": request.gender, "usage": list(request.usage),
                                     "season": list(request.season),
                                     "exclude": {c: sorted(v) for c, v in request.exclude.items()}},
                           "changed": {}, "reading": reading.as_dict(top=2) if reading is not None else None,
                           "slots": slots, "shown": sum(s["shown"] for s in slots),
                           "top": max((s["top"] for s in slots if s["top"] is not None), default=None),
                           "text": text}, None, [])
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)

    def rated(self, profile: str, item_id: int, liked: bool, source: str) -> None:
        """Log a like or pass from the results (not the quiz's picks), tied to the shopper's
        latest request when the item was among its results."""
        if self.enabled and source == "page":
            try:
                now = self.clock()
                with self._lock:
                    link = self._links.get(profile)
                request = link.request if link and item_id in link.items and now - link.at < LINK_SECONDS else None
                self._enqueue(("followup", (request, now, "like" if liked else "pass", int(item_id))))
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)

    def _put(self, entry: dict, profile: str | None, shown: list[int]) -> None:
        entry |= {"id": secrets.randbits(62), "at": self.clock()}
        if profile is not None:
            with self._lock:
                last = self._links.pop(profile, None)
                self._links[profile] = Link(entry["id"], frozenset(shown), entry["at"])
                if len(self._links) > MAX_LINKS:
                    self._links.popitem(last=False)
            if last is not None and entry["at"] - last.at < LINK_SECONDS:
                self._enqueue(("followup", (last.request, entry["at"], "refine", None)))
        self._enqueue(("request", entry))

    def _enqueue(self, task: tuple) -> None:
        try:
            self._queue.put_nowait(task)
        except queue.Full as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException, count: int = 1) -> None:
        with self._lock:
            self.failures += count
            warn, self._warned = not self._warned, True
        if warn:
            log.warning("The demand log %s could not record a request (%s: %s); searches go on, and "
                        "further failures are counted, not logged.", self.path, type(exc).__name__, exc)

    # ---------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        expired = 0.0
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + BATCH_SECONDS
            while batch[-1] is not None and len(batch) < BATCH_MAX:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            tasks = [t for t in batch if t is not None]
            try:
                self._store = self._store or DemandStore(self.path)
                if time.monotonic() - expired > EXPIRE_EVERY or not expired:
                    self._store.forget_before(self.clock() - self.days * DAY)
                    expired = time.monotonic()
                self._store.write(self._rows(tasks))
            except Exception as exc:  # noqa: BLE001 - counted, never raised
                self._failed(exc, len(tasks))
            for _ in batch:
                self._queue.task_done()
            if batch[-1] is None:
                return

    def _rows(self, tasks: list[tuple]) -> dict[str, list[tuple]]:
        """The store's rows for a batch: requests with their match counts and wants, follow-ups."""
        rows: dict[str, list[tuple]] = {"requests": [], "wants": [], "followups": []}
        for kind, payload in tasks:
            if kind == "followup":
                rows["followups"].append(payload)
                continue
            e = payload
            if e["kind"] == "search":
                matched = self.supply.count(e["asked"]["include"], e["asked"]["exclude"])
                wants = [search_want(e, self.supply)]
            else:
                gender = [e["asked"]["gender"]] if e["asked"]["gender"] else []
                for slot in e["slots"]:
                    slot["matched"] = self.supply.count({"gender": gender, "articleType": slot["types"],
                                                         "baseColour": slot["colours"], "pattern": slot["patterns"]},
                                                        e["asked"]["exclude"])
                matched, wants = None, outfit_wants(e)
            text = e["text"][:MAX_TEXT] if self.keep_text and isinstance(e["text"], str) else None
            rows["requests"].append((e["id"], e["at"], e["kind"], e["mode"], int(e["photo"]), _json(e["asked"]),
                                     _json(e["changed"]), _json(e["reading"]) if e["reading"] else None,
                                     _json(e["slots"]) if "slots" in e else None, matched, e["shown"],
                                     None if e["top"] is None else float(e["top"]), text))
            rows["wants"] += [(e["id"], e["at"], *("|".join(w.get(c, ())) for c in COLUMNS)) for w in wants]
        return rows

    # ---------------------------------------------------------------- for readers

    def flush(self) -> None:
        """Wait until everything logged so far is written (or counted as failed)."""
        if self.enabled and self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Write what is waiting and stop the writer (at exit, too)."""
        if self.enabled and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

    @property
    def store(self) -> DemandStore:
        """The store, for reading (opened here if the writer has not yet)."""
        return self._store or DemandStore(self.path)
