"""The guards a public app needs, over real HTTP against the real app (the model is the local
stub): bounded work per request, a login throttle per client address that cannot lock the owner
out, one budget for the paid model per address and for everyone, uploads that must be photos and
stay within a quota, and no monitoring page. A client's address is its real source address
(127.0.0.2 is as much this machine as 127.0.0.1) or, through this machine as a trusted proxy,
the X-Forwarded-For it names."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio.utils import get_upload_folder
from gradio_client import Client, handle_file
from PIL import Image

from fashion_rag import serving, settings
from fashion_rag.ui.widgets import GONE
from scripts.replay_bad_inputs import Replayer
from tests.openai_stub import serving as openai_stub
from tests.test_ui import STRIPED_SHIRT, catalog_image, running_app, search, trusting_this_machine


@pytest.fixture(scope="module")
def served(real_engine):
    with trusting_this_machine(), running_app(real_engine) as served:
        yield served


def client(url: str, address: str = "") -> Client:
    """A gradio_client session, from `address` when given (forwarded by this machine)."""
    return Client(url, verbose=False, download_files=False, headers={"X-Forwarded-For": address} if address else None)


def from_address(address: str) -> httpx.Client:
    """Plain HTTP from a real source address of this machine."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def login(http: httpx.Client, url: str, password: str, address: str = "") -> int:
    return http.post(f"{url}login", data={"username": "shopper", "password": password},
                     headers={"X-Forwarded-For": address} if address else None).status_code


# ---------------------------------------------------------------- bounded work


def test_a_quiz_round_with_twenty_thousand_picks_is_one_like(served):
    _, url = served
    shopper = client(url)
    shopper.predict([], api_name="/quiz")
    started = time.monotonic()
    shopper.predict(["0"] * 20_000, api_name="/quiz")  # each look once: a round holds 8
    assert time.monotonic() - started < 5  # was: still writing likes after 4 minutes
    assert shopper.predict(api_name="/profile")["likes"] == 1


def test_a_request_body_is_bounded(served):
    _, url = served
    huge = httpx.post(f"{url}gradio_api/queue/join", content=b"[" * (int(settings.MAX_REQUEST_KB * 1024) + 1),
                      headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "too large" in huge.text

    def endless():
        yield b'{"data": ['
        yield b"1, " * 10
        yield b"1]}"
    chunked = httpx.post(f"{url}gradio_api/queue/join", content=endless(), headers={"content-type": "application/json"})
    assert chunked.status_code == 411 and "Content-Length" in chunked.text


# ---------------------------------------------------------------- the login


def test_a_guesser_locks_out_only_their_own_address(real_engine):
    throttle = serving.LoginThrottle("shopper", "right-password", failures=5, lockout=30, everyone=1000)
    with trusting_this_machine(), running_app(real_engine, login=throttle) as (_, url), \
            from_address("127.0.0.1") as guesser, from_address("127.0.0.2") as owner:
        stop, codes = threading.Event(), []

        def guess() -> None:  # one wrong password every 0.25 s, as in the report
            n = 0
            while not stop.is_set():
                codes.append(login(guesser, url, f"guess-{n}"))
                n += 1
                time.sleep(0.25)

        attack = threading.Thread(target=guess)
        attack.start()
        try:
            time.sleep(2)
            owner_results = []
            for _ in range(5):
                owner_results.append(login(owner, url, "right-password"))
                time.sleep(0.5)
        finally:
            stop.set()
            attack.join()
        assert codes[:5] == [400] * 5 and set(codes[5:]) == {429}  # the guesser: 5 tries, then locked
        assert owner_results == [200] * 5  # the owner, elsewhere, always gets in
        assert login(guesser, url, "right-password") == 429  # the guessing address stays locked
        # A forwarded address is believed only from a trusted proxy: from 127.0.0.2 it is ignored.
        assert login(owner, url, "wrong", address="198.51.100.1") == 400
        assert all(login(owner, url, f"w{n}", address=f"198.51.100.{n}") == 400 for n in range(2, 6))
        assert login(owner, url, "right-password", address="198.51.100.99") == 429


def test_by_default_no_visitor_can_name_their_own_address(real_engine, monkeypatch):
    throttle = serving.LoginThrottle("shopper", "right-password", failures=5, lockout=30, everyone=1000)
    env = {k: v for k, v in os.environ.items() if k != "FASHION_RAG_TRUSTED_PROXIES"}
    probe = "from fashion_rag import settings; print(repr(settings.TRUSTED_PROXIES))"
    default = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent).stdout.strip()
    assert default == "''"  # no proxy is trusted unless the setting names one
    monkeypatch.setattr(settings, "TRUSTED_PROXIES", "")  # as a fresh app has it (this module's app trusts us)
    with running_app(real_engine, login=throttle) as (_, url), httpx.Client(timeout=30) as guesser:
        codes = [login(guesser, url, f"g{n}", address=f"203.0.113.{n}") for n in range(6)]
    assert codes == [400] * 5 + [429]  # a new X-Forwarded-For each time: still one address


