"""The offline index: build, manifest, incremental update, index types, damaged and stale indexes."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest

from fashion_rag.data.catalog import fingerprint, load_catalog
from fashion_rag.engine import load_engine
from fashion_rag.errors import FashionRagError, IndexMissingError, StaleIndexError
from fashion_rag.retrieval.index import FILES, build_index, load_index


def copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_build_writes_the_index_folder_and_an_honest_manifest(small_index, small_catalog, tiny_encoder, engine):
    assert {p.name for p in small_index.iterdir()} == set(FILES.values())  # no leftover .building
    manifest = json.loads((small_index / "manifest.json").read_text())
    n = len(small_catalog.items)
    assert manifest["model"] == str(tiny_encoder)
    assert manifest["model_hash"] == engine.encoder.weights_hash
    assert manifest["dim"] == 256 and manifest["index_type"] == "flat"
    assert manifest["items"] == manifest["encoded"] == n and manifest["reused"] == 0
    assert manifest["catalog"] == str(small_catalog.csv.resolve())
    table = load_catalog(small_catalog.csv, check_images=False).items  # every row, image or not
    assert manifest["catalog_fingerprint"] == fingerprint(table)
    assert engine.warnings == []  # a row whose image is missing does not make the catalog look changed
    assert time.strptime(manifest["built_at"][:19], "%Y-%m-%dT%H:%M:%S")
    assert manifest["build_seconds"] >= 0
    assert manifest["skipped"] == {"required field empty": [str(small_catalog.malformed_id)],
                                   "image file missing": [str(small_catalog.missing_image_id)],
                                   "image unreadable": [str(small_catalog.corrupt_image_id)]}
    index = load_index(small_index)
    assert index.store.count() == n and index.vectors.shape == (n, 512) and index.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(index.vectors[:, :256], axis=1), 1, atol=1e-5)  # image half
    assert np.allclose(np.linalg.norm(index.vectors[:, 256:], axis=1), 1, atol=1e-5)  # caption half
    assert index.items["id"].tolist() == small_catalog.ids
    assert index.items["caption"].str.len().min() > 5


def test_stored_vectors_are_the_encoders_vectors(small_index, small_catalog, engine):
    index = load_index(small_index)
    row = 17
    item = index.items.iloc[row]
    image = engine.encoder.encode_images([item["path"]])[0]
    text = engine.encoder.encode_texts([item["caption"]])[0]
    assert np.allclose(index.vectors[row], np.concatenate([image, text]), atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_index_types_find_what_flat_finds(small_index, engine, tmp_path, kind):
    folder = copy_index(small_index, tmp_path / kind)
    # Same weights, so --update reuses every stored vector and only the FAISS structure is rebuilt.
    manifest = build_index(json.loads((small_index / "manifest.json").read_text())["catalog"], engine.encoder,
                           folder, index_type=kind, update=True, progress=False)
    assert manifest["index_type"] == kind and manifest["encoded"] == 0
    approximate, flat = load_index(folder), load_index(small_index)
    structure = faiss.downcast_index(approximate.store.index)
    assert isinstance(structure, faiss.IndexHNSWFlat if kind == "hnsw" else faiss.IndexRefine)
    flat_scores, flat_ids = flat.store.search(flat.vectors, 2)
    scores, ids = approximate.store.search(flat.vectors, 1)
    assert np.allclose(scores[:, 0], flat_scores[:, 0], atol=1e-4)
    clear = flat_scores[:, 0] - flat_scores[:, 1] > 1e-4  # no tie for first place
    assert clear.sum() > 100 and np.array_equal(ids[clear, 0], flat_ids[clear, 0])
    assert np.array_equal(flat_ids[clear, 0], flat.items["id"][clear])  # each item finds itself


def test_update_encodes_only_new_rows_and_notices_catalog_edits(small_index, small_catalog, engine, tmp_path):
    csv = tmp_path / "catalog" / "styles.csv"
    csv.parent.mkdir()
    shutil.copy(small_catalog.csv, csv)
    folder = copy_index(small_index, tmp_path / "index")
    n = len(small_catalog.items)

    same = build_index(csv, engine.encoder, folder, update=True, progress=False)
    assert (same["encoded"], same["reused"], same["items"]) == (0, n, n)  # nothing new: nothing encoded

    # An edited row: the index still works but says it is out of date.
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    edited = int(table.loc[3, "id"])
    table.loc[3, "productDisplayName"] = "Renamed By The Merchandiser"
    table.to_csv(csv, index=False)
    stale = load_engine(folder)
    assert len(stale.warnings) == 1 and "--update" in stale.warnings[0]
    results = stale.search(text="something comfortable to wear", k=5)
    assert len(results) == 5 and stale.warnings[0] not in results.notes  # for the operator, not shoppers

    # Five new real rows: only those are encoded; they are searchable right after.
    pd.concat([table, small_catalog.spare]).to_csv(csv, index=False)
    manifest = build_index(csv, engine.encoder, folder, update=True, progress=False)
    assert manifest["encoded"] == 5 and manifest["reused"] == n and manifest["items"] == n + 5
    fresh = load_engine(folder)
    assert fresh.warnings == []
    assert fresh.item(edited)["productDisplayName"] == "Renamed By The Merchandiser"
    for _, row in small_catalog.spare.iterrows():
        hits = fresh.search(image=row["image"], mode="image", k=1)
        assert hits[0].item_id == int(row["id"])


def test_a_missing_index_says_how_to_build_it(tmp_path):
    with pytest.raises(IndexMissingError, match="scripts/build_index.py"):
        load_index(tmp_path / "nothing-here")


MANIFEST_DAMAGE = {"random bytes manifest": bytes(range(256)) * 4, "not json manifest": b"not json {",
                   "list manifest": b"[]", "empty manifest": b"", "manifest without a field": b'{"format": 1, "items": 3}'}


@pytest.mark.parametrize("damage", ["truncated faiss", "garbage faiss", "missing vectors", "short items",
                                    "truncated vectors", *MANIFEST_DAMAGE])
def test_a_damaged_index_is_reported_as_such(small_index, tmp_path, damage):
    folder = copy_index(small_index, tmp_path / "index")
    faiss_file = folder / "items.faiss"
    if damage in MANIFEST_DAMAGE:
        (folder / "manifest.json").write_bytes(MANIFEST_DAMAGE[damage])
    elif damage == "truncated vectors":
        vectors = folder / "vectors.npy"
        vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    elif damage == "truncated faiss":
        faiss_file.write_bytes(faiss_file.read_bytes()[: faiss_file.stat().st_size // 2])
    elif damage == "garbage faiss":
        faiss_file.write_bytes(b"not a faiss index at all" * 100)
    elif damage == "missing vectors":
        (folder / "vectors.npy").unlink()
    else:
        lines = (folder / "items.csv").read_text().splitlines()
        (folder / "items.csv").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(IndexMissingError, match="damaged|inconsistent") as error:
        load_index(folder)
    assert "rebuild" in str(error.value) and str(folder) in str(error.value)


def test_an_index_of_an_old_format_asks_for_a_rebuild(small_index, tmp_path):
    folder = copy_index(small_index, tmp_path / "index")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": 0}))
    with pytest.raises(IndexMissingError, match="old format"):
        load_index(folder)


def test_an_index_built_with_other_weights_is_stale(small_index, tiny_clip_dir):
    with pytest.raises(StaleIndexError, match="other encoder weights") as error:
        load_engine(small_index, model=str(tiny_clip_dir))
    assert "build_index.py" in str(error.value)


def test_a_catalog_with_no_usable_item_is_a_clear_error(small_catalog, engine, tmp_path):
    table = pd.read_csv(small_catalog.csv, dtype=str, keep_default_na=False)
    only_corrupt = table[table["id"] == str(small_catalog.corrupt_image_id)]
    only_corrupt.to_csv(tmp_path / "styles.csv", index=False)
    with pytest.raises(FashionRagError, match="No catalog item could be indexed"):
        build_index(tmp_path / "styles.csv", engine.encoder, tmp_path / "index", progress=False)
    assert not (tmp_path / "index" / "manifest.json").exists()


def test_prepare_rebuilds_a_damaged_index_and_says_so(small_index, small_catalog, tiny_encoder, small_composer,
                                                      small_reader, tmp_path, monkeypatch, capsys):
    from fashion_rag import settings
    from fashion_rag.prepare import prepare
    monkeypatch.setattr(settings, "COMPOSER_DIR", small_composer)  # trained for the tiny encoder: kept
    monkeypatch.setattr(settings, "READER_DIR", small_reader)
    folder = copy_index(small_index, tmp_path / "index")
    (folder / "manifest.json").write_bytes(bytes(range(256)))
    assert prepare(folder, small_catalog.csv.parent, str(tiny_encoder)) == {"index": "built"}
    assert f"The index in {folder} is damaged (manifest.json is not readable JSON): building it again." in \
        capsys.readouterr().out
    assert load_index(folder).manifest["items"] == len(small_catalog.items)
