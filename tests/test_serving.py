"""The app as a public server: files it will and will not serve, the upload limit, idle sessions
dropped, throttled logins, the paid model's rate limit, Markdown without links or remote images,
and a short load test. All over real HTTP against the real app (the model is the local stub)."""
from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from fashion_rag import serving, settings
from fashion_rag.reply.markdown import defang, escape
from tests.openai_stub import serving as openai_stub
from tests.test_ui import (
    STRIPED_SHIRT,
    catalog_image,
    load_real_engine,
    running_app,
    search,
    trusting_this_machine,
)

EVIL = "http://evil.example/p.png"


@pytest.fixture(scope="module")
def engine():
    return load_real_engine()


@pytest.fixture(scope="module")
def served(engine):
    """(demo, url) of the app launched as app.py launches it (behind this machine as a proxy)."""
    with trusting_this_machine(), running_app(engine) as served:
        yield served


def file_status(url: str, path) -> int:
    return httpx.get(f"{url}gradio_api/file={path}").status_code


def test_only_the_catalog_images_are_served(served):
    _, url = served
    assert file_status(url, catalog_image(STRIPED_SHIRT)) == 200
    catalog = settings.CATALOG_DIR
    for path in [catalog / "styles.csv", catalog / "README.md", f"{catalog}/images/../styles.csv",
                 "/etc/passwd", settings.ROOT / "app.py", settings.INDEX_DIR / "items.csv"]:
        assert file_status(url, path) in (403, 404), path


