"""One loading path for the project's own encoder and for CLIP checkpoints; vectors and errors."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import make_tiny_clip
from PIL import Image

from fashion_rag.encoding.encoder import load_encoder
from fashion_rag.errors import ModelLoadError

TEXTS = ["red dress for women", "men's black leather belt", "a", "blue denim jeans, casual wear " * 6]


@pytest.fixture(scope="module", params=["own", "clip"])
def encoder(request, tiny_encoder, tiny_clip_dir):
    folder = tiny_encoder if request.param == "own" else tiny_clip_dir
    return request.param, load_encoder(folder)


@pytest.fixture(scope="module")
def image_paths(catalog_dir):
    return [str(catalog_dir / "images" / f"{i}.jpg") for i in (10000, 10003, 10011, 10020, 10037)]


def assert_unit_rows(vectors: np.ndarray, rows: int, dim: int):
    assert vectors.dtype == np.float32 and vectors.shape == (rows, dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_both_kinds_load_through_one_path_with_their_own_dimension(encoder):
    kind, enc = encoder
    assert enc.dim == (256 if kind == "own" else 32)
    assert type(enc.model).__name__ == ("FashionEncoderModel" if kind == "own" else "CLIPModel")
    assert not enc.model.training


def test_image_vectors_are_unit_float32_for_paths_and_pil_images(encoder, image_paths):
    _, enc = encoder
    from_paths = enc.encode_images(image_paths)
    assert_unit_rows(from_paths, len(image_paths), enc.dim)
    pictures = [Image.open(p) for p in image_paths]
    assert np.allclose(enc.encode_images(pictures), from_paths, atol=1e-5)
    assert not np.allclose(from_paths[0], from_paths[1])  # different photos, different vectors
    assert enc.encode_images([]).shape == (0, enc.dim)


def test_text_vectors_are_unit_float32_and_distinct(encoder):
    _, enc = encoder
    vectors = enc.encode_texts(TEXTS)
    assert_unit_rows(vectors, len(TEXTS), enc.dim)
    assert not np.allclose(vectors[0], vectors[1])
    assert_unit_rows(enc.encode_texts(["word " * 5000]), 1, enc.dim)  # over-long text is truncated


def test_batches_give_the_same_vectors_as_one_by_one(encoder, image_paths):
    _, enc = encoder
    batch = enc.encode_images(image_paths, batch_size=3)
    single = np.vstack([enc.encode_images([p]) for p in image_paths])
    assert np.abs(batch - single).max() < 1e-5
    texts = enc.encode_texts(TEXTS, batch_size=2)  # padding differs between these batches
    alone = np.vstack([enc.encode_texts([t]) for t in TEXTS])
    assert np.abs(texts - alone).max() < 1e-5


def test_a_missing_folder_says_how_to_make_or_choose_one(tmp_path):
    with pytest.raises(ModelLoadError) as error:
        load_encoder(tmp_path / "no-such-encoder")
    message = str(error.value)
    assert str(tmp_path / "no-such-encoder") in message
    assert "scripts/train_encoder.py" in message and "FASHION_RAG_MODEL" in message and "--model" in message


def test_a_folder_that_is_not_a_checkpoint_is_a_model_load_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=f"the local folder {tmp_path}"):
        load_encoder(tmp_path)


def test_an_unreachable_hub_id_is_a_model_load_error_naming_what_was_tried():
    # conftest sets HF_HUB_OFFLINE=1, so this fails at once instead of retrying the network.
    with pytest.raises(ModelLoadError) as error:
        load_encoder("no-such-org/no-such-fashion-clip")
    message = str(error.value)
    assert "hub id 'no-such-org/no-such-fashion-clip'" in message
    assert "FASHION_RAG_MODEL" in message and "--model" in message


def test_weights_hash_tells_checkpoints_apart(tmp_path, tiny_encoder, tiny_clip_dir):
    own, clip = load_encoder(tiny_encoder), load_encoder(tiny_clip_dir)
    assert own.weights_hash == load_encoder(tiny_encoder).weights_hash  # stable across loads
    other_clip = load_encoder(make_tiny_clip(tmp_path / "other-clip", seed=1))  # same shapes, other seed
    assert len({own.weights_hash, clip.weights_hash, other_clip.weights_hash}) == 3


def test_prepare_with_a_hub_model_loads_it_instead_of_training_one(tmp_path, monkeypatch):
    """FASHION_RAG_MODEL set to a hub id (a Space with a CLIP checkpoint): prepare() loads it (here:
    offline, so a clear error at once) and never trains the default encoder in its place."""
    from fashion_rag import prepare as prepare_module
    from fashion_rag import settings

    def no_training(argv):
        raise AssertionError(f"trained an encoder: {argv}")

    monkeypatch.setattr("fashion_rag.training.train_encoder.main", no_training)
    monkeypatch.setattr(settings, "MODEL", "patrickjohncyh/fashion-clip")
    with pytest.raises(ModelLoadError, match="patrickjohncyh/fashion-clip"):
        prepare_module.prepare(index_dir=tmp_path / "index")
    assert not (tmp_path / "index").exists()
