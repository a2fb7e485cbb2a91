"""Personal taste on real catalog rows: the profile store (EMA, persistence, concurrency, a corrupt
file), re-ranking (exploration, passes, seen items, why), and the style quiz."""
from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest

from fashion_rag.data.catalog import type_group
from fashion_rag.data.wardrobe import family
from fashion_rag.engine import Engine
from fashion_rag.errors import InputError
from fashion_rag.taste import profiles as profiles_module
from fashion_rag.taste import ranking as taste
from fashion_rag.taste.profiles import EMA, ProfileStore

SHOPPER = "shopper-0001"


@pytest.fixture
def fresh(engine, tmp_path):
    """The small engine with a profile store of its own."""
    return Engine(engine.index, engine.encoder, engine.composer, profiles_path=tmp_path / "profiles.sqlite3")


def ids_of(items, **where) -> list[int]:
    mask = np.ones(len(items), bool)
    for column, value in where.items():
        mask &= (items[column] == value).to_numpy()
    return [int(i) for i in items["id"][mask]]


def test_the_preference_vector_is_an_ema_of_likes_minus_passes(fresh):
    a, b, c = (int(i) for i in fresh.items["id"][:3])
    for item, liked in ((a, True), (b, False), (c, True)):
        fresh.feedback(SHOPPER, item, liked)
    expected = np.zeros(fresh.index.vectors.shape[1], np.float32)
    for item, sign in ((a, 1), (b, -1), (c, 1)):
        expected = (1 - EMA) * expected + EMA * sign * fresh._vector_of(item)
    profile = fresh._profile(SHOPPER)
    assert np.allclose(profile.vector, expected, atol=1e-6)
    assert (profile.likes, profile.passes, profile.liked, set(profile.passed)) == (2, 1, {a, c}, {b})


def test_a_profile_learns_a_colour_and_says_so(fresh):
    red = ids_of(fresh.items, baseColour="Red")
    others = [i for i in ids_of(fresh.items, articleType="Tshirts") if i not in red][:4]
    for item in red[:5]:
        fresh.feedback(SHOPPER, item, True)
    summary = fresh.feedback(SHOPPER, others[0], False)
    assert summary["colours"][0] == "Red" and summary["likes"] == 5 and summary["passes"] == 1
    hits = fresh.search(text="a top", k=6, profile=SHOPPER)
    red_ranks = lambda results: [r for r, h in enumerate(results) if h.item["baseColour"] == "Red"]  # noqa: E731
    liked, plain = red_ranks(hits), red_ranks(fresh.search(text="a top", k=6))
    assert len(liked) > len(plain) or (liked and plain and liked[0] < plain[0])  # more reds, or higher up
    assert any(any(w.startswith("your taste") and "Red" in w for w in h.why) for h in hits)


def test_without_a_profile_search_is_as_before(fresh):
    for item in ids_of(fresh.items, baseColour="Red")[:5]:
        fresh.feedback(SHOPPER, item, True)
    plain = [(h.item_id, round(h.score, 6)) for h in fresh.search(text="shoes for men", k=8)]
    again = [(h.item_id, round(h.score, 6)) for h in fresh.search(text="shoes for men", k=8, profile=None)]
    assert plain == again


def test_a_new_profile_gets_exploration_slots_that_say_so(fresh):
    k = 10
    hits = fresh.search(text="a shirt", k=k, profile="newcomer-1")
    new = [h for h in hits if "something new, to learn your taste" in h.why]
    assert len(new) == taste.exploration_slots(0, k) > 0
    assert hits[-len(new):] == new  # the last places
    assert taste.exploration_slots(40, k) == 0  # with much feedback, none
    assert taste.weights(0) == (0.0, 0.0)  # and no personal weight for a new profile


