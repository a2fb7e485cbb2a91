"""The vector stores (FAISS embedded, Milvus server) on real catalog rows: filters and negations
inside the search, the same top-10 as exact search, in-place --update, and stale or unreachable
stores. Milvus tests run against a real Milvus standalone (the milvus_uri fixture)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashion_rag import settings
from fashion_rag.engine import load_engine
from fashion_rag.errors import StaleIndexError, StoreUnavailableError
from fashion_rag.retrieval.guard import Constraints
from fashion_rag.retrieval.index import build_index, load_index
from fashion_rag.retrieval.store import FaissStore, make_faiss
from fashion_rag.retrieval.vector_store import Where

# Shopper wording the guard turns into filters and negations, plus explicit filters.
REQUESTS = [
    ("a red top for a party", None),
    ("shoes, but not black", None),
    ("something for women without stripes", None),
    ("a casual look", {"articleType": ["Tshirts", "Shirts"], "gender": ["Men"]}),
    ("anything except kurtas and sandals", None),
]
WHERES = [  # store-level filters: selective, broad, negated, on the name's pattern, matching nothing
    Constraints(include={"baseColour": {"Red"}}),
    Constraints(include={"gender": {"Women"}}, exclude={"pattern": {"stripe"}}),
    Constraints(exclude={"baseColour": {"Black", "White"}}),
    Constraints(include={"articleType": {"Tshirts", "Shirts"}, "gender": {"Men"}}, exclude={"baseColour": {"Blue"}}),
    Constraints(include={"pattern": {"stripe"}}),
    Constraints(include={"baseColour": {"No Such Colour"}}),
]


def exact(vectors: np.ndarray, records: list[dict], query: np.ndarray, constraints: Constraints, k: int = 10):
    """Brute force with the guard's own test of an item (Constraints.allows): the reference."""
    allowed = np.array([constraints.allows(r) for r in records])
    scores = np.where(allowed, vectors @ query, -np.inf)
    order = np.argsort(-scores, kind="stable")[:min(k, int(allowed.sum()))]
    return np.array([records[i]["id"] for i in order]), scores[order]


def assert_same_top(ids, scores, want_ids, want_scores) -> None:
    """Same scores rank by rank; same ids wherever a score is not tied with another."""
    found = ids >= 0
    assert found.sum() == len(want_ids), "a filtered search returns k items whenever k match"
    ids, scores = ids[found], scores[found]
    assert np.allclose(scores, want_scores, atol=1e-4)
    for rank, score in enumerate(want_scores):
        if np.sum(np.isclose(want_scores, score, atol=1e-4)) == 1:
            assert ids[rank] == want_ids[rank]


@pytest.fixture(scope="module")
def table(small_index):
    index = load_index(small_index)
    return index.items, index.vectors, index.items.to_dict("records")


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivfpq"])
def test_faiss_filters_inside_the_search_match_exact_search(table, index_type):
    items, vectors, records = table
    store = FaissStore(make_faiss(vectors, index_type), index_type, items["id"], items)
    for constraints in WHERES:
        for row in range(0, len(items), 17):
            scores, ids = store.search(vectors[row], 10, constraints.where())
            assert_same_top(ids[0], scores[0], *exact(vectors, records, vectors[row], constraints))


def test_where_widens_gender_to_unisex_like_the_guard():
    where = Constraints(include={"gender": {"Men"}}, exclude={"baseColour": {"Red"}}).where()
    assert where.include == {"gender": {"Men", "Unisex"}} and where.exclude == {"baseColour": {"Red"}}
    assert Constraints(include={"gender": {"Boys"}}).where().include == {"gender": {"Boys"}}
    assert not Where()


def test_engine_results_obey_filters_and_negations(engine):
    for text, filters in REQUESTS:
        results = engine.search(text=text, filters=filters, k=10, mode="concat")
        constraints = engine.guard.parse(text).merge(engine.guard.check_filters(filters))
        assert results and all(constraints.allows(hit.item) for hit in results)


def test_faiss_update_deletes_changes_and_adds_without_re_encoding(small_index, small_catalog, engine, tmp_path):
    csv, folder = _catalog_copy(small_catalog, tmp_path), tmp_path / "index"
    shutil.copytree(small_index, folder)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    gone, recoloured = int(table.loc[5, "id"]), int(table.loc[9, "id"])
    table = table.drop(index=5)
    table.loc[9, "baseColour"] = "Magenta"  # a new caption: re-encoded
    pd.concat([table, small_catalog.spare]).to_csv(csv, index=False)
    manifest = build_index(csv, engine.encoder, folder, update=True, progress=False)
    assert manifest["encoded"] == 1 + len(small_catalog.spare)
    index = load_index(folder)
    assert index.store.count() == len(index.items) == manifest["items"]
    assert gone not in set(index.items["id"]) and index.items["id"].tolist() == index.store.ids.tolist()
    _, ids = index.store.search(index.vectors[0], 10, Where({"baseColour": {"Magenta"}}))
    assert set(ids[0]) - {-1} == _magenta(index.items) and recoloured in _magenta(index.items)


def _magenta(items: pd.DataFrame) -> set[int]:
    return set(items.loc[items["baseColour"] == "Magenta", "id"].astype(int))


def _catalog_copy(small_catalog, tmp_path: Path) -> Path:
    csv = tmp_path / "catalog" / "styles.csv"
    csv.parent.mkdir(parents=True)
    shutil.copy(small_catalog.csv, csv)
    return csv


# ------------------------------------------------------------------------------ Milvus


