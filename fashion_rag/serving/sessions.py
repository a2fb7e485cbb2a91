"""What a public server needs beyond the page: sessions that expire, throttled logins, rate limits.

A share link or a Space is open to anyone. Gradio keeps each browser session (its state plus its own
copy of the page's configuration, about 0.6 MB in all) until the process ends, checks a password as fast
as it can be guessed, and lets one visitor call the paid model in a loop. These guards bound all three.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import secrets
import threading
import time
from collections import deque

from fastapi import HTTPException

from fashion_rag import settings

log = logging.getLogger(__name__)


class RateLimit:
    """At most `per_key` events per key and `everyone` events in all per sliding `window` seconds."""

    def __init__(self, per_key: int, everyone: int, window: float = 60.0):
        self.per_key, self.everyone, self.window = per_key, everyone, window
        self._events: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0 if an event for `key` may happen now (and count it), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            mine = self._events.setdefault(key, deque())
            for events in (mine, self._all):
                while events and events[0] <= now - self.window:
                    events.popleft()
            full = [events[0] + self.window - now for events, cap in ((mine, self.per_key), (self._all, self.everyone))
                    if len(events) >= cap]
            if full:
                return max(full)
            mine.append(now)
            self._all.append(now)
            if len(self._events) > 10_000:  # forget idle keys, so the table cannot grow without end
                self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window}
            return 0.0


class LoginThrottle:
    """One user and password for Gradio's `auth`, pass `check` (Gradio awaits only coroutine
    functions; an un-awaited coroutine would count as a yes). After `failures` wrong attempts
    within `lockout` seconds, every attempt (right or wrong) is refused with HTTP 429 until the
    lock-out ends. Gradio does not tell `auth` who is asking, so the count is for the whole app:
    a guesser can lock the owner out for a minute, but can try only `failures` passwords a minute."""

    def __init__(self, user: str, password: str, failures: int | None = None, lockout: float | None = None):
        self.user, self.password = user, password
        self.failures = failures or settings.LOGIN_FAILURES
        self.lockout = lockout or settings.LOGIN_LOCKOUT
        self._wrong: deque[float] = deque()

    async def check(self, user: str, password: str) -> bool:
        now = time.monotonic()
        while self._wrong and self._wrong[0] <= now - self.lockout:
            self._wrong.popleft()
        if len(self._wrong) >= self.failures:
            wait = self._wrong[0] + self.lockout - now
            raise HTTPException(status_code=429, detail=f"Too many wrong passwords: try again in {wait:.0f} s.")
        ok = secrets.compare_digest(user.encode(), self.user.encode()) & \
            secrets.compare_digest(password.encode(), self.password.encode())
        if not ok:
            self._wrong.append(now)  # counted before the pause, so parallel guesses count too
            log.warning("Wrong login (%d in the last %.0f s).", len(self._wrong), self.lockout)
            await asyncio.sleep(0.5)  # slows a guesser without holding up the server
        return bool(ok)


class OneLineErrors(logging.Filter):
    """A request that Gradio's routes fail on (an unknown endpoint number, a malformed body) is
    the client's mistake: one line in the server log, not a stack trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (KeyError, IndexError, ValueError, TypeError)):
            record.msg, record.args = f"Rejected a malformed request ({type(exc).__name__}: {str(exc)[:200]})", ()
            record.exc_info, record.exc_text = None, None
        return True


def quiet_bad_requests() -> None:
    """Install OneLineErrors on the web server's error log (once)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, OneLineErrors) for f in logger.filters):
        logger.addFilter(OneLineErrors())


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


def expire_sessions_forever(demo, ttl: float | None = None) -> threading.Thread:
    """A daemon thread that runs `expire_sessions` every ttl / 4 seconds (at most every minute),
    until the app is closed."""
    ttl = settings.SESSION_TTL if ttl is None else ttl

    def run() -> None:
        while getattr(demo, "is_running", False):
            time.sleep(min(60.0, max(1.0, ttl / 4)))
            dropped = expire_sessions(demo, ttl)
            if dropped:
                log.info("Dropped %d idle session(s).", dropped)

    thread = threading.Thread(target=run, name="session-expiry", daemon=True)
    thread.start()
    return thread