def test_catalog_photos_come_from_memory_as_they_are_on_disk(served):
    """The fast path (serving.CatalogImages) answers with the file's bytes, lets the browser keep
    them and revalidates; what it must not serve still reaches Gradio's refusal."""
    _, url = served
    photo = catalog_image(STRIPED_SHIRT)
    with httpx.Client() as http:
        first = http.get(f"{url}gradio_api/file={photo}")
        assert first.status_code == 200 and first.content == Path(photo).read_bytes()
        assert first.headers["content-type"] == "image/jpeg"
        assert "max-age" in first.headers["cache-control"]  # only the fast path says so
        again = http.get(f"{url}gradio_api/file={photo}", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and not again.content
        assert http.head(f"{url}gradio_api/file={photo}").headers["content-length"] == str(len(first.content))
        ranged = http.get(f"{url}gradio_api/file={photo}", headers={"Range": "bytes=0-9"})
        assert ranged.content == first.content[:10] and "cache-control" not in ranged.headers  # Gradio's
        for path in (f"{settings.CATALOG_DIR}/images/../styles.csv", settings.CATALOG_DIR / "styles.csv"):
            refused = http.get(f"{url}gradio_api/file={path}")
            assert refused.status_code in (403, 404) and "cache-control" not in refused.headers, path


def test_a_replaced_catalog_photo_is_never_served_stale(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    photo = folder / "1.jpg"
    photo.write_bytes(Path(catalog_image(STRIPED_SHIRT)).read_bytes())
    images = serving.CatalogImages(None, [str(folder)], blocked=[str(folder / "2.jpg")])
    assert images._photo(str(photo))[0] == photo.read_bytes()
    photo.write_bytes(b"another photo")
    assert images._photo(str(photo))[0] == b"another photo"
    (folder / "2.jpg").write_bytes(b"blocked")
    (folder / "notes.txt").write_bytes(b"not a photo")
    (tmp_path / "1.jpg").write_bytes(b"beside the folder")
    for refused in (folder / "2.jpg", folder / "notes.txt", folder / "3.jpg", tmp_path / "1.jpg"):
        assert images._photo(str(refused)) is None, refused


def test_uploads_over_the_limit_are_refused_clearly(served):
    _, url = served
    limit = int(settings.MAX_UPLOAD_MB * 1024 * 1024)
    big = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.jpg", b"\xff" * (limit + 1), "image/jpeg")})
    assert big.status_code == 413 and "size" in big.text.lower()
    small = httpx.post(f"{url}gradio_api/upload",
                       files={"files": ("shirt.jpg", catalog_image(STRIPED_SHIRT).read_bytes(), "image/jpeg")})
    assert small.status_code == 200


def test_idle_sessions_are_dropped_and_come_back_fresh(served):
    demo, url = served
    clients = [Client(url, verbose=False, download_files=False) for _ in range(3)]
    for client in clients:
        search(client, text="black formal shoes for men", k=3)
    sessions = demo.state_holder.session_data
    assert all(c.session_hash in sessions for c in clients)
    assert serving.expire_sessions(demo, ttl=3600) == 0  # nobody idle for an hour
    time.sleep(1.2)
    search(clients[0], text="a red dress", k=3)  # this one stays active
    assert serving.expire_sessions(demo, ttl=1.0) >= 2
    assert clients[0].session_hash in sessions
    assert not any(c.session_hash in sessions for c in clients[1:])
    # An expired session starts again from nothing: no results to pick from, searches work.
    with pytest.raises(Exception, match="Pick one of the products"):
        clients[1].predict(0, api_name="/select")
    clients[0].predict(0, api_name="/select")
    captions, _, _ = search(clients[1], text="a red dress", k=3)
    assert len(captions) == 3
    for client in clients:
        client.close()


def test_uploads_are_deleted_once_as_old_as_an_expired_session(engine, monkeypatch):
    monkeypatch.setattr(settings, "SESSION_TTL", 2.0)
    with running_app(engine) as (_, url):
        upload = httpx.post(f"{url}gradio_api/upload",
                            files={"files": ("shirt.jpg", catalog_image(STRIPED_SHIRT).read_bytes(), "image/jpeg")})
        stored = Path(upload.json()[0])
        assert stored.is_file()
        deadline = time.monotonic() + 10
        while stored.exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not stored.exists()


def test_reply_rate_limit_per_address(served, monkeypatch):
    _, url = served
    monkeypatch.setattr(serving.limits, "MODEL_CALLS", serving.RateLimit(per_key=2, everyone=100))
    with openai_stub(monkeypatch, "sk-limit-test", "10") as stub:
        first, second = (Client(url, verbose=False, download_files=False) for _ in range(2))
        search(first, text="black formal shoes for men", k=3)
        replies = [first.predict(api_name="/reply") for _ in range(3)]
        assert "Automatic summary" not in replies[0] and "Automatic summary" not in replies[1]
        assert "as often as it may" in replies[2] and "2 times a minute from one address" in replies[2]
        assert len(stub.requests) == 2  # the third never reached the paid model
        search(second, text="black formal shoes for men", k=3)  # a new session from the same address
        assert "as often as it may" in second.predict(api_name="/reply") and len(stub.requests) == 2
        elsewhere = Client(url, verbose=False, download_files=False, headers={"X-Forwarded-For": "198.51.100.7"})
        search(elsewhere, text="black formal shoes for men", k=3)  # through this machine's proxy: its own budget
        assert "Automatic summary" not in elsewhere.predict(api_name="/reply") and len(stub.requests) == 3


def test_model_markdown_cannot_carry_links_or_remote_images(served, monkeypatch):
    _, url = served
    with openai_stub(monkeypatch, "sk-md-test", "10") as stub:
        stub.reply = (f"**Pair #1** ![look]({EVIL}) with [this](http://evil.example/x) "
                      f"<img src='{EVIL}'> see {EVIL}\n\n[ref]: {EVIL}")
        client = Client(url, verbose=False, download_files=False)
        search(client, text="black formal shoes for men", k=3)
        reply = client.predict(api_name="/reply")
    assert reply.startswith("**Pair #1**") and "_(image: look)_" in reply
    assert "](" not in reply and "<img" not in reply and "http://" not in reply


@pytest.mark.parametrize("text", [f"![x]({EVIL})", "[click](http://evil.example)", f"<img src={EVIL}>",
                                  f"plain {EVIL} www.evil.example"])
def test_markdown_helpers_leave_no_link_image_or_html(text):
    for shown in (escape(text), defang(text)):
        assert "http://" not in shown and "www." not in shown
        assert not re.search(r"(?<!\\)[<\[]", shown)  # no raw HTML, no link or image syntax left
    assert escape(text).replace("\\", "").replace("\u2060", "") == text  # shopper text reads as written


def test_login_is_throttled(engine):
    auth = serving.LoginThrottle("shopper", "right-password", failures=5, lockout=3)
    with running_app(engine, login=auth) as (_, url):
        codes: list[int] = []

        def guess(n: int) -> None:
            codes.append(httpx.post(f"{url}login", data={"username": "shopper", "password": f"guess-{n}"}).status_code)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes.count(400) == 5 and codes.count(429) == 25  # 5 guesses checked, the rest refused
        locked = httpx.post(f"{url}login", data={"username": "shopper", "password": "right-password"})
        assert locked.status_code == 429 and "try again" in locked.text
        time.sleep(3.2)
        assert httpx.post(f"{url}login", data={"username": "shopper", "password": "right-password"}).status_code == 200


def test_bad_input_is_one_log_line_not_a_stack_trace(served, capfd, caplog):
    _, url = served
    client = Client(url, verbose=False, download_files=False)
    server_log: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = server_log.append
    logging.getLogger("uvicorn.error").addHandler(handler)  # the web server's own log
    with caplog.at_level(logging.INFO):
        with pytest.raises(AppError, match="not in the list of choices"):
            search(client, text="a red dress", gender=["Martian"])
        with pytest.raises(AppError, match="not in the list of choices"):
            search(client, text="a red dress", mode="warp")
        with pytest.raises(AppError, match="must be a number"):
            search(client, text="a red dress", k="ten")
        unknown = httpx.post(f"{url}gradio_api/queue/join", json={"data": [], "fn_index": 999, "session_hash": "x"})
        assert unknown.status_code == 400 and "/gradio_api/info lists the endpoints" in unknown.text
        time.sleep(0.5)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    logging.getLogger("uvicorn.error").removeHandler(handler)
    assert server_log == []  # answered, not a failure of the server
    assert [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()] == \
        ["Rejected a malformed request (KeyError: 999)"]
    rejected = [r.getMessage() for r in caplog.records if "Rejected input" in r.getMessage()]
    assert len(rejected) == 3 and all("\n" not in line for line in rejected)
    client.close()


def test_a_short_load_test_has_no_errors(served):
    """4 shoppers at once, photo + text searches with replies: no errors, a generous bound."""
    from scripts import loadtest
    _, url = served
    result = loadtest.main(["--url", url, "--phases", "concurrent", "--sessions", "4", "--searches", "3"])
    assert result["errors"] == 0
    rows = {r["endpoint"]: r for r in result["rows"]}
    assert rows["/search photo+text"]["calls"] == 12 and rows["/search photo+text"]["max"] < 20_000
