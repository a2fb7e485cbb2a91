"""The photo reader: garment-region colour statistics, the trained heads on real catalog shots and
real user photos, corrections, and photo + tweak keeping the garment type on real uploads."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_rag import settings
from fashion_rag.data.catalog import type_group
from fashion_rag.data.images import load_image
from fashion_rag.data.photos import load_photos
from fashion_rag.encoding.colour import garment_mask, pixel_features, thumbnail
from fashion_rag.encoding.reader import (
    ATTRIBUTES,
    PhotoReader,
    Reading,
    calibration_error,
    pattern_of,
    top_label,
)
from fashion_rag.errors import InputError
from fashion_rag.training.train_reader import hand_labelled, main as train_reader

LABELS = ["dress", "shoes", "pants", "t-shirt", "shorts", "skirt", "hat", "shirt"]


def catalog_photo(item_id: int) -> Image.Image:
    return load_image(settings.CATALOG_DIR / "images" / f"{item_id}.jpg")


@pytest.fixture(scope="module")
def uploads():
    """Three validation photos of each of eight labels (never trained on)."""
    photos = load_photos("validation", [settings.USER_PHOTOS_DIR])
    return photos[photos["label"].isin(LABELS)].groupby("label").head(3).reset_index(drop=True)


def test_the_garment_region_leaves_out_a_plain_background():
    photo = np.full((48, 48, 3), 250.0)  # white studio background
    photo[12:36, 14:34] = [200.0, 20.0, 30.0]  # a red garment
    weights = garment_mask(photo)
    assert weights[24, 24] > 0.5 and weights[2, 2] < 0.01 and weights[24, 4] < 0.01


def test_pixel_features_tell_colours_apart_on_real_catalog_shots(real_engine):
    items = real_engine.items
    red = items[(items["baseColour"] == "Red") & (items["articleType"] == "Tshirts")]["id"].head(5)
    blue = items[(items["baseColour"] == "Blue") & (items["articleType"] == "Tshirts")]["id"].head(5)
    features = {c: np.stack([pixel_features(thumbnail(catalog_photo(i))) for i in ids]) for c, ids in
                (("red", red), ("blue", blue))}
    for rows in features.values():
        assert np.allclose(rows.sum(1), 1.0, atol=1e-5)
    within = np.abs(features["red"][:, None] - features["red"][None]).sum(-1).mean()
    across = np.abs(features["red"][:, None] - features["blue"][None]).sum(-1).mean()
    assert across > within


def test_pattern_comes_from_the_product_name():
    assert pattern_of("Men Striped Polo T-shirt") == "striped"
    assert pattern_of("Women Checked Shirt") == "checked"
    assert pattern_of("Printed Kurta") == "printed"
    assert pattern_of("Men Black Jeans") == "solid"


def test_reading_catalog_shots(real_engine):
    """Held-out catalog items (never trained on): type group, gender and colour mostly right."""
    items = real_engine.items
    held = items[items["id"].map(settings.is_held_out)].sample(60, random_state=0)
    readings = [real_engine.describe(path) for path in held["path"]]
    for reading in readings:
        for attribute in ATTRIBUTES:
            confidences = [c for _, c in reading.values[attribute]]
            assert confidences == sorted(confidences, reverse=True) and 0.99 < sum(confidences) < 1.01
    accuracy = lambda attr, truth: np.mean([r.top(attr)[0] == t for r, t in zip(readings, truth)])  # noqa: E731
    assert accuracy("type", held["articleType"].map(type_group)) >= 0.8
    assert accuracy("gender", held["gender"]) >= 0.7
    assert accuracy("colour", held["baseColour"]) >= 0.4


def test_reading_real_user_photos(real_engine, uploads):
    """Phone photos on beds and floors: the type group is right for half of them or more (chance is
    about 1 in 25; scripts/evaluate.py reports the accuracy over the whole validation split)."""
    right = [real_engine.describe(path).top("type")[0] in groups
             for path, groups in zip(uploads["path"], uploads["groups"])]
    assert np.mean(right) >= 0.5, f"type read right for {sum(right)} of {len(right)} photos"


def test_confidences_can_be_taken_at_their_word(real_engine):
    """Calibrated on dev data, the type reading's stated confidence matches how often it is right
    on photos never used for training or calibration: validation uploads of both folders, and
    held-out catalog shots for gender."""
    photos = load_photos("validation").sample(160, random_state=2)
    readings = [real_engine.describe(p) for p in photos["path"]]
    confidence = np.array([r.top("type")[1] for r in readings])
    correct = np.array([r.top("type")[0] in groups for r, groups in zip(readings, photos["groups"])])
    assert abs(confidence.mean() - correct.mean()) < 0.08, (confidence.mean(), correct.mean())
    assert calibration_error(confidence, correct) < 0.12
    items = real_engine.items
    held = items[items["id"].map(settings.is_held_out)].sample(100, random_state=2)
    gender = [real_engine.describe(p).top("gender") for p in held["path"]]
    confidence = np.array([c for _, c in gender])
    correct = np.array([v == truth for (v, _), truth in zip(gender, held["gender"])])
    assert abs(confidence.mean() - correct.mean()) < 0.08, (confidence.mean(), correct.mean())


def test_gender_confidence_on_phone_photos_is_right_bin_by_bin(real_engine):
    """On the 200 hand-labelled validation uploads (a plain tee may be labelled Men or Women), the
    gender shown first is right about as often as its confidence says within each confidence bin,
    not only on average: with temperature scaling alone the gap was 0.096 against about 0.05 for
    a perfectly calibrated reader; the top-value map brings it near that."""
    hand = hand_labelled("validation")
    tops = [real_engine.describe(p).top("gender") for p in hand["path"]]
    confidence = np.array([c for _, c in tops])
    correct = np.array([v in allowed for (v, _), allowed in zip(tops, hand["genders"])])
    assert calibration_error(confidence, correct) < 0.08, calibration_error(confidence, correct)


def test_calibration_error_measures_the_gap_between_confidence_and_accuracy():
    assert calibration_error(np.full(10, 0.9), np.array([1] * 9 + [0])) == pytest.approx(0.0)
    assert calibration_error(np.full(10, 0.9), np.array([1] * 5 + [0] * 5)) == pytest.approx(0.4)


def test_top_value_calibration_moves_only_the_top_value_and_keeps_the_order():
    probs = np.array([[0.5, 0.3, 0.2], [0.05, 0.9, 0.05], [1.0, 0.0, 0.0]], np.float32)
    assert top_label(probs, 1.0, 0.0) == pytest.approx(probs, abs=1e-5)
    surer = top_label(probs, 1.0, 1.0)  # the top value's odds times e: 0.5 -> 0.731
    assert surer[0] == pytest.approx([0.731, 0.161, 0.108], abs=1e-3)  # the rest keeps its 3 : 2
    assert surer.sum(1) == pytest.approx(np.ones(3)) and (surer.argmax(1) == [0, 1, 0]).all()
    humbler = top_label(probs, 0.5, -3.0)  # far below the runner-up: the top value stays first
    assert (humbler.argmax(1) == [0, 1, 0]).all() and humbler[0, 0] >= humbler[0, 1]
    assert humbler[1, 1] < 0.9 and humbler.sum(1) == pytest.approx(np.ones(3))


def test_a_close_runner_up_is_offered_beside_the_top_value():
    reading = Reading({"type": [("sandals", 0.46), ("shoes", 0.40), ("heels", 0.14)],
                       "gender": [("Women", 0.9), ("Men", 0.1)]})
    assert reading.candidates("type") == ["sandals", "shoes"]
    assert reading.candidates("gender") == ["Women"]
    reading.corrected = ("type",)
    assert reading.candidates("type") == ["sandals"]  # the shopper has picked


def test_the_page_offers_both_values_and_says_not_sure():
    from types import SimpleNamespace

    from fashion_rag.ui.query import reading_line
    reading = Reading({"type": [("sandals", 0.46), ("shoes", 0.40), ("heels", 0.14)],
                       "gender": [("Women", 0.42), ("Men", 0.2), ("Unisex", 0.19), ("Boys", 0.19)],
                       "colour": [("Black", 0.8), ("Brown", 0.2)], "pattern": [("solid", 0.9), ("printed", 0.1)]})
    line = reading_line(SimpleNamespace(reading=reading, plan=None))
    assert "sandals _46%_ or shoes _40%_?" in line and "Black _80%_" in line and "solid _90%_" in line
    assert "gender not sure" in line and "Women" not in line  # a guess is not shown as a fact


def test_a_torn_reading_keeps_both_types_until_the_shopper_picks(real_engine):
    from fashion_rag.retrieval.guard import Constraints
    from fashion_rag.retrieval.tweak import plan, prior
    reading = Reading({"type": [("sandals", 0.46), ("shoes", 0.40), ("heels", 0.14)],
                       "gender": [("Women", 0.9), ("Men", 0.1)], "colour": [("Black", 0.3), ("Brown", 0.2)],
                       "pattern": [("solid", 0.9), ("printed", 0.1)]})
    the_plan = plan(reading, Constraints(), "for summer")
    assert "sandals or shoes" in the_plan.text
    assert "kept from your photo: type sandals or shoes" in " ".join(the_plan.describe())
    bonus = prior(the_plan, real_engine.searcher._codes, real_engine.reader.classes)
    classes, codes = real_engine.reader.classes["type"], real_engine.searcher._codes["type"]
    women = real_engine.items["gender"].to_numpy() == "Women"
    best = {c: bonus[(codes == classes.index(c)) & women].max() for c in ("sandals", "shoes", "heels")}
    assert best["sandals"] == pytest.approx(best["shoes"])  # both kept alike
    assert best["heels"] < best["shoes"]


def test_describe_gives_ranked_pairs_and_takes_corrections(real_engine, uploads):
    path = uploads["path"].iloc[0]
    reading = real_engine.describe(path)
    summary = reading.as_dict()
    assert set(summary) == {*ATTRIBUTES, "corrected"} and summary["corrected"] == []
    assert all(isinstance(p["value"], str) and 0 <= p["confidence"] <= 1 for p in summary["colour"])
    fixed = real_engine.describe(path, corrections={"colour": "red", "type": "dress"})
    assert fixed.top("colour") == ("Red", 1.0) and fixed.top("type") == ("dress", 1.0)
    assert set(fixed.corrected) == {"colour", "type"}
    assert fixed.top("gender") == reading.top("gender")  # the rest is as read
    with pytest.raises(InputError, match="not a colour the reader knows"):
        real_engine.describe(path, corrections={"colour": "plaid"})
    with pytest.raises(InputError, match="Unknown attribute 'fabric'"):
        real_engine.describe(path, corrections={"fabric": "silk"})


def test_photo_and_tweak_keep_the_garment_type_on_real_uploads(real_engine, uploads):
    """The issue's case: a dress photo + "in red" must give red dresses, not red socks. Over real
    uploads, auto (guided) keeps the type in nine results of ten, as often as the gated composer
    (within one photo in fifty: with the pretrained backbone both are near 0.92, from 0.55). The
    catalog has only 3 red dresses, so precision counts against min(10, red items of the photo's type)."""
    items = real_engine.items
    groups_of = items["articleType"].map(type_group)
    type_precision = {"auto": [], "gated": []}
    for path, groups in zip(uploads["path"], uploads["groups"]):
        available = int((groups_of.isin(groups) & (items["baseColour"] == "Red")).sum())
        for mode in type_precision:
            hits = real_engine.search(image=path, text="in red", mode=mode, k=10)
            assert all(h.item["baseColour"] == "Red" for h in hits)  # the tweak is obeyed
            kept = sum(type_group(h.item["articleType"]) in groups for h in hits)
            type_precision[mode].append(kept / min(10, available))
    auto, gated = np.mean(type_precision["auto"]), np.mean(type_precision["gated"])
    assert auto >= 0.85 and auto >= gated - 0.02, (auto, gated)


def test_a_corrected_type_steers_the_results(real_engine, uploads):
    path = uploads[uploads["label"] == "t-shirt"]["path"].iloc[0]
    results = real_engine.search(image=path, text="in black", corrections={"type": "shorts"})
    assert results.reading.top("type") == ("shorts", 1.0) and "type" in results.reading.corrected
    assert np.mean([h.item["articleType"] == "Shorts" for h in results]) >= 0.8
    assert all(h.item["baseColour"] == "Black" for h in results)


def test_a_low_confidence_reading_never_empties_the_results(real_engine):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8))
    results = real_engine.search(image=noise, text="for summer", k=12)
    assert results.mode == "guided" and len(results) == 12
    assert all(h.item["season"] == "Summer" for h in results)


