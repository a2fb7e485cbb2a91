"""The bad-input corpus (tests/data/bad_inputs.tsv: numbers, lists, menus, text, images, uploads,
file paths, monitoring, malformed requests, the page's internal events) replayed through raw HTTP
and gradio_client against `python app.py`, started once for the module as a shopper's server
would be: every case gets the clean answer or the clear message it expects, and the server's log
holds no stack trace."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from scripts.replay_bad_inputs import Replayer, as_expected, load_corpus, table
from tests.test_ui import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def replayed(real_engine, tmp_path_factory):
    """[(case, kind, what came back)] for the whole corpus, and the server's whole log."""
    folder = tmp_path_factory.mktemp("bad_inputs_app")
    log_path, port = folder / "server.log", free_port()
    env = {**os.environ, "FASHION_RAG_PROFILES": str(folder / "profiles.sqlite3"), "PYTHONUNBUFFERED": "1",
           "GRADIO_TEMP_DIR": str(folder / "gradio"), "HF_HUB_OFFLINE": "1",
           "FASHION_RAG_TRUSTED_PROXIES": "127.0.0.1"}  # the replay names each case's address
    env.pop("OPENAI_API_KEY", None)
    with open(log_path, "wb") as log:
        app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and app.poll() is None:
            try:
                if httpx.get(url + "config", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        assert app.poll() is None, log_path.read_text()
        offset = [0]

        def read_log() -> str:
            text = log_path.read_bytes()[offset[0]:]
            offset[0] += len(text)
            return text.decode("utf-8", "replace")

        replayer = Replayer(url, read_log, timeout=30)
        yield [(case, *replayer.run(case)) for case in load_corpus()], log_path.read_text()
    finally:
        app.terminate()
        app.wait(30)


def test_the_corpus_has_every_kind_of_bad_input():
    cases = load_corpus()
    assert len(cases) >= 300
    by = Counter(case.category for case in cases)
    assert {"numbers", "lists", "menus", "text", "images", "uploads", "files", "monitoring", "protocol",
            "internal events", "gradio_client"} <= set(by)
    assert {case.via for case in cases} == {"http", "client", "route"}
    assert sum(case.expect == "ok" for case in cases) >= 50  # odd but valid input must still work


def test_every_bad_input_gets_a_clean_answer_or_a_clear_message(replayed):
    results, _ = replayed
    print(table([(case, kind) for case, kind, _ in results]))
    wrong = [f"line {c.line}: {c.endpoint} {c.inputs[:60]} expected {c.expect}, got {kind}: {seen[:160]}"
             for c, kind, seen in results if not as_expected(c, kind)]
    assert wrong == []


def test_no_bad_input_leaves_a_stack_trace_in_the_server_log(replayed):
    results, log = replayed
    assert not [c.line for c, kind, _ in results if kind in ("traceback", "hang")]
    assert "Traceback" not in log
    rejected = [line for line in log.splitlines() if "Rejected" in line]
    assert len(rejected) >= 150  # one line for each refusal