def test_past_the_global_ceiling_an_address_gets_one_guess(real_engine):
    throttle = serving.LoginThrottle("shopper", "right-password", failures=5, lockout=30, everyone=6)
    with trusting_this_machine(), running_app(real_engine, login=throttle) as (_, url), \
            httpx.Client(timeout=30) as proxy:
        # Through this machine's proxy, as a share link's visitors arrive: three guessers.
        assert [login(proxy, url, f"a{n}", "203.0.113.1") for n in range(6)] == [400] * 5 + [429]
        assert login(proxy, url, "b", "203.0.113.2") == 400  # the sixth wrong one: the ceiling
        assert login(proxy, url, "b2", "203.0.113.2") == 429  # past it, one wrong locks its address
        assert login(proxy, url, "c", "203.0.113.3") == 400
        assert login(proxy, url, "c2", "203.0.113.3") == 429
        assert login(proxy, url, "right-password", "203.0.113.9") == 200  # the owner still gets in


# ---------------------------------------------------------------- the paid model


def test_every_paid_call_comes_out_of_one_budget_per_address(served, monkeypatch):
    _, url = served
    monkeypatch.setattr(serving.limits, "MODEL_CALLS", serving.RateLimit(per_key=2, everyone=5))
    with openai_stub(monkeypatch, "sk-budget-test", "10") as stub:
        first = client(url, "192.0.2.1")
        outfits = [first.predict(None, "shoes to go with my black jeans", "auto", 0.5, 3, [], [], [], [], [],
                                 "", "", "", "", True, api_name="/complete")[0] for _ in range(2)]
        assert len(stub.requests) == 2 and not any("as often as it may" in n for o in outfits for n in o["notes"])
        search(first, text="black formal shoes for men", k=3)
        held = first.predict(api_name="/reply")  # the planner's two calls used this address's budget
        assert "as often as it may" in held and "2 times a minute from one address" in held
        fresh_session = client(url, "192.0.2.1")  # a new session hash does not reset it
        outfit = fresh_session.predict(None, "a bag for my red dress", "auto", 0.5, 3, [], [], [], [], [],
                                       "", "", "", "", True, api_name="/complete")[0]
        assert any("as often as it may" in n and "rules planned" in n for n in outfit["notes"])
        assert outfit["planner"] == "rules" and len(stub.requests) == 2
        others = [client(url, f"192.0.2.{n}") for n in (2, 3)]
        for other in others:
            search(other, text="black formal shoes for men", k=3)
        assert "Automatic summary" not in others[0].predict(api_name="/reply")  # another address: its own
        assert "Automatic summary" not in others[1].predict(api_name="/reply")
        assert len(stub.requests) == 4
        assert "Automatic summary" not in others[1].predict(api_name="/reply")  # the fifth call for everyone
        assert "5 for everyone" in others[0].predict(api_name="/reply") and len(stub.requests) == 5


# ---------------------------------------------------------------- uploads


def upload(url: str, name: str, data: bytes, address: str) -> httpx.Response:
    return httpx.post(f"{url}gradio_api/upload", files={"files": (name, data)}, headers={"X-Forwarded-For": address})


