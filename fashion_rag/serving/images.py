"""The catalog's photos, answered before Gradio's stack.

A page of results asks for a dozen small photos (2-5 KB each). Gradio's file route costs about
2.5 ms of CPU per photo (a dozen middleware layers, every allowed and blocked folder resolved on
disk, a worker thread to read the file): as much as the search itself, on the same two cores.
CatalogImages answers those requests from memory with the same bytes, plus an hour of browser
caching so a shopper's next tweak does not fetch the same photos again. It answers only for an
image file directly inside the indexed image folders that is not a blocked path, and only when
no login is required; every other request goes on to Gradio unchanged, which decides as before.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from email.utils import formatdate

PREFIX = "/gradio_api/file="
TYPES = {".jpg": b"image/jpeg", ".jpeg": b"image/jpeg", ".png": b"image/png", ".webp": b"image/webp"}
MAX_BYTES = 2 * 1024 * 1024  # larger files are left to Gradio (streamed, not kept)
CAPACITY = 4096  # photos kept: about 16 MB of catalog shots


class CatalogImages:
    """ASGI middleware: GET or HEAD of `PREFIX + path` for a photo in `folders` (and not in
    `blocked`) from a bounded in-memory cache, checked against the file's size and modification
    time on every request so a replaced photo is never served stale."""

    def __init__(self, app, folders: Iterable[str], blocked: Iterable[str] = (), capacity: int = CAPACITY):
        self.app = app
        self.folders = {os.path.realpath(f) for f in folders}
        self.blocked = {os.path.realpath(b) for b in blocked}
        self.capacity = capacity
        self._kept: OrderedDict[str, tuple[tuple[int, int], bytes, list[tuple[bytes, bytes]]]] = OrderedDict()

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["method"] not in ("GET", "HEAD")
                or not scope["path"].startswith(PREFIX)):
            return await self.app(scope, receive, send)
        request = dict(scope.get("headers") or [])
        found = None if b"range" in request else self._photo(scope["path"][len(PREFIX):])
        if found is None:
            return await self.app(scope, receive, send)
        body, headers = found
        etag = dict(headers)[b"etag"]
        if request.get(b"if-none-match") == etag:
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
            return await send({"type": "http.response.body", "body": b""})
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def _photo(self, path: str) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
        """(bytes, response headers) of an allowed photo, or None to leave the request to Gradio."""
        try:
            real = os.path.realpath(path)
            stat = os.stat(real)
        except (OSError, ValueError):  # missing, unreadable, or a name no file can have (a NUL byte)
            return None
        kind = TYPES.get(os.path.splitext(real)[1].lower())
        if kind is None or os.path.dirname(real) not in self.folders or real in self.blocked:
            return None
        version = (stat.st_mtime_ns, stat.st_size)
        kept = self._kept.get(real)
        if kept is not None and kept[0] == version:
            self._kept.move_to_end(real)
            return kept[1], kept[2]
        if stat.st_size > MAX_BYTES:
            return None
        try:
            with open(real, "rb") as file:
                body = file.read(MAX_BYTES + 1)
        except OSError:
            return None
        if len(body) != stat.st_size:  # being rewritten: let Gradio answer this once
            return None
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                   (b"etag", f'"{version[0]:x}-{version[1]:x}"'.encode()),
                   (b"last-modified", formatdate(stat.st_mtime, usegmt=True).encode()),
                   (b"cache-control", b"public, max-age=3600")]
        self._kept[real] = (version, body, headers)
        if len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return body, headers