def test_affinities_learn_what_sets_liked_items_apart_not_what_all_rated_items_share(fresh):
    tees = fresh.items[fresh.items["articleType"] == "Tshirts"]
    for colour, liked in (("Red", True), ("Blue", False), ("Red", True), ("Blue", False)):
        fresh.feedback(SHOPPER, ids_of(tees, baseColour=colour)[len(fresh._profile(SHOPPER).passed)], liked)
    affinity = fresh._profile(SHOPPER).affinity
    assert affinity["baseColour"]["Red"] > 0.2 and affinity["baseColour"]["Blue"] < -0.2
    assert abs(affinity["articleType"]["Tshirts"]) < 0.05  # every rated item was a t-shirt
    assert fresh.taste(SHOPPER)["colours"] == ["Red"] and fresh.taste(SHOPPER)["types"] == []


def test_a_profile_learns_a_pattern_from_product_names(fresh):
    names = fresh.items["productDisplayName"].str.lower()
    striped = [int(i) for i in fresh.items["id"][names.str.contains("stripe")]][:2]
    plain = [int(i) for i in fresh.items["id"][names.str.contains("solid")]][:2]
    assert len(striped) == len(plain) == 2
    for item in plain:
        fresh.feedback(SHOPPER, item, False)
    for item in striped:
        summary = fresh.feedback(SHOPPER, item, True)
    assert summary["patterns"] == ["striped"]


def test_a_shopper_who_only_passes_keeps_exploring_new_colours(fresh):
    k, rated = 5, set()
    for _ in range(2):
        hits = fresh.search(text="a t-shirt", k=k, profile=SHOPPER)
        new = [h for h in hits if "something new, to learn your taste" in h.why]
        assert len(new) == taste.exploration_slots(0, k) > 0  # exploration decays with likes only
        assert all(type_group(h.item["articleType"]) == "t-shirt" for h in hits)  # still the query's
        assert {h.item["baseColour"] for h in new} - rated  # a colour not rated before
        for hit in hits:
            fresh.feedback(SHOPPER, hit.item_id, False)
            rated.add(hit.item["baseColour"])


def test_exploration_after_likes_offers_colours_not_rated_yet(real_engine, tmp_path):
    """On the whole catalog, where the personal ranking's top few hundred soon hold nothing but
    the liked colour, the exploration slots still bring colours the shopper has not rated."""
    shop = Engine(real_engine.index, real_engine.encoder, real_engine.composer, real_engine.reader,
                  profiles_path=tmp_path / "profiles.sqlite3")
    first = shop.search(text="a shirt for men", k=10, profile=SHOPPER)
    liked = Counter(h.item["baseColour"] for h in first).most_common(1)[0][0]  # the colour most shown
    for hit in first:
        shop.feedback(SHOPPER, hit.item_id, hit.item["baseColour"] == liked)
    assert shop.taste(SHOPPER)["colours"][0] == liked
    rated = {h.item["baseColour"] for h in first}
    hits = shop.search(text="a shirt for men", k=10, profile=SHOPPER)
    new = [h for h in hits if "something new, to learn your taste" in h.why]
    assert len(new) == taste.exploration_slots(shop._profile(SHOPPER).likes, 10) > 0
    assert all(h.item["baseColour"] not in rated and h.item["articleType"] == "Shirts" for h in new)


def test_passed_items_are_left_out_and_for_good_after_two_passes(fresh, monkeypatch):
    query = dict(text="a t-shirt", k=5)
    first = [h.item_id for h in fresh.search(**query)]
    once, twice = first[0], first[1]
    fresh.feedback(SHOPPER, once, False)
    fresh.feedback(SHOPPER, twice, False)
    fresh.feedback(SHOPPER, twice, False)
    shown = [h.item_id for h in fresh.search(**query, profile=SHOPPER)]
    assert once not in shown and twice not in shown
    monkeypatch.setattr(taste, "PASS_WINDOW", 0.0)  # the recency window has passed
    monkeypatch.setattr(taste, "EPSILON", 0.0)
    pool = [h.item_id for h in fresh.search(text="a t-shirt", k=40, profile=SHOPPER)]
    assert once in pool and twice not in pool


def test_items_shown_lately_are_pushed_down(fresh, monkeypatch):
    monkeypatch.setattr(taste, "EPSILON", 0.0)
    first = [h.item_id for h in fresh.search(text="casual shoes", k=5, profile=SHOPPER)]
    second = [h.item_id for h in fresh.search(text="casual shoes", k=5, profile=SHOPPER)]
    assert len(set(first) & set(second)) < len(first)