def test_plan_says_what_is_kept_and_what_changes(real_engine, uploads):
    path = uploads[uploads["label"] == "dress"]["path"].iloc[0]
    results = real_engine.search(image=path, text="in softer colours, no stripes")
    assert set(results.plan.changed) == {"colour", "pattern"}
    assert results.plan.kept == ["type", "gender"]
    assert any(line.startswith("your words change the colour") for line in results.applied)


def test_training_the_reader_again_gives_the_same_reader(small_index, tmp_path):
    """Every random start is seeded, so what a fresh machine trains is what was chosen on dev and
    evaluated, whatever else ran before in the process (once, the first candidate's heads started
    from the process's unseeded state, and the type head's input flipped between runs)."""
    runs = []
    for before in (1, 2):
        torch.manual_seed(before)  # what earlier work in the process left behind
        out = train_reader(["--index", str(small_index), "--out", str(tmp_path / str(before)), "--epochs", "3",
                            "--no-user-photos"])
        config = json.loads((out / "config.json").read_text())
        runs.append(({key: config[key] for key in ("dev_comparison", "features", "temperatures", "top_maps")},
                     torch.load(out / "heads.pt", weights_only=True)))
    (settings_a, heads_a), (settings_b, heads_b) = runs
    assert settings_a == settings_b
    assert heads_a.keys() == heads_b.keys() and all(torch.equal(heads_a[k], heads_b[k]) for k in heads_a)