@pytest.fixture(scope="module")
def milvus_index(milvus_uri, small_catalog, engine, tmp_path_factory):
    """small_catalog built into a Milvus collection (HNSW), the index folder beside it."""
    folder = tmp_path_factory.mktemp("milvus") / "index"
    build_index(small_catalog.csv, engine.encoder, folder, index_type="hnsw", progress=False,
                store=f"{milvus_uri}/small_items")
    return folder


@pytest.fixture
def use_store(monkeypatch):
    return lambda uri: monkeypatch.setattr(settings, "STORE", uri)


def test_milvus_filters_inside_the_search_match_exact_search(milvus_index, table, use_store, milvus_uri):
    use_store(f"{milvus_uri}/small_items")
    items, vectors, records = table
    store = load_index(milvus_index).store
    assert store.count() == len(items)
    rows = list(range(0, len(items), 11))
    for constraints in WHERES:
        scores, ids = store.search(vectors[rows], 10, constraints.where())  # one batched call
        for found_ids, found_scores, row in zip(ids, scores, rows):
            assert_same_top(found_ids, found_scores, *exact(vectors, records, vectors[row], constraints))


def test_milvus_engine_gives_the_faiss_engine_top_10(milvus_index, small_index, small_composer, engine,
                                                      use_store, milvus_uri):
    use_store(f"{milvus_uri}/small_items")
    remote = load_engine(milvus_index, composer_dir=small_composer, reader_dir=small_index / "no-reader")
    photo = engine.items["path"].iloc[3]
    for text, filters in REQUESTS + [("", None)]:
        for image in (None, photo):
            if not text and image is None:
                continue
            here = engine.search(image=image, text=text, filters=filters, k=10)
            there = remote.search(image=image, text=text, filters=filters, k=10)
            assert_same_top(np.array([h.item_id for h in there]), np.array([h.score for h in there]),
                            np.array([h.item_id for h in here]), np.array([h.score for h in here]))
            assert [h.why for h in there] == [h.why for h in here]


def test_milvus_update_changes_the_collection_in_place(small_catalog, engine, tmp_path, milvus_uri, use_store):
    uri = f"{milvus_uri}/updated_items"
    use_store(uri)
    csv, folder = _catalog_copy(small_catalog, tmp_path), tmp_path / "index"
    build_index(csv, engine.encoder, folder, index_type="hnsw", progress=False)
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    gone, recoloured = int(table.loc[5, "id"]), int(table.loc[9, "id"])
    table = table.drop(index=5)
    table.loc[9, "baseColour"] = "Magenta"
    pd.concat([table, small_catalog.spare]).to_csv(csv, index=False)
    manifest = build_index(csv, engine.encoder, folder, update=True, progress=False)
    assert manifest["encoded"] == 1 + len(small_catalog.spare) and manifest["store"] == uri
    index = load_index(folder)
    assert index.store.count() == manifest["items"] == len(small_catalog.items) - 1 + len(small_catalog.spare)
    _, ids = index.store.search(index.vectors, 10, Where({"baseColour": {"Magenta"}}))
    assert set(ids.ravel()) - {-1} == _magenta(index.items) and recoloured in _magenta(index.items)
    _, ids = index.store.search(index.vectors, 50)
    assert gone not in set(ids.ravel())
    spare = small_catalog.spare.iloc[0]
    hits = load_engine(folder).search(image=spare["image"], mode="image", k=1)
    assert hits[0].item_id == int(spare["id"])


def test_a_collection_changed_by_another_build_is_stale(small_catalog, engine, tmp_path, milvus_uri, use_store):
    uri = f"{milvus_uri}/shared_items"
    use_store(uri)
    first, second = tmp_path / "first", tmp_path / "second"
    build_index(small_catalog.csv, engine.encoder, first, progress=False)
    csv = _catalog_copy(small_catalog, tmp_path)
    pd.concat([pd.read_csv(csv, dtype=str, keep_default_na=False), small_catalog.spare]).to_csv(csv, index=False)
    build_index(csv, engine.encoder, second, progress=False)  # the same collection, other items
    with pytest.raises(StaleIndexError, match="--update"):
        load_index(first)
    assert load_index(second).store.count() == json.loads((second / "manifest.json").read_text())["items"]


def test_switching_stores_is_an_update_without_re_encoding(small_index, engine, tmp_path, milvus_uri, use_store):
    folder = tmp_path / "index"
    shutil.copytree(small_index, folder)
    use_store(f"{milvus_uri}/moved_items")
    with pytest.raises(StaleIndexError, match="FASHION_RAG_STORE"):
        load_index(folder)
    catalog = json.loads((folder / "manifest.json").read_text())["catalog"]
    manifest = build_index(catalog, engine.encoder, folder, update=True, progress=False)
    assert manifest["encoded"] == 0 and not (folder / "items.faiss").exists()
    assert load_index(folder).store.count() == manifest["items"]


def test_milvus_server_is_found_beside_the_interpreter_without_an_activated_virtualenv(monkeypatch):
    import sys

    from fashion_rag.retrieval.milvus_local import server_executable
    beside = Path(sys.executable).parent / "milvus-server"
    if not beside.is_file():
        pytest.skip(f"no milvus-server beside {sys.executable} (pip install milvus)")
    monkeypatch.setenv("PATH", "/nowhere")  # as when the virtualenv's bin is not on PATH
    assert server_executable() == str(beside)


def test_an_unreachable_milvus_is_a_clear_error(small_index, tmp_path, use_store):
    from fashion_rag.retrieval.milvus_local import free_port
    uri = f"milvus://127.0.0.1:{free_port()}/nothing"
    use_store(uri)
    folder = tmp_path / "index"
    shutil.copytree(small_index, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "store": uri}))
    with pytest.raises(StoreUnavailableError, match="Cannot reach Milvus at http://127.0.0.1") as error:
        load_index(folder)
    assert "FASHION_RAG_STORE=faiss" in str(error.value)
