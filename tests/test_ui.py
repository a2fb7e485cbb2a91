"""The web app driven through its API, as `gradio_client` (and "Use via API") would drive it.

One engine and one running app for the module (loaded once, like app.py does); each test gets a
fresh client, i.e. a fresh browser session with its own history.
"""
from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from fashion_rag import settings
from fashion_rag.data.photos import load_photos
from fashion_rag.errors import IndexMissingError, StaleIndexError

STRIPED_SHIRT, BLACK_DRESS = 10188, 10360  # catalog ids used by the page's examples too
GENERIC_ERROR = "has not enabled verbose error reporting"  # Gradio's text for unexpected errors


def catalog_image(item_id: int) -> Path:
    path = settings.CATALOG_DIR / "images" / f"{item_id}.jpg"
    if not path.is_file():
        pytest.skip(f"catalog image {path} not found")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_real_engine():
    """The engine of the default index, preparing (training/building) it first if needed."""
    from fashion_rag import load_engine
    try:
        return load_engine(settings.INDEX_DIR)
    except (IndexMissingError, StaleIndexError):
        from fashion_rag.prepare import prepare
        prepare()
        return load_engine(settings.INDEX_DIR)


@pytest.fixture(scope="module")
def engine():
    return load_real_engine()


@contextmanager
def running_app(engine, **launch):
    """(demo, url) of the page around `engine`, launched as app.py launches it, on a free port."""
    from fashion_rag import ui
    demo = ui.build_demo(engine)
    port = free_port()
    ui.launch(demo, photo_folders=ui.image_dirs(engine), prevent_thread_lock=True, server_name="127.0.0.1",
              server_port=port, quiet=True, **launch)
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextmanager
def trusting_this_machine():
    """This machine as a trusted proxy, as a local reverse proxy would be configured, so that a
    test's X-Forwarded-For names the client's address (for apps launched inside)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "TRUSTED_PROXIES", "127.0.0.1")
        yield


@pytest.fixture(scope="module")
def app_url(engine):
    with running_app(engine) as (_, url):
        yield url


@pytest.fixture
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture
def no_llm(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def search(client, image=None, text="", mode="auto", weight=0.5, k=12, gender=(),
           article_type=(), colour=(), season=(), usage=(), corrections=None):
    """Call /search; returns (captions, image paths, status line). `corrections`: attribute -> value."""
    fixed = [(corrections or {}).get(a, "") for a in ("type", "gender", "colour", "pattern")]
    gallery, status = client.predict(
        handle_file(str(image)) if image else None, text, mode, weight, k, list(gender),
        list(article_type), list(colour), list(season), list(usage), *fixed, api_name="/search")
    return [g["caption"] for g in gallery], [g["image"] for g in gallery], status


def share(captions: list[str], word: str) -> float:
    return sum(word in c for c in captions) / max(1, len(captions))


def test_endpoints_are_named(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/search", "/reply", "/select", "/refine", "/undo", "/describe"} <= set(named)
    params = [p["parameter_name"] for p in named["/search"]["parameters"]]
    assert params[:5] == ["image", "text", "mode", "weight", "k"]


def test_text_search(client):
    captions, images, status = search(client, text="red dress for women")
    assert captions and all(Path(p).is_file() for p in images)
    assert "Red" in status  # the guard's colour constraint is stated
    assert share(captions, "Red") >= 0.75
    assert "mode `concat`" in status


def test_image_search(client):
    captions, images, status = search(client, image=catalog_image(STRIPED_SHIRT))
    assert captions and "mode `guided`" in status and "In your photo:** shirt" in status
    assert share(captions, "Shirts") >= 0.75
    # photo against photos only: the catalog's own photo finds itself among the first results
    _, images, status = search(client, image=catalog_image(STRIPED_SHIRT), mode="image")
    assert "mode `image`" in status and f"{STRIPED_SHIRT}.jpg" in [Path(p).name for p in images[:3]]


def test_photo_and_tweak(client):
    captions, _, status = search(client, image=catalog_image(BLACK_DRESS), text="in red", k=8)
    assert len(captions) == 8
    assert "Red" in status and "mode `guided`" in status
    assert "In your photo:** dress" in status and "your words change:** colour → Red" in status
    assert share(captions, "Red") >= 0.75


def test_filters(client):
    captions, _, status = search(client, text="casual", article_type=["Shirts"], colour=["Blue"],
                                 gender=["Men"], k=6)
    assert captions and all(c.startswith("Blue Shirts") for c in captions)
    photo, details = client.predict(0, api_name="/select")
    assert "Men" in details and Path(photo).is_file()


def test_select_refine_search_undo(client, no_llm):
    first, _, first_status = search(client, text="red shirt for men", k=8)
    photo, details = client.predict(1, api_name="/select")
    assert "Why it matched" in details and first[1].split(" · ")[-1] in details

    image, text = client.predict(api_name="/refine")
    assert Path(image).is_file() and text == "" and Path(image).name == Path(photo).name
    second, _, _ = search(client, image=image, text="for summer", k=6)
    assert len(second) == 6
    search(client, image=image, text="in black", k=6)

    # Undo drops the third step and restores the second: its photo, words and results.
    image2, text2, gallery2, _, _, history, _, _ = client.predict(api_name="/undo")[:8]
    assert text2 == "for summer" and Path(image2).is_file()
    assert [g["caption"] for g in gallery2] == second
    assert f"1. “red shirt for men” → {len(first)} items" in history
    assert "2. item " in history and "“for summer” → 6 items" in history and "3." not in history

    _, text1, gallery1, status1, _, history, _, _ = client.predict(api_name="/undo")[:8]
    assert text1 == "red shirt for men" and status1 == first_status
    assert [g["caption"] for g in gallery1] == first and "2." not in history


def test_undo_and_refine_need_a_step(client):
    client.predict(api_name="/undo")  # nothing to undo: a warning, not an error
    with pytest.raises(AppError, match="click a product"):
        client.predict(api_name="/refine")
    with pytest.raises(AppError, match="Pick one of the products"):
        client.predict(3, api_name="/select")


def test_reply_without_key_is_the_automatic_summary(client, no_llm):
    captions, _, _ = search(client, text="red dress for women", k=5)
    reply = client.predict(api_name="/reply")
    assert "Automatic summary" in reply and "#1" in reply


def test_reply_streams_from_the_llm(client, monkeypatch):
    from tests.openai_stub import OpenAIStub
    with OpenAIStub(api_key="sk-ui-test", chunk_delay=0.02) as stub:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-ui-test")
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        captions, _, _ = search(client, image=catalog_image(BLACK_DRESS), text="in red", k=5)
        job = client.submit(api_name="/reply")
        final = job.result(timeout=60)
        partials = job.outputs()
    assert final.startswith("Pair **#1 ") and "Automatic summary" not in final
    assert len(partials) > 2 and all(final.startswith(p) for p in partials)  # cumulative stream
    prompt = stub.requests[-1]["json"]["messages"][-1]["content"]
    assert "in red" in prompt and "uploaded a photo" in prompt


def test_describe_reads_a_real_upload(client):
    photos = load_photos("validation", [settings.USER_PHOTOS_DIR])
    shoes = photos[photos["label"] == "shoes"]["path"].iloc[0]
    reading = client.predict(handle_file(shoes), api_name="/describe")
    assert set(reading) == {"type", "gender", "colour", "pattern", "corrected"}
    assert all(0 <= pair["confidence"] <= 1 and pair["value"] for pair in reading["type"])


def test_a_correction_reruns_the_search_with_it(client):
    captions, _, status = search(client, image=catalog_image(BLACK_DRESS), text="for summer",
                                 corrections={"type": "t-shirt", "colour": "White"})
    assert "t-shirt _(corrected)_" in status and "White _(corrected)_" in status
    assert share(captions, "Tshirts") >= 0.75
    with pytest.raises(AppError, match="Colour in the photo: 'Plaid' is not in the list of choices"):
        search(client, image=catalog_image(BLACK_DRESS), corrections={"colour": "Plaid"})


@pytest.mark.parametrize("args, message", [
    (dict(k="ten"), "Number of results must be a number, not 'ten'"),
    (dict(weight="abc"), "Text weight must be a number, not 'abc'"),
    (dict(k=99), "Number of results must be between 1 and 40"),
])
def test_bad_api_values_are_clear_errors(client, args, message):
    with pytest.raises(AppError, match=message) as err:
        search(client, **{"text": "red shirt", **args})
    assert GENERIC_ERROR not in str(err.value)


def test_select_needs_a_position(client):
    search(client, text="red shirt", k=4)
    with pytest.raises(AppError, match="position must be a number"):
        client.predict("abc", api_name="/select")
    with pytest.raises(AppError, match="a position from 0"):
        client.predict(-1, api_name="/select")


def test_broken_image_is_a_clear_error(client, tmp_path):
    broken = tmp_path / "outfit.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(httpx.HTTPStatusError) as err:  # refused as it is uploaded, with the reason
        search(client, image=broken, text="in red")
    assert err.value.response.status_code == 415 and "not a photo" in err.value.response.text
    assert "Traceback" not in err.value.response.text


def test_nothing_given_is_a_clear_error(client):
    with pytest.raises(AppError) as err:
        search(client, text="   ")
    message = str(err.value)
    assert message and GENERIC_ERROR not in message and "Traceback" not in message


def test_app_arguments(monkeypatch):
    import app
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    args = app.parse_args([])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    monkeypatch.setenv("SPACE_ID", "someone/fashion-rag")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    args = app.parse_args(["--share", "--index", "/tmp/idx"])
    assert (args.host, args.port, args.share, args.index) == ("0.0.0.0", 7999, True, "/tmp/idx")


def test_public_app_without_password_is_flagged_and_login_is_checked(monkeypatch):
    import asyncio
    import inspect

    import app
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("FASHION_RAG_PASSWORD", raising=False)
    assert app.access(share=False) == (None, "")  # local only: no login, no warning
    auth, notice = app.access(share=True)
    assert auth is None and "anyone with the link" in notice
    monkeypatch.setenv("SPACE_ID", "someone/fashion-rag")
    assert "anyone with the link" in app.access(share=False)[1]
    monkeypatch.setenv("FASHION_RAG_PASSWORD", "s3cret")
    login, notice = app.access(share=True)
    assert notice == "" and inspect.iscoroutinefunction(login.check)  # Gradio awaits only coroutine functions
    assert asyncio.run(login.check("shopper", "s3cret")) is True
    assert asyncio.run(login.check("shopper", "wrong")) is False


# ---------------------------------------------------------------- outfits


def complete(client, image=None, text="", k=3, gender=()):
    """Call /complete (the same inputs as /search); returns (outfit JSON, status line, board values)."""
    values = client.predict(handle_file(str(image)) if image else None, text, "auto", 0.5, k, list(gender),
                            [], [], [], [], "", "", "", "", api_name="/complete")
    return values[0], values[1], values[2:]


def test_complete_swap_reply_and_undo(client, no_llm):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in named["/complete"]["parameters"]] == \
        [p["parameter_name"] for p in named["/search"]["parameters"]]
    captions, _, search_status = search(client, text="red shirt for men", k=4)

    outfit, status, board = complete(client, text="white shirt, navy chinos and brown loafers for the office")
    assert [s["role"] for s in outfit["slots"]] == ["top", "bottom", "shoes"] and outfit["planner"] == "rules"
    assert {(h["articleType"], h["baseColour"]) for h in outfit["slots"][0]["hits"]} == {("Shirts", "White")}
    assert {(h["articleType"], h["baseColour"]) for h in outfit["slots"][1]["hits"]} == {("Trousers", "Navy Blue")}
    assert all(len(s["hits"]) == 3 and Path(s["hits"][0]["image"]).is_file() for s in outfit["slots"])
    assert "Outfit: 3 pieces" in status and "planned by rules" in status
    labels, galleries = board[1:7], board[7:13]
    assert labels[0].startswith("**Top**: ") and "white shirt" in labels[0] and labels[3] == ""
    assert [len(g) for g in galleries] == [3, 3, 3, 0, 0, 0]

    reply = client.predict(api_name="/reply")
    assert "Automatic summary" in reply and "**Top**" in reply and "**Shoes**" in reply
    assert outfit["slots"][0]["hits"][0]["name"].split()[0] in reply

    swapped = client.predict(2, 1, api_name="/swap")[0]
    assert swapped["slots"][2]["hits"][0]["id"] == outfit["slots"][2]["hits"][1]["id"]
    assert [s["hits"][0]["id"] for s in swapped["slots"][:2]] == [s["hits"][0]["id"] for s in outfit["slots"][:2]]
    new_reply = client.predict(api_name="/reply")
    assert swapped["slots"][2]["hits"][0]["name"] in new_reply.replace("\\", "")

    # Undo goes back from the outfit to the search before it.
    _, text, gallery, status, _, history = client.predict(api_name="/undo")[:6]
    assert text == "red shirt for men" and status == search_status
    assert [g["caption"] for g in gallery] == captions and "2." not in history


def test_complete_the_look_around_a_photo_and_a_selected_product(client, no_llm):
    outfit, _, _ = complete(client, image=catalog_image(BLACK_DRESS), text="shoes and a bag to go with this")
    assert [s["role"] for s in outfit["slots"]] == ["shoes", "bag"]
    assert outfit["context"] == [{"role": "one-piece", "what": outfit["context"][0]["what"], "from": "photo"}]

    search(client, text="blue jeans for men", k=4)
    photo, _ = client.predict(0, api_name="/select")
    around = client.predict("for the weekend", 3, api_name="/complete_item")[0]
    assert around["context"][0]["from"] == "item" and "jeans" in around["context"][0]["what"]
    assert "bottom" not in [s["role"] for s in around["slots"]] and around["gender"] == "Men"
    # The outfit's pieces can be selected and used as a reference, as search results can.
    photo, details = client.predict(0, api_name="/select")
    assert around["slots"][0]["hits"][0]["name"] in details
    image, _ = client.predict(api_name="/refine")
    assert Path(image).name == Path(around["slots"][0]["hits"][0]["image"]).name


def test_outfit_errors_are_clear(client):
    with pytest.raises(AppError, match="Complete the look first"):
        client.predict(0, 1, api_name="/swap")
    with pytest.raises(AppError, match="click a product"):
        client.predict("", 3, api_name="/complete_item")
    complete(client, text="shoes to match my red dress")
    with pytest.raises(AppError, match="Pick a slot from 0 to 0"):
        client.predict(4, 0, api_name="/swap")


def test_undo_brings_back_an_outfit(client, no_llm):
    outfit, status, _ = complete(client, text="what goes with my black jeans?")
    search(client, text="red dress for women", k=4)
    values = client.predict(api_name="/undo")
    text, restored_status, labels = values[1], values[3], values[9:15]
    assert text == "what goes with my black jeans?" and restored_status == status
    assert [label.split("**")[1] for label in labels if label] == [s["role"].capitalize() for s in outfit["slots"]]


# ---------------------------------------------------------------- taste


def test_like_pass_profile_and_forget(client):
    captions, _, _ = search(client, text="casual shirts for men", k=8)
    liked = client.predict(0, api_name="/like")
    assert "1 like, 0 passes" in liked
    client.predict(1, api_name="/pass")
    client.predict(2, api_name="/like")
    profile = client.predict(api_name="/profile")
    assert profile["likes"] == 2 and profile["passes"] == 1 and len(profile["profile"]) == 32
    assert profile["types"] == ["Shirts"]
    again, _, _ = search(client, text="casual shirts for men", k=8)
    assert captions[1] not in again  # the passed shirt is left out
    client.predict(api_name="/forget")
    fresh = client.predict(api_name="/profile")
    assert fresh["likes"] == 0 and fresh["profile"] != profile["profile"]


def test_the_style_quiz_seeds_the_profile(client):
    first = client.predict([], api_name="/quiz")
    gallery, _, message = first[0], first[1], first[2]
    assert len(gallery) == 8 and "Round 1 of 3" in message
    second = client.predict(["0", "2"], api_name="/quiz")
    assert "Round 2 of 3" in second[2] and second[0] != gallery
    assert client.predict(api_name="/profile")["likes"] == 2
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(["42"], api_name="/quiz")


def test_feedback_needs_a_result(client):
    with pytest.raises(AppError, match="Pick one of the products"):
        client.predict(0, api_name="/like")
