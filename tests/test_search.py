"""The search engine end to end on the small real index: modes, the guard, filters, notes, errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fashion_rag.engine import Engine
from fashion_rag.errors import InputError

NEUTRAL = "something lighter for the weekend"  # names no catalog attribute


def striped(name: str) -> bool:
    return "strip" in name.lower()


@pytest.fixture(scope="module")
def items(engine):
    return engine.items


@pytest.fixture(scope="module")
def blue_top(items):
    """A real non-red, non-striped garment to use as the reference photo."""
    rows = items[(items["baseColour"] == "Blue") & items["articleType"].isin(["Tshirts", "Shirts", "Tops"])
                 & ~items["productDisplayName"].map(striped)]
    return rows.iloc[0]


def assert_ranked(results, k):
    assert len(results) == k
    scores = [hit.score for hit in results]
    assert scores == sorted(scores, reverse=True)
    assert len({hit.item_id for hit in results}) == k


def test_text_only(engine, items):
    results = engine.search(text=NEUTRAL, k=8)
    assert results.mode == "concat" and results.applied == [] and results.notes == []
    assert_ranked(results, 8)
    assert all(hit.item_id in set(items["id"]) and hit.item["path"] for hit in results)
    reds = engine.search(text="red", k=10)
    assert [hit.item["baseColour"] for hit in reds] == ["Red"] * 10


def test_image_only_from_a_path_and_from_a_pil_image(engine, blue_top):
    by_path = engine.search(image=blue_top["path"], k=5)
    assert by_path.mode == "image"
    assert_ranked(by_path, 5)
    by_pil = engine.search(image=Image.open(blue_top["path"]), k=5)
    assert [h.item_id for h in by_pil] == [h.item_id for h in by_path]
    assert np.allclose([h.score for h in by_pil], [h.score for h in by_path], atol=1e-5)


def test_an_items_own_photo_finds_that_item_first(engine, items):
    for _, item in items.iloc[::23].iterrows():
        hits = engine.search(image=item["path"], mode="image", k=3)
        assert hits[0].item_id == item["id"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-4) and hits[1].score < hits[0].score


def test_photo_and_text_auto_uses_the_learned_composer(engine, blue_top):
    assert "gated" in engine.modes and engine.composer is not None
    results = engine.search(image=blue_top["path"], text=NEUTRAL, k=6)
    assert results.mode == "gated"
    assert_ranked(results, 6)


@pytest.mark.parametrize("mode", ["image", "text", "sum", "concat", "gated"])
def test_every_mode_returns_k_hits_by_score(engine, blue_top, mode):
    results = engine.search(image=blue_top["path"], text=NEUTRAL, mode=mode, k=7)
    assert results.mode == mode
    assert_ranked(results, 7)
    assert all(hit.why for hit in results)
    assert all(isinstance(line, str) and line for hit in results for line in hit.why)


def test_modes_really_differ(engine, blue_top):
    image = [h.item_id for h in engine.search(image=blue_top["path"], text=NEUTRAL, mode="image", k=10)]
    text = [h.item_id for h in engine.search(image=blue_top["path"], text=NEUTRAL, mode="text", k=10)]
    assert image != text and image[0] == blue_top["id"]


def test_in_red_turns_a_blue_reference_into_red_items_only(engine, blue_top):
    results = engine.search(image=blue_top["path"], text="in red", k=5)
    assert_ranked(results, 5)
    assert {hit.item["baseColour"] for hit in results} == {"Red"}
    assert "colour: Red" in results.applied
    assert all(any("Red" in line for line in hit.why) for hit in results)


def test_no_stripes_removes_striped_items(engine, items):
    ref = items[items["productDisplayName"].map(striped)].iloc[0]
    assert engine.search(image=ref["path"], mode="image", k=1)[0].item_id == ref["id"]  # without the tweak
    results = engine.search(image=ref["path"], text="no stripes", k=10)
    assert_ranked(results, 10)
    assert ref["id"] not in [h.item_id for h in results]
    assert not any(striped(h.item["productDisplayName"]) for h in results)
    assert "not pattern: stripe" in results.applied

    plain = int((~items["productDisplayName"].map(striped)).sum())
    everything = engine.search(text="no stripes", k=100)
    assert len(everything) == min(100, plain)
    assert not any(striped(h.item["productDisplayName"]) for h in everything)
    unguarded = engine.search(text="no stripes", k=100, guard=False)
    assert any(striped(h.item["productDisplayName"]) for h in unguarded)  # the guard did the filtering


def test_explicit_filters(engine, items):
    results = engine.search(text=NEUTRAL, k=10, filters={"gender": ["Women"], "articleType": ["Tops", "Dresses"]})
    assert_ranked(results, 10)
    assert all(h.item["gender"] in ("Women", "Unisex") and h.item["articleType"] in ("Tops", "Dresses")
               for h in results)
    watches = engine.search(filters={"articleType": ["Watches"]}, k=50)  # filters alone are a query too
    assert sorted(h.item_id for h in watches) == sorted(items[items["articleType"] == "Watches"]["id"])


def test_too_narrow_filters_give_fewer_hits_and_say_so(engine, items):
    expected = items[(items["articleType"] == "Dresses") & (items["baseColour"] == "Red")]
    assert 0 < len(expected) < 10
    results = engine.search(text="dress", filters={"baseColour": ["Red"]}, k=10)
    assert sorted(h.item_id for h in results) == sorted(expected["id"])
    assert any(note.startswith(f"Only {len(expected)} item") and "colour: Red" in note for note in results.notes)
    # An unknown value used to give 0 results silently; now it says what the choices are.
    with pytest.raises(InputError, match="No colour 'No Such Colour' in this catalog; choose from"):
        engine.search(text="dress", filters={"baseColour": ["No Such Colour"]}, k=10)


def test_hits_explain_themselves(engine, blue_top):
    results = engine.search(image=blue_top["path"], text="in red", k=3)
    for hit in results:
        assert any(line.startswith("looks like your photo") for line in hit.why)
        assert any(line.startswith("colour is Red") for line in hit.why)


def test_a_very_long_text_is_cut_with_a_note(engine):
    text = (NEUTRAL + ", ") * 300
    assert len(text) > 10_000
    results = engine.search(text=text, k=5)
    assert_ranked(results, 5)
    assert any("first 1000 characters" in note for note in results.notes)


def test_an_engine_without_composer_falls_back_to_concat(engine, blue_top):
    plain = Engine(engine.index, engine.encoder, composer=None)
    assert "gated" not in plain.modes
    assert plain.search(image=blue_top["path"], text=NEUTRAL, k=3).mode == "concat"
    with pytest.raises(InputError, match="unavailable mode 'gated'"):
        plain.search(image=blue_top["path"], text=NEUTRAL, mode="gated")


@pytest.mark.parametrize("kwargs,message", [
    (dict(), "Nothing to search for"),
    (dict(text="   "), "Nothing to search for"),
    (dict(image=b"\x89PNG not really"), "could not be read as an image"),
    (dict(image="/nonexistent/photo.jpg"), "not found"),
    (dict(text="red", k=0), "k must be between 1 and 100"),
    (dict(text="red", k=101), "k must be between 1 and 100"),
    (dict(text="red", weight=2), "between 0 and 1"),
    (dict(text="red", weight=-0.1), "between 0 and 1"),
    (dict(text="red", mode="blend"), "Unknown or unavailable mode 'blend'"),
    (dict(text="red", mode="image"), "needs image; please add a photo"),
    (dict(text="red", mode="sum"), "please add a photo"),
    # review fixes: wrong types are InputErrors too, not bare Python errors
    (dict(text=5), "The text must be a string"),
    (dict(text="red", k="ten"), "k must be a whole number"),
    (dict(text="red", k=None), "k must be a whole number"),
    (dict(text="red", k=2.5), "k must be a whole number"),
    (dict(text="red", weight="abc"), "text weight must be a number"),
    (dict(image=np.zeros((0, 0, 3), np.uint8)), "image"),
    (dict(text="red", filters={"colour": ["Red"]}), "Unknown filter 'colour'"),
    (dict(text="red", filters={"baseColour": ["Plaid"]}), "No colour 'Plaid'"),
])
def test_unusable_queries_are_input_errors(engine, kwargs, message):
    with pytest.raises(InputError, match=message):
        engine.search(**kwargs)


def test_a_single_filter_value_is_one_value(engine):
    hits = engine.search(text="something nice", filters={"gender": "women"}, k=5)
    assert hits and all(h.item["gender"] in ("Women", "Unisex") for h in hits)
    assert hits.applied == ["gender: Women"]


def test_photo_alone_and_with_words_use_the_reading(read_engine, blue_top):
    alone = read_engine.search(image=blue_top["path"])
    assert alone.mode == "guided" and alone.reading is not None and alone.plan.changed == {}
    tweaked = read_engine.search(image=blue_top["path"], text="in red")
    assert tweaked.mode == "guided" and "colour" in tweaked.plan.changed
    assert all(h.item["baseColour"] == "Red" for h in tweaked)
    assert read_engine.search(text="red shirt").reading is None  # no photo, nothing read


def test_photo_only_with_text_modes_asks_for_text(engine, blue_top):
    with pytest.raises(InputError, match="please add a text"):
        engine.search(image=blue_top["path"], mode="text")


def test_item_lookup(engine, items):
    first = int(items["id"].iloc[0])
    assert engine.item(first)["id"] == first
    with pytest.raises(InputError, match="No item 1 "):
        engine.item(1)


def test_warm_up_runs_a_search_and_an_outfit_and_survives_a_missing_photo(read_engine, tmp_path, monkeypatch,
                                                                            caplog):
    calls = []
    search, complete = read_engine.search, read_engine.complete
    monkeypatch.setattr(read_engine, "search", lambda **kw: calls.append(("search", kw)) or search(**kw))
    monkeypatch.setattr(read_engine, "complete", lambda **kw: calls.append(("complete", kw)) or complete(**kw))
    read_engine.warm_up()
    assert [name for name, _ in calls] == ["search", "complete"] and calls[1][1]["planner"] == "rules"
    monkeypatch.setattr(read_engine, "items", read_engine.items.assign(path=str(tmp_path / "gone.jpg")))
    read_engine.warm_up()  # a photo deleted since indexing: a warning, not a failed start
    assert "Warm-up skipped" in caplog.text
