"""Fusion: one query vector per mode for the [image ; caption] index, and the gated composer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fashion_rag.encoding.fusion import MODES, GatedComposer, query_vector

DIM = 32


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


IMAGE, TEXT = unit(1), unit(2)


@pytest.fixture(scope="module")
def composer():
    torch.manual_seed(0)
    return GatedComposer(DIM, hidden=64).eval()


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_one_float32_vector_of_twice_the_dimension(mode, composer):
    query = query_vector(mode, IMAGE, TEXT, 0.5, composer)
    assert query.shape == (2 * DIM,) and query.dtype == np.float32
    assert np.isfinite(query).all() and np.linalg.norm(query) > 0.1


def test_image_and_text_modes_leave_the_caption_half_empty():
    image = query_vector("image", IMAGE, None)
    assert np.array_equal(image[:DIM], IMAGE) and not image[DIM:].any()
    text = query_vector("text", None, TEXT)
    assert np.array_equal(text[:DIM], TEXT) and not text[DIM:].any()
    assert np.array_equal(query_vector("image", IMAGE, TEXT), image)  # a text given is ignored


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_concat_weights_the_two_halves(weight):
    query = query_vector("concat", IMAGE, TEXT, weight)
    assert np.allclose(query[:DIM], (1 - weight) * IMAGE) and np.allclose(query[DIM:], weight * TEXT)


def test_concat_without_a_photo_searches_text_against_both_halves():
    query = query_vector("concat", None, TEXT, 0.25)
    assert np.allclose(query[:DIM], 0.75 * TEXT) and np.allclose(query[DIM:], 0.25 * TEXT)


def test_sum_is_a_normalised_point_between_photo_and_text():
    query = query_vector("sum", IMAGE, TEXT, 0.4)
    expected = 0.6 * IMAGE + 0.4 * TEXT
    assert np.allclose(query[:DIM], expected / np.linalg.norm(expected), atol=1e-6)
    assert np.isclose(np.linalg.norm(query[:DIM]), 1.0) and not query[DIM:].any()
    assert np.allclose(query_vector("sum", IMAGE, TEXT, 0.0)[:DIM], IMAGE, atol=1e-6)
    assert np.allclose(query_vector("sum", IMAGE, TEXT, 1.0)[:DIM], TEXT, atol=1e-6)


def test_gated_edits_the_photo_vector(composer):
    query = query_vector("gated", IMAGE, TEXT, composer=composer)
    assert np.isclose(np.linalg.norm(query[:DIM]), 1.0, atol=1e-5) and not query[DIM:].any()
    assert not np.allclose(query[:DIM], IMAGE, atol=1e-3)
    assert not np.allclose(query_vector("gated", IMAGE, unit(3), composer=composer), query)  # text matters


def test_gated_needs_a_composer():
    with pytest.raises(ValueError, match="composer"):
        query_vector("gated", IMAGE, TEXT)


@pytest.mark.parametrize("mode,image,text", [("image", None, TEXT), ("text", IMAGE, None),
                                             ("sum", IMAGE, None), ("gated", None, TEXT), ("concat", IMAGE, None)])
def test_a_missing_part_is_a_value_error_naming_what_is_needed(mode, image, text):
    with pytest.raises(ValueError, match=f"mode '{mode}' needs"):
        query_vector(mode, image, text)


def test_an_unknown_mode_is_a_value_error():
    with pytest.raises(ValueError, match="unknown mode 'blend'"):
        query_vector("blend", IMAGE, TEXT)


def test_composer_save_and_load_round_trip(composer, tmp_path):
    composer.save(tmp_path / "composer", "hash-a", {"triplets": 7})
    loaded = GatedComposer.load(tmp_path / "composer", "hash-a")
    assert loaded is not None and not loaded.training and (loaded.dim, loaded.hidden) == (DIM, 64)
    assert np.array_equal(query_vector("gated", IMAGE, TEXT, composer=loaded),
                          query_vector("gated", IMAGE, TEXT, composer=composer))


def test_a_composer_for_other_encoder_weights_is_not_loaded(composer, tmp_path):
    composer.save(tmp_path / "composer", "hash-a", {})
    assert GatedComposer.load(tmp_path / "composer", "hash-b") is None
    assert GatedComposer.load(tmp_path / "nothing", "hash-a") is None