def test_the_quiz_is_diverse_and_seeds_the_profile(fresh):
    from fashion_rag.data.wardrobe import ROLE_TYPES
    from fashion_rag.taste.quiz import QUIZ_ROUNDS
    rounds = [fresh.quiz(r) for r in range(3)]
    for roles, hits in zip(QUIZ_ROUNDS, rounds):
        kinds = fresh.items[fresh.items["articleType"].isin([t for r in roles for t in ROLE_TYPES[r]])]
        assert len(hits) == 8 and len({h.item_id for h in hits}) == 8
        groups = {type_group(h.item["articleType"]) for h in hits}
        assert len(groups) >= min(3, kinds["articleType"].map(type_group).nunique())
        assert len({family(h.item["baseColour"]) for h in hits}) >= 3
    assert {h.item["articleType"] for h in rounds[2]} <= {
        "Casual Shoes", "Sports Shoes", "Formal Shoes", "Heels", "Flats", "Sandals", "Sports Sandals",
        "Flip Flops", "Handbags", "Clutches", "Backpacks", "Laptop Bag", "Messenger Bag", "Duffel Bag",
        "Watches", "Belts", "Sunglasses", "Ties", "Caps", "Hat", "Scarves", "Mufflers", "Stoles", "Cufflinks"}
    picked = rounds[0][0]
    fresh.feedback(SHOPPER, picked.item_id, True, source="quiz")
    assert fresh.taste(SHOPPER)["types"] == [picked.item["articleType"]]
    with pytest.raises(InputError):
        fresh.quiz(7)


def test_profiles_survive_a_restart(fresh):
    item = int(fresh.items["id"][0])
    fresh.feedback(SHOPPER, item, True)
    again = Engine(fresh.index, fresh.encoder, profiles_path=fresh.profiles_path)  # a new process, same file
    assert again.taste(SHOPPER)["likes"] == 1 and item in again._profile(SHOPPER).liked
    assert again.forget(SHOPPER) == 1 and again.taste(SHOPPER)["likes"] == 0


def test_concurrent_feedback_loses_nothing(fresh):
    items = [int(i) for i in fresh.items["id"][:25]]

    def shopper(n: int) -> None:
        for i in range(125):
            fresh.feedback(f"thread-shopper-{n}", items[i % 25], i % 3 != 0)

    threads = [threading.Thread(target=shopper, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    histories = fresh.profiles
    assert sum(len(histories.events(f"thread-shopper-{n}")) for n in range(8)) == 1000


def test_a_corrupt_store_is_set_aside_with_a_clear_message(tmp_path, engine):
    path = tmp_path / "profiles.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = ProfileStore(path)
    assert "could not be read" in store.warning and "fresh store" in store.warning
    assert list(tmp_path.glob("profiles.sqlite3.corrupt-*"))
    store.add_feedback(SHOPPER, int(engine.items["id"][0]), True)
    assert len(store.events(SHOPPER)) == 1
    broken = Engine(engine.index, engine.encoder, profiles_path=tmp_path / "second.sqlite3")
    (tmp_path / "second.sqlite3").write_bytes(b"garbage" * 50)
    results = broken.search(text="red", k=3, profile=SHOPPER)  # no crash: a warning on the engine
    assert any("could not be read" in w for w in broken.warnings)
    assert not any("could not be read" in note for note in results.notes)  # shoppers see nothing of it


@pytest.mark.parametrize("call, message", [
    (lambda e: e.feedback("bad id!", 1, True), "profile id"),
    (lambda e: e.feedback(SHOPPER, 1, True), "No item 1"),
    (lambda e: e.feedback(SHOPPER, int(e.items["id"][0]), "yes"), "liked must be"),
    (lambda e: e.search(text="red", profile="x"), "profile id"),
    (lambda e: e.quiz(0, gender="Aliens"), "Unknown gender"),
])
def test_bad_input_is_an_input_error(fresh, call, message):
    with pytest.raises(InputError, match=message):
        call(fresh)


def test_ids_are_checked():
    assert profiles_module.check_id(profiles_module.new_profile_id())