def test_the_reader_is_tied_to_its_encoder(small_reader, read_engine):
    assert PhotoReader.load(small_reader, "another-encoder-hash") is None
    assert read_engine.reader is not None and "guided" in read_engine.modes


def test_describe_without_a_reader_is_a_clear_error(engine):
    with pytest.raises(InputError, match="no photo reader"):
        engine.describe(settings.CATALOG_DIR / "images" / "10360.jpg")


def test_a_portrait_photo_is_also_read_whole_on_a_padded_square(real_engine, uploads):
    """The processor's centre crop cuts a portrait phone photo's top and bottom; the encoder also
    looks at the photo padded to a square and reads the two views' mean."""
    from fashion_rag.encoding.encoder import squared, views
    encoder = real_engine.encoder
    picture = load_image(uploads["path"][0])
    assert picture.size[0] < picture.size[1]
    pair = views(picture)
    assert len(pair) == 2 and pair[1].size[0] == pair[1].size[1] == max(picture.size)
    assert pair[1].getpixel((0, 0)) != (0, 0, 0)  # padded with the photo's border colour, not black
    vector, features = encoder.look_at_photo(picture)
    vectors, each = encoder.look(encoder.preprocess(pair))
    assert np.allclose(features, each.mean(0), atol=1e-5)
    assert np.allclose(vector, vectors.mean(0) / np.linalg.norm(vectors.mean(0)), atol=1e-5)
    assert not np.allclose(each[0], each[1], atol=1e-2)  # the two views do differ
    square = squared(picture)
    assert views(square) == [square]  # a square photo is looked at once
    assert np.allclose(real_engine.describe(picture).top("type")[1],
                       real_engine.reader.read(features, picture).top("type")[1], atol=1e-6)
