"""How much one visitor may ask for: rate limits keyed by the client's address, that address (as
the web server sees it, through trusted proxies only), and a bound on every request's body."""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any

from starlette.responses import PlainTextResponse

from fashion_rag import settings


class RateLimit:
    """At most `per_key` events per key and `everyone` events in all per sliding `window` seconds."""

    def __init__(self, per_key: int, everyone: int, window: float = 60.0):
        self.per_key, self.everyone, self.window = per_key, everyone, window
        self._events: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _current(self, key: str, now: float) -> deque[float]:
        """The key's events within the window (older ones, everyone's too, dropped). Holds the lock."""
        mine = self._events.setdefault(key, deque())
        for events in (mine, self._all):
            while events and events[0] <= now - self.window:
                events.popleft()
        if len(self._events) > 10_000:  # forget idle keys, so the table cannot grow without end
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window}
            self._events[key] = mine
        return mine

    def wait(self, key: str, count: int = 1) -> float:
        """0 if `count` events for `key` may happen now (they are counted), else the seconds until
        the first may."""
        now = time.monotonic()
        with self._lock:
            mine = self._current(key, now)
            full = [events[0] + self.window - now for events, cap in ((mine, self.per_key), (self._all, self.everyone))
                    if len(events) + count > cap and events]
            if full:
                return max(full)
            self._add(mine, count, now)
            return 0.0

    def add(self, key: str, count: int = 1) -> None:
        """Count `count` events for `key` whatever the limit (they happened already)."""
        now = time.monotonic()
        with self._lock:
            self._add(self._current(key, now), count, now)

    def _add(self, mine: deque[float], count: int, now: float) -> None:
        mine.extend([now] * count)
        self._all.extend([now] * count)

    def counts(self, key: str) -> tuple[int, int, float]:
        """(events of `key`, events of everyone, seconds until the key's latest leaves the window)."""
        now = time.monotonic()
        with self._lock:
            mine = self._current(key, now)
            return len(mine), len(self._all), (mine[-1] + self.window - now) if mine else 0.0


MODEL_CALLS = RateLimit(settings.MODEL_CALLS_PER_MINUTE, settings.MODEL_CALLS_PER_MINUTE_ALL)


def model_call_held(request: Any) -> str:
    """"" if the client may call the paid model now (the call is counted in MODEL_CALLS), else why
    not and when to try again: one budget per client address and one for everyone, shared by every
    call that reaches the model (the stylist's reply, the outfit planner)."""
    wait = MODEL_CALLS.wait(client_address(request))
    if not wait:
        return ""
    return (f"The AI model has been asked as often as it may for now (at most {MODEL_CALLS.per_key} times a "
            f"minute from one address, {MODEL_CALLS.everyone} for everyone); try again in {max(1, round(wait))} s.")


def client_address(source: Any) -> str:
    """The client's address from an ASGI scope or a request (gr.Request, Starlette's): the TCP
    peer, or what a trusted proxy forwarded (see trust_proxies); "unknown" without one."""
    client = source.get("client") if isinstance(source, dict) else getattr(source, "client", None)
    return str(client[0]) if client else "unknown"


def trust_proxies() -> None:
    """Tell the web server (uvicorn reads FORWARDED_ALLOW_IPS when it starts) whose X-Forwarded-For
    to believe: only settings.TRUSTED_PROXIES, so a visitor cannot pick their own address."""
    os.environ["FORWARDED_ALLOW_IPS"] = settings.TRUSTED_PROXIES


class BodyLimit:
    """ASGI middleware: a request body must declare its length (411) and stay within `max_bytes`
    (413), or `upload_bytes` on the upload route, so no request can make the server read without
    end (the queue reads a whole JSON body into memory)."""

    def __init__(self, app, max_bytes: int, upload_bytes: int):
        self.app, self.max_bytes, self.upload_bytes = app, max_bytes, upload_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            cap = self.upload_bytes if is_upload(scope) else self.max_bytes
            refusal = None
            if length is None and b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                refusal = PlainTextResponse("Send the request with a Content-Length.", status_code=411)
            elif length is not None and (not length.isdigit() or int(length) > cap):
                refusal = PlainTextResponse(f"The request is too large: at most {cap // 1024} KB here "
                                            "(photos go to the upload route).", status_code=413)
            if refusal is not None:
                return await refusal(scope, receive, send)
        await self.app(scope, receive, send)


def is_upload(scope: dict) -> bool:
    """Whether the request is Gradio's file upload (POST …/gradio_api/upload)."""
    return scope.get("method") == "POST" and scope["path"].rstrip("/").endswith("/gradio_api/upload")
