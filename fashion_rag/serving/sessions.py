"""What a long-running server keeps: sessions that expire (Gradio keeps each browser session, its
state plus its own copy of the page's configuration, about 0.6 MB in all, until the process ends
otherwise), a heap that gives memory back, and no event records that nobody reads."""
from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable

from fashion_rag import settings

log = logging.getLogger(__name__)


def expire_sessions(demo, ttl: float) -> int:
    """Drop the sessions of `demo` idle for more than `ttl` seconds (their state and page copy)
    and give the freed memory back to the system; returns how many were dropped."""
    holder = getattr(demo, "state_holder", None)
    if holder is None:  # not launched yet
        return 0
    cutoff = time.time() - ttl
    with holder.lock:
        idle = [sid for sid, used in holder.time_last_used.items() if used.timestamp() < cutoff]
        for sid in idle:
            holder.session_data.pop(sid, None)
            holder.time_last_used.pop(sid, None)
    if idle:
        _trim_heap()
    return len(idle)


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows): the defaults stay
        return None


def _trim_heap() -> None:
    """Return freed heap pages to the system (glibc keeps them otherwise); a no-op elsewhere."""
    if (libc := _libc()) is not None:
        libc.malloc_trim(0)


def tune_heap() -> None:
    """glibc settings for a long-running server whose sessions come and go: two malloc arenas
    instead of one per thread, and a fixed 128 KB threshold for memory served by mmap (glibc
    otherwise raises it after each large free, so freed image buffers stay in the heap)."""
    if (libc := _libc()) is not None:
        for option, value in ((-8, 2), (-3, 128 * 1024), (-1, 128 * 1024)):  # ARENA_MAX, MMAP_ and TRIM_THRESHOLD
            libc.mallopt(option, value)


def skip_event_analytics() -> None:
    """Gradio's queue keeps the last 10,000 events and, after every event, summarises them all with
    pandas for its /monitoring page: 2.5 ms of CPU per event at first, 7 ms once the 10,000 are
    reached, and megabytes held. Without that page nothing reads them, so it keeps one and never
    summarises. Gradio reads these settings when a queue is made: call before `demo.queue`."""
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2 ** 62))


def every(seconds: float, job: Callable[[], int], what: str, demo) -> threading.Thread:
    """A daemon thread that runs `job` every `seconds` until the app is closed, logging how many
    `what` it reports."""

    def run() -> None:
        while getattr(demo, "is_running", False):
            time.sleep(seconds)
            done = job()
            if done:
                log.info("%s: %d.", what, done)

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    return thread


def expire_sessions_forever(demo, ttl: float | None = None) -> threading.Thread:
    """A daemon thread that runs `expire_sessions` every ttl / 4 seconds (at most every minute),
    until the app is closed."""
    ttl = settings.SESSION_TTL if ttl is None else ttl
    return every(min(60.0, max(1.0, ttl / 4)), lambda: expire_sessions(demo, ttl), "Idle sessions dropped", demo)
