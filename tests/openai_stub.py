"""A fake OpenAI-compatible chat-completions server on loopback, for tests.

It speaks real HTTP, so the real `openai` client (retries, timeouts, SSE parsing) is exercised:

    with OpenAIStub(api_key="sk-test") as stub:       # or serving(monkeypatch, key, timeout),
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)  # which also sets the app's settings
        ...
        stub.requests[-1]["json"]["messages"]

Modes (settable at any time through `.mode`):
    "normal"  - answer with `reply` (streamed word by word when the request asks for stream)
    "fail"    - HTTP 500 with an OpenAI-style JSON error, every time
    "hang"    - wait `hang_seconds` before answering (longer than a short client timeout)
    "cut"     - stream the first `cut_after` chunks, then drop the connection mid-body
    "garbage" - a 200 event stream whose data is not JSON
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/v1/chat/completions", "/chat/completions")
MAX_BODY = 1_000_000
Reply = str | Callable[[dict, dict], str]


def echo_first_item(body: dict, headers: dict) -> str:
    """Default reply: names the first "#1 Name" found in the last user message."""
    users = [m.get("content") for m in body.get("messages", []) if m.get("role") == "user"]
    text = users[-1] if users and isinstance(users[-1], str) else ""
    match = re.search(r"#1 ([^|\n]+)", text)
    name = match.group(1).strip() if match else "the first item"
    return f"Pair **#1 {name}** with the other pieces for an easy, balanced look."


@contextmanager
def serving(monkeypatch, api_key: str, timeout: str) -> Iterator["OpenAIStub"]:
    """A stub the app's LLM settings point at (key, base URL, client timeout in seconds)."""
    with OpenAIStub(api_key=api_key) as stub:
        monkeypatch.setenv("OPENAI_API_KEY", api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("FASHION_RAG_LLM_TIMEOUT", timeout)
        yield stub


class OpenAIStub:
    def __init__(self, api_key: str = "sk-stub-key", mode: str = "normal",
                 reply: Reply = echo_first_item, hang_seconds: float = 5.0,
                 cut_after: int = 2, chunk_delay: float = 0.0):
        self.api_key, self.mode, self.reply = api_key, mode, reply
        self.hang_seconds, self.cut_after, self.chunk_delay = hang_seconds, cut_after, chunk_delay
        self.requests: list[dict[str, Any]] = []  # {"path", "headers" (lower-case keys), "json"}
        self.gets: list[str] = []  # paths anyone tried to GET (e.g. a browser fetching an image)
        self._closed = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def reply_for(self, body: dict, headers: dict) -> str:
        return self.reply(body, headers) if callable(self.reply) else self.reply

    def close(self) -> None:
        self._closed.set()  # wakes handlers sleeping in "hang"
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients may hang up mid-stream
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked bodies, so a cut stream is detectably incomplete
    server: _Server

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _error(self, status: int, message: str, code: str) -> None:
        self._json(status, {"error": {"message": message, "type": "invalid_request_error",
                                      "param": None, "code": code}})

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self) -> None:
        self.server.stub.gets.append(self.path)  # type: ignore[attr-defined]
        self._error(404, "Only POST chat completions are served.", "not_found")

    def do_POST(self) -> None:
        stub: OpenAIStub = self.server.stub  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._error(413, "Request too large.", "too_large")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        stub.requests.append({"path": self.path, "headers": headers, "json": body})
        if self.path.split("?")[0] not in PATHS:
            return self._error(404, f"Unknown path {self.path}.", "not_found")
        if headers.get("authorization") != f"Bearer {stub.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_api_key")
        if not isinstance(body, dict):
            return self._error(400, "Body is not a JSON object.", "invalid_json")
        if stub.mode == "fail":
            return self._json(500, {"error": {"message": "The stub failed on purpose.",
                                              "type": "server_error", "param": None, "code": None}})
        if stub.mode == "hang" and stub._closed.wait(stub.hang_seconds):
            return  # shutting down
        model, reply = body.get("model", "stub-model"), stub.reply_for(body, headers)
        base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            return self._json(200, {**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply},
                 "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if stub.mode == "garbage":
            self._chunk(b"data: {this is not json\n\n")
            return self._chunk(b"")
        pieces = re.findall(r"\S+\s*|\s+", reply)
        deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
        for n, delta in enumerate(deltas):
            if stub.mode == "cut" and n > stub.cut_after:
                return  # no terminating chunk: the client sees an incomplete body
            event = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
            if stub.chunk_delay:
                time.sleep(stub.chunk_delay)
        done = {**base, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self._chunk(b"data: " + json.dumps(done).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")
