"""Uploads from strangers: photos only, a quota per client address, and a folder that cannot fill.

Gradio's upload route stores any file up to the size limit and keeps it for as long as a session
lives (an hour by default). The UploadGuard middleware refuses a non-photo (sniffed from its bytes
by Pillow, never trusted by its name) and an address past its quota, and the Uploads registry
deletes uploads no search used within minutes and, past the folder's budget, the oldest first.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from starlette.responses import PlainTextResponse

from fashion_rag import settings
from fashion_rag.data.images import sniff
from fashion_rag.errors import InputError
from fashion_rag.serving.limits import RateLimit, client_address, is_upload

log = logging.getLogger(__name__)


class Uploads:
    """The files this server accepted through the upload route: when, how big, whether used."""

    def __init__(self):
        self._files: dict[str, tuple[float, int, bool]] = {}  # path -> (stored at, bytes, used by a search)
        self._lock = threading.Lock()

    def add(self, path: str, size: int) -> None:
        with self._lock:
            self._files[path] = (time.time(), size, False)

    def used(self, path: str) -> None:
        """A search read this upload: it stays for the session's lifetime (Gradio's cache expiry)."""
        with self._lock:
            if path in self._files:
                stored, size, _ = self._files[path]
                self._files[path] = (stored, size, True)

    def sweep(self, unused_ttl: float | None = None, space: float | None = None) -> int:
        """Delete uploads unused for `unused_ttl` s, then the oldest while all of them take more
        than `space` bytes; forget those already gone. Returns how many were deleted."""
        unused_ttl = settings.UNUSED_UPLOAD_TTL if unused_ttl is None else unused_ttl
        space = settings.UPLOAD_SPACE_MB * 1024 * 1024 if space is None else space
        now = time.time()
        with self._lock:
            for path in [p for p in self._files if not Path(p).exists()]:
                del self._files[path]
            doomed = {p for p, (stored, _, used) in self._files.items() if not used and stored < now - unused_ttl}
            total = sum(size for p, (_, size, _) in self._files.items() if p not in doomed)
            for path, (_, size, _) in sorted(self._files.items(), key=lambda item: item[1][0]):
                if total <= space:
                    break
                if path not in doomed:
                    doomed.add(path)
                    total -= size
            for path in doomed:
                del self._files[path]
        for path in doomed:
            remove(path)
        return len(doomed)


UPLOADS = Uploads()


def remove(path: str) -> None:
    """Delete an uploaded file and its folder if that is left empty (Gradio makes one per file)."""
    file = Path(path)
    file.unlink(missing_ok=True)
    try:
        file.parent.rmdir()
    except OSError:  # not empty, or gone
        pass


class UploadGuard:
    """ASGI middleware on Gradio's upload route: a quota of files per client address and for
    everyone (429), photos only (415); accepted files join UPLOADS and the folder is swept."""

    def __init__(self, app, limit: RateLimit | None = None):
        self.app = app
        self.limit = limit or RateLimit(settings.UPLOADS_PER_MINUTE, settings.UPLOADS_PER_MINUTE_ALL)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not is_upload(scope):
            return await self.app(scope, receive, send)
        address = client_address(scope)
        wait = self.limit.wait(address)
        if wait:
            log.info("Refused an upload from %s: over its quota.", address)
            return await _answer(scope, receive, send, 429, f"Too many uploads from your address: at most "
                                 f"{self.limit.per_key} a minute. Try again in {max(1, round(wait))} s.")
        held: list[dict] = []

        async def hold(message: dict) -> None:  # Gradio's answer, kept until the files are checked
            held.append(message)

        await self.app(scope, receive, hold)  # returns after Gradio's background moves are done
        status = held[0].get("status") if held else 500
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        paths = json.loads(body) if status == 200 else []
        refusal = self._refusal(address, paths)
        if refusal is not None:
            for path in paths:
                remove(path)
            log.info("Refused an upload from %s: %s", address, refusal[1])
            return await _answer(scope, receive, send, *refusal)
        for path in paths:
            UPLOADS.add(path, Path(path).stat().st_size)
        if paths:
            UPLOADS.sweep()
        for message in held:
            await send(message)

    def _refusal(self, address: str, paths: list[str]) -> tuple[int, str] | None:
        """(status, message) if the upload must be refused, else None (its files are counted)."""
        for path in paths:
            try:
                sniff(path)
            except InputError as exc:
                return 415, str(exc)
        if len(paths) > 1:
            self.limit.add(address, len(paths) - 1)  # one was counted on the way in
        return None


async def _answer(scope, receive, send, status: int, message: str) -> None:
    await PlainTextResponse(message, status_code=status)(scope, receive, send)