def test_only_photos_can_be_uploaded(served):
    _, url = served
    photo = catalog_image(STRIPED_SHIRT).read_bytes()
    assert upload(url, "shirt.jpg", photo, "192.0.2.20").status_code == 200
    png = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(png, "PNG")
    assert upload(url, "shirt.txt", png.getvalue(), "192.0.2.20").status_code == 200  # sniffed, not named
    for name, data in [("notes.jpg", b"plain text, not a photo\n" * 40), ("page.png", b"<html></html>"),
                       ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>'), ("shot.jpg", photo[:20]),
                       ("doc.pdf", b"%PDF-1.4\n" + b"0" * 500)]:
        refused = upload(url, name, data, "192.0.2.20")
        assert refused.status_code == 415 and "not a photo" in refused.text, name
    assert not [p for p in Path(get_upload_folder()).rglob("*") if p.name in ("notes.jpg", "page.png", "doc.pdf")]


def test_uploads_have_a_quota_per_address(served):
    _, url = served
    photo = catalog_image(STRIPED_SHIRT).read_bytes()
    codes = [upload(url, f"p{n}.jpg", photo, "192.0.2.30").status_code for n in range(settings.UPLOADS_PER_MINUTE + 1)]
    assert codes == [200] * settings.UPLOADS_PER_MINUTE + [429]
    refused = upload(url, "again.jpg", photo, "192.0.2.30")
    assert "Too many uploads from your address" in refused.text and "try again" in refused.text.lower()
    assert upload(url, "other.jpg", photo, "192.0.2.31").status_code == 200  # another visitor is not held


def test_unused_uploads_go_within_minutes_and_the_folder_is_bounded(served):
    _, url = served
    photo = catalog_image(STRIPED_SHIRT).read_bytes()
    unused = Path(upload(url, "unused.jpg", photo, "192.0.2.40").json()[0])
    used = Path(upload(url, "used.jpg", photo, "192.0.2.40").json()[0])
    page = Replayer(url)  # the page's own requests: the uploaded path, as is

    def search_with(path: Path) -> tuple:
        return page.event("search", page.values("search", {"image": {"path": str(path), "meta": {
            "_type": "gradio.FileData"}}, "text": "in red"}), "a-session")

    assert search_with(used)[0] == "ok"
    assert serving.UPLOADS.sweep(unused_ttl=0) >= 1
    assert not unused.exists() and used.exists()  # a search's photo stays while its session lives
    assert search_with(unused) == ("error", GONE)
    newer = Path(upload(url, "newer.jpg", photo, "192.0.2.40").json()[0])
    serving.UPLOADS.sweep(space=len(photo))  # room for one: the oldest go first, used or not
    assert not used.exists() and newer.exists()


def test_a_client_sees_the_reason_for_a_refused_upload(served, tmp_path):
    _, url = served
    fake = tmp_path / "outfit.jpg"
    fake.write_text("not a photo at all")
    with pytest.raises(Exception, match="415"):
        client(url, "192.0.2.50").predict(handle_file(str(fake)), "in red", "auto", 0.5, 3, [], [], [], [], [],
                                          "", "", "", "", True, api_name="/search")


# ---------------------------------------------------------------- monitoring


def test_monitoring_is_off_and_prints_no_key(served, capfd):
    _, url = served
    for path in ("monitoring", "monitoring/summary", "monitoring/some-key"):
        assert httpx.get(f"{url}{path}").status_code in (403, 404), path
    assert "monitoring" not in "".join(capfd.readouterr()).lower()


def test_without_monitoring_the_queue_keeps_no_record_of_past_events(served):
    """Gradio otherwise keeps 10,000 and summarises them all with pandas after every event."""
    demo, url = served
    shopper = client(url)
    for words in ("a red dress", "black jeans", "white sneakers"):
        captions, _, _ = search(shopper, text=words, k=3)
        assert len(captions) == 3
    assert len(demo._queue.event_analytics) <= 1
    assert demo._queue.cached_event_analytics_summary == {"functions": {}}
