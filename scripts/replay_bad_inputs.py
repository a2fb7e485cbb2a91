"""Replay the bad-input corpus against a running app and count how each case was answered.

    FASHION_RAG_TRUSTED_PROXIES=127.0.0.1 python app.py --port 7860 2> server.log &
    python scripts/replay_bad_inputs.py --url http://127.0.0.1:7860/ --log server.log

The corpus (tests/data/bad_inputs.tsv) holds one case per line, tab-separated: how it is sent
(`http`: Gradio's queue over raw HTTP, which can carry NaN, Infinity and lone surrogates;
`client`: gradio_client; `route`: a plain HTTP request), the endpoint (an API name, private
events too, or `GET /path`, `POST /path`, `UPLOAD`), the inputs (JSON: named overrides of the
endpoint's defaults, or a list by position; `@photo` and `@file:NAME` are files made here and
uploaded first; `{catalog}`, `{root}` and `{index}` stand for those folders) and the answer
expected: `ok`, `error:WORDS` (a message with these words; `a|b`: either) or
`status:CODES[:WORDS]`. An optional fifth column is a call made first in the same session
(`NAME JSON`). `## category` lines name the category of the cases below them.

Each case is one of: clean (answered), clear message (the expected words), unclear message
(another message), bare error (no message, or Gradio's generic one), traceback (the server log
got one meanwhile) or hang (no answer in time). The tests (tests/test_bad_inputs.py) replay the
same corpus against an app they start.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from gradio_client import Client, handle_file
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fashion_rag import settings  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "bad_inputs.tsv"
KINDS = ["clean", "clear message", "unclear message", "bare error", "traceback", "hang"]
BARE = ("has not enabled verbose error reporting", "That failed unexpectedly")
PHOTO = 10188  # a catalog photo (a striped shirt)
# A call that leaves something to act on, made first in the session of these endpoints.
SETUP = {name: ("search", {"text": "casual shirts for men", "k": 4})
         for name in ("select", "like", "pass", "refine", "complete_item", "reply", "undo")}
SETUP.update(swap=("complete", {"text": "white shirt, navy chinos and brown loafers"}), quiz=("quiz", {"picks": []}))


@dataclass
class Case:
    category: str
    line: int
    via: str
    endpoint: str
    inputs: str
    expect: str
    setup: str = ""


def load_corpus(path: Path = CORPUS) -> list[Case]:
    cases, category = [], ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("## "):
            category = line[3:].strip()
        elif line.strip() and not line.startswith("#"):
            cases.append(Case(category, number, *line.split("\t")))
    return cases


def make_files(folder: Path) -> dict[str, Path]:
    """The files the corpus names: real catalog photos, and damaged or disguised ones made from them."""
    photo = settings.CATALOG_DIR / "images" / f"{PHOTO}.jpg"
    jpeg = photo.read_bytes()
    files = {"photo": photo.read_bytes(), "truncated.jpg": jpeg[: len(jpeg) // 3], "empty.jpg": b"",
             "text.jpg": b"just some words, not a photo\n" * 20, "page.png": b"<html><script>alert(1)</script></html>",
             "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
             "archive.jpg": b"PK\x03\x04" + b"\x00" * 200, "doc.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 200,
             "eps.jpg": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"}
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    bomb = bytearray(buffer.getvalue())  # 1 px of pixels, but a header claiming 60000 x 60000
    bomb[16:24] = (60000).to_bytes(4, "big") * 2
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")  # the header's checksum, redone
    files["bomb.png"] = bytes(bomb)
    shirt = Image.open(photo)
    for name, image, form in (("cmyk.jpg", shirt.convert("CMYK"), "JPEG"),
                              ("gray16.png", shirt.convert("I").convert("I;16"), "PNG")):
        buffer = io.BytesIO()
        image.save(buffer, form)
        files[name] = buffer.getvalue()
    frames = [Image.open(photo).convert("RGB").resize((64, 64)), Image.new("RGB", (64, 64), "red")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    files["animated.gif"] = buffer.getvalue()
    paths = {}
    for name, data in files.items():
        paths[name] = folder / (name if "." in name else f"{name}.jpg")
        paths[name].write_bytes(data)
    return paths


class Replayer:
    """Sends the corpus's cases to the app at `url`; `read_log()` gives what the server logged
    since it was last called (for tracebacks)."""

    def __init__(self, url: str, read_log: Callable[[], str] = lambda: "", timeout: float = 20.0):
        self.url, self.read_log, self.timeout = url.rstrip("/") + "/", read_log, timeout
        self.http = httpx.Client(timeout=timeout)
        config = self.http.get(self.url + "config").json()
        states = {c["id"] for c in config["components"] if c.get("type") == "state"}
        self.events = {d["api_name"]: (d["id"], [i in states for i in d["inputs"]]) for d in config["dependencies"]}
        named = self.http.get(self.url + "gradio_api/info").json()["named_endpoints"]
        self.params = {name.strip("/"): [(p["parameter_name"], p.get("parameter_default")) for p in e["parameters"]]
                       for name, e in named.items()}
        self.files = make_files(Path(tempfile.mkdtemp(prefix="bad-inputs-")))
        self.tokens = {"{catalog}": str(settings.CATALOG_DIR), "{root}": str(ROOT), "{index}": str(settings.INDEX_DIR)}
        self._sessions: dict[str, str] = {}

    # ------------------------------------------------------------------ one case

    def run(self, case: Case) -> tuple[str, str]:
        """(kind, what came back, shortened) of one case. Each case comes from its own address, as
        different visitors would, so that the per-address quotas of one case do not spill into the
        next: named in X-Forwarded-For, which the app believes when it trusts this machine as a
        proxy (FASHION_RAG_TRUSTED_PROXIES=127.0.0.1)."""
        self.http.headers["X-Forwarded-For"] = f"198.18.{case.line // 250}.{case.line % 250 + 1}"
        self.read_log()
        try:
            outcome = self._send(case)
        except httpx.TimeoutException:
            outcome = ("hang", "")
        except Exception as exc:  # noqa: BLE001 - a client-side failure is an outcome too
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        return ("traceback" if "Traceback" in self.read_log() else kind(case, outcome)), str(outcome)[:300]

    def _send(self, case: Case) -> tuple:
        text = case.inputs
        for token, value in self.tokens.items():
            text = text.replace(token, value.replace("\\", "\\\\"))
        inputs = json.loads(text) if text != "-" else None
        if case.via == "route":
            return self._route(case.endpoint, inputs)
        name = case.endpoint.strip("/")
        if case.via == "client":
            values = self.values(name, inputs, uploaded=False)
            client = Client(self.url, verbose=False, download_files=False, headers=dict(self.http.headers))
            try:
                if name in SETUP:
                    setup, overrides = SETUP[name]
                    client.submit(*self.values(setup, overrides, uploaded=False), api_name=f"/{setup}").result(
                        timeout=self.timeout)
                job = client.submit(*[handle_file(str(self._file(v))) if _is_file(v) else v for v in values],
                                    api_name=f"/{name}")
                return ("ok", job.result(timeout=self.timeout))
            except TimeoutError:
                return ("hang", "")
            except Exception as exc:  # noqa: BLE001 - AppError carries the app's message
                return ("error", str(getattr(exc, "message", None) or exc))
            finally:
                client.close()
        session = self._session(name, case.setup)
        outcome = self.event(name, self.values(name, inputs), session)
        if outcome[0] == "ok" or case.expect == "ok":  # it may have changed the session: start afresh
            self._sessions.pop(f"{name}|{case.setup}", None)
        return outcome

    def _file(self, token: str) -> Path:
        """The file of `@photo` or `@file:NAME`."""
        return self.files[token[6:] if token.startswith("@file:") else "photo"]

    def values(self, name: str, inputs, uploaded: bool = True) -> list:
        """The inputs of event `name` (without its State) from named overrides or a list."""
        if isinstance(inputs, dict) and name in self.params:
            known = dict(self.params[name])
            unknown = set(inputs) - set(known)
            if unknown:
                raise ValueError(f"{name} has no input {unknown}")
            values = [inputs.get(key, default) for key, default in self.params[name]]
        else:
            values = list(inputs or [])
        return [self._upload(v) if uploaded and _is_file(v) else v for v in values]

    def _upload(self, token: str) -> dict:
        path = self._file(token)
        answer = self.http.post(self.url + "gradio_api/upload", files={"files": (path.name, path.read_bytes())})
        if answer.status_code != 200:  # refused at upload: send a path the server never stored
            return {"path": str(path), "meta": {"_type": "gradio.FileData"}}
        return {"path": answer.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}

    def _session(self, name: str, setup: str) -> str:
        key = f"{name}|{setup}"
        if key not in self._sessions:
            session = uuid.uuid4().hex[:12]
            first = ([SETUP[name]] if name in SETUP else []) + ([setup.split(" ", 1)] if setup else [])
            for event, inputs in first:
                inputs = json.loads(inputs) if isinstance(inputs, str) else inputs
                self.event(event, self.values(event, inputs), session)
            self._sessions[key] = session
        return self._sessions[key]

    def event(self, name: str, values: list, session: str) -> tuple:
        """Run event `name` through Gradio's queue, as the page does: ("ok", data) or ("error", message)."""
        if name not in self.events:
            return ("http", 404, f"no event {name} here")
        fn_index, stateful = self.events[name]
        given, data = iter(values), []
        for state in stateful:  # State inputs take a placeholder; a short list stays short
            value = None if state else next(given, StopIteration)
            if value is StopIteration:
                break
            data.append(value)
        data += list(given)
        body = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                           "trigger_id": None})  # NaN and Infinity as JavaScript writes them
        joined = self.http.post(self.url + "gradio_api/queue/join", content=body,
                                headers={"content-type": "application/json"})
        if joined.status_code != 200:
            return ("http", joined.status_code, joined.text[:200])
        deadline = time.monotonic() + self.timeout
        with self.http.stream("GET", self.url + "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():  # heartbeats keep coming while the server works
                if time.monotonic() > deadline:
                    return ("hang", "")
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    return ("ok", output.get("data")) if message.get("success") else ("error", output.get("error"))
        return ("hang", "")

    def _route(self, endpoint: str, inputs) -> tuple:
        if endpoint == "UPLOAD":
            spec = inputs if isinstance(inputs, dict) else {"files": inputs}
            files = [("files", (self._file(t).name, self._file(t).read_bytes())) for t in spec["files"]]
            answer = self.http.post(self.url + "gradio_api/upload", files=files, headers=spec.get("headers"))
        else:
            method, path = endpoint.split(" ", 1)
            for token, value in self.tokens.items():
                path = path.replace(token, value)
            spec = inputs or {}
            answer = self.http.request(method, self.url + path.lstrip("/"), content=spec.get("content"),
                                       headers=spec.get("headers"), follow_redirects=False)
        return ("http", answer.status_code, answer.text[:300])


def _is_file(value) -> bool:
    return isinstance(value, str) and (value == "@photo" or value.startswith("@file:"))


def kind(case: Case, outcome: tuple) -> str:
    """Which of KINDS an outcome is, for this case's expectation."""
    if outcome[0] == "hang":
        return "hang"
    if outcome[0] == "ok" or (outcome[0] == "http" and outcome[1] < 300):
        return "clean"
    parts = case.expect.split(":", 2)
    if outcome[0] == "http":
        if outcome[1] >= 500:
            return "bare error"
        matched = parts[0] == "status" and str(outcome[1]) in parts[1].split("|") and _says(outcome[2], parts[2:])
        return "clear message" if matched else "unclear message"
    message = outcome[1] or ""
    if not message.strip() or message.strip() == "Error" or any(b in message for b in BARE):
        return "bare error"
    return "clear message" if parts[0] == "error" and _says(message, parts[1:]) else "unclear message"


def _says(text: str, words: list[str]) -> bool:
    """Whether `text` has one of the alternatives in words[0] ("a|b"), or there are none."""
    return not words or any(w.lower() in text.lower() for w in words[0].split("|"))


def as_expected(case: Case, result: str) -> bool:
    return result == ("clean" if case.expect == "ok" else "clear message")


def table(rows: list[tuple[Case, str]]) -> str:
    """A Markdown table: per category, the cases and how they were answered."""
    categories = list(dict.fromkeys(c.category for c, _ in rows))
    head = ["category", "cases", *KINDS, "as expected"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cat in categories + ["all"]:
        picked = [(c, k) for c, k in rows if cat in ("all", c.category)]
        count = Counter(k for _, k in picked)
        lines.append("| " + " | ".join([cat, str(len(picked)), *(str(count[k]) for k in KINDS),
                                        str(sum(as_expected(c, k) for c, k in picked))]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[tuple[Case, str, str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    parser.add_argument("--log", type=Path, help="the server's log file (stderr), to count tracebacks")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds before a case counts as a hang")
    parser.add_argument("--only", help="only the cases whose endpoint contains this")
    parser.add_argument("--verbose", action="store_true", help="print every case that is not as expected")
    args = parser.parse_args(argv)
    offset = [args.log.stat().st_size if args.log else 0]

    def read_log() -> str:
        if not args.log:
            return ""
        with open(args.log, "rb") as log:
            log.seek(offset[0])
            data = log.read()
        offset[0] += len(data)
        return data.decode("utf-8", "replace")

    replayer = Replayer(args.url, read_log, args.timeout)
    results = []
    for case in load_corpus():
        if args.only and args.only not in case.endpoint:
            continue
        result, seen = replayer.run(case)
        results.append((case, result, seen))
        if args.verbose and not as_expected(case, result):
            print(f"line {case.line} {case.endpoint} {case.inputs[:80]} -> {result}: {seen}", file=sys.stderr)
    print(table([(c, k) for c, k, _ in results]))
    return results


if __name__ == "__main__":
    main()
