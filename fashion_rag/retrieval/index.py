"""The offline stage: catalog + encoder -> vector store (FAISS file or Milvus collection), item
table and manifest in one folder.

Each item is stored as one vector [image embedding ; caption embedding]. A query is a vector of
the same shape, so every fusion mode (image, text, weighted sum, concat) is one inner-product
search: a query [q ; 0] compares against images only, [a*q_img ; b*q_txt] is the concat mode.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fashion_rag import settings
from fashion_rag.data.catalog import (
    COLUMNS,
    Catalog,
    caption,
    fingerprint,
    load_catalog,
)
from fashion_rag.data.images import load_image
from fashion_rag.encoding.encoder import Encoder
from fashion_rag.errors import (
    FashionRagError,
    IndexDamagedError,
    IndexMissingError,
    InputError,
    StaleIndexError,
)
from fashion_rag.retrieval.store import FaissStore, open_store
from fashion_rag.retrieval.vector_store import INDEX_TYPES, VectorStore

FORMAT = 1
STORE_META = ("model_hash", "catalog_fingerprint", "items")  # what a store records of its build
FILES = {"index": "items.faiss", "items": "items.csv", "vectors": "vectors.npy", "manifest": "manifest.json"}
# What every manifest records, and of what type (load_index checks, so a damaged one says so).
RECORDED = {"format": int, "model": str, "model_hash": str, "dim": int, "items": int, "catalog": str,
            "catalog_fingerprint": str, "index_type": str}


@dataclass
class Index:
    store: VectorStore
    items: pd.DataFrame  # row i describes vector i
    vectors: np.ndarray  # (n, 2 * dim) float32, kept for updates and for using an item as a query
    manifest: dict

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def model(self) -> str:
        """The encoder it was built with: the recorded folder or hub id, or this install's default
        encoder when that folder is gone (a moved index, e.g. a Space); callers check the hash."""
        recorded = self.manifest["model"]
        return settings.MODEL if Path(recorded).is_absolute() and not Path(recorded).exists() else recorded

    @property
    def catalog_csv(self) -> Path:
        """The catalog table it was built from, or the configured one when the index was moved."""
        recorded = Path(self.manifest["catalog"])
        return recorded if recorded.is_file() else settings.CATALOG_DIR / "styles.csv"


def encode_items(encoder: Encoder, items: pd.DataFrame, batch_size: int = 64,
                 progress: bool = True) -> tuple[np.ndarray, list[int]]:
    """Image + caption vectors for the rows; rows whose image cannot be read are reported, not fatal.
    Captions repeat across items (they are built from attributes), so each is encoded once."""
    captions = sorted(set(items["caption"]))
    caption_vecs = dict(zip(captions, encoder.encode_texts(captions))) if captions else {}
    vectors, bad = [], []
    bar = tqdm(total=len(items), desc="indexing catalog", unit="img", disable=not progress)
    for start in range(0, len(items), batch_size):
        chunk = items.iloc[start:start + batch_size]
        images, keep = [], []
        for pos, path in enumerate(chunk["path"]):
            try:
                images.append(load_image(path))
                keep.append(pos)
            except InputError:
                bad.append(int(chunk["id"].iloc[pos]))
        if images:
            image_vecs = encoder.encode_pixels(encoder.preprocess(images))
            text_vecs = np.stack([caption_vecs[c] for c in chunk["caption"].iloc[keep]])
            vectors.append(np.hstack([image_vecs, text_vecs]))
        bar.update(len(chunk))
    bar.close()
    dim = 2 * encoder.dim
    return (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)), bad


def build_index(catalog_csv: str | Path, encoder: Encoder, out: str | Path, images_dir: str | Path | None = None,
                index_type: str | None = None, update: bool = False, batch_size: int = 64,
                progress: bool = True, store: str | None = None) -> dict:
    """Encode the catalog into the index folder and the vector store (`store`: "faiss", the
    default setting, or "milvus://host:port[/collection]"). With update=True, only new or changed
    items are encoded, and a store of the same kind is changed in place: changed and new items are
    added, removed ones deleted. `index_type` (flat, hnsw, ivfpq) defaults to the old index's."""
    started = time.time()
    out, uri = Path(out), store or settings.STORE
    catalog: Catalog = load_catalog(catalog_csv, images_dir)
    items = catalog.items.assign(caption=[caption(r) for r in catalog.items.to_dict("records")])
    old = _reusable(out, encoder) if update else None
    index_type = index_type or (old.manifest["index_type"] if old is not None else "flat")
    if index_type not in INDEX_TYPES:
        raise InputError(f"Unknown index type {index_type!r}; choose one of {INDEX_TYPES}.")
    if old is not None:
        known = {(int(i), p, c): row for row, (i, p, c) in
                 enumerate(zip(old.items["id"], old.items["path"], old.items["caption"]))}
        reuse = [known.get((int(i), p, c)) for i, p, c in zip(items["id"], items["path"], items["caption"])]
        fresh = items[[r is None for r in reuse]]
    else:
        reuse, fresh = [None] * len(items), items
    new_vectors, bad = encode_items(encoder, fresh, batch_size, progress)
    good_fresh = fresh[~fresh["id"].isin(bad)]
    fresh_rows = dict(zip(good_fresh["id"].astype(int), range(len(good_fresh))))
    rows, vectors = [], []
    for pos, (item_id, old_row) in enumerate(zip(items["id"].astype(int), reuse)):
        if old_row is not None:
            rows.append(pos), vectors.append(old.vectors[old_row])
        elif item_id in fresh_rows:
            rows.append(pos), vectors.append(new_vectors[fresh_rows[item_id]])
    if not vectors:
        raise FashionRagError(f"No catalog item could be indexed from {catalog_csv}.")
    items, vectors = items.iloc[rows].reset_index(drop=True), np.vstack(vectors).astype(np.float32)
    target = _fill_store(old, uri, index_type, items, vectors, set(good_fresh["id"].astype(int)))
    if isinstance(target, FaissStore):  # its rows are in the order items were added
        order = pd.Series(range(len(items)), index=items["id"].astype(int))[target.ids].to_numpy()
        items, vectors = items.iloc[order].reset_index(drop=True), vectors[order]
    skipped = dict(catalog.skipped)
    if bad:
        skipped["image unreadable"] = [str(i) for i in bad]
    # Of the table as written (rows with missing images too), which is what load_engine compares.
    table_fingerprint = fingerprint(load_catalog(catalog_csv, check_images=False).items)
    seconds = time.time() - started
    manifest = {
        "format": FORMAT, "model": encoder.name, "model_hash": encoder.weights_hash, "dim": encoder.dim,
        "vector": "image embedding ; caption embedding", "items": len(items),
        "catalog": str(Path(catalog_csv).resolve()), "catalog_fingerprint": table_fingerprint,
        "store": uri, "index_type": index_type, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 1), "encoded": len(good_fresh), "reused": len(items) - len(good_fresh),
        "images_per_second": round(len(fresh) / seconds, 1) if len(fresh) else None,
        "skipped": {reason: ids for reason, ids in skipped.items()},
    }
    _write(out, target, items, vectors, manifest)
    return manifest


def _fill_store(old: Index | None, uri: str, index_type: str, items: pd.DataFrame, vectors: np.ndarray,
                encoded: set[int]) -> VectorStore:
    """The old store changed in place when it is of the same kind (items re-encoded or gone are
    deleted, new and re-encoded ones added), else a new store with every item."""
    ids = items["id"].to_numpy(np.int64)
    if old is not None and old.manifest["store"] == uri and old.manifest["index_type"] == index_type:
        store = old.store
        kept = set(map(int, ids)) - encoded
        store.delete(np.array([i for i in old.items["id"] if int(i) not in kept], np.int64))
        new = np.isin(ids, list(encoded))
        if new.any():
            store.add(ids[new], vectors[new], items[new])
        return store
    store = open_store(uri, vectors.shape[1], index_type)
    store.add(ids, vectors, items)
    return store


def _reusable(out: Path, encoder: Encoder) -> Index | None:
    """The existing index, if it was made with the same weights (else its vectors are useless)."""
    try:
        old = load_index(out, check_store=False)
    except (IndexMissingError, StaleIndexError):
        return None
    return old if old.manifest.get("model_hash") == encoder.weights_hash else None


def _write(out: Path, store: VectorStore, items: pd.DataFrame, vectors: np.ndarray, manifest: dict) -> None:
    """Write into a temporary folder, then swap it in: a failed build never leaves half an index.
    The store records the build too (a Milvus collection's properties), checked by load_index."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".building"
    tmp.mkdir(exist_ok=True)
    store.persist(tmp, {key: manifest[key] for key in STORE_META})
    items[COLUMNS + ["path", "caption"]].to_csv(tmp / FILES["items"], index=False)
    np.save(tmp / FILES["vectors"], vectors)
    (tmp / FILES["manifest"]).write_text(json.dumps(manifest, indent=2))
    (out / FILES["manifest"]).unlink(missing_ok=True)  # until the swap is done, no index is claimed
    (out / FILES["index"]).unlink(missing_ok=True)  # a FAISS file beside a Milvus manifest would mislead
    for key in ("index", "items", "vectors", "manifest"):  # manifest last: it marks a complete index
        if (tmp / FILES[key]).exists():
            (tmp / FILES[key]).replace(out / FILES[key])
    tmp.rmdir()


def load_index(folder: str | Path, check_store: bool = True) -> Index:
    """The index folder and its vector store. `check_store`: the store must hold what the manifest
    says (a Milvus collection changed by another build is stale) and be the configured one."""
    folder = Path(folder)
    manifest = _manifest(folder)
    uri = manifest.get("store", "faiss")
    if check_store and uri != settings.STORE:
        raise StaleIndexError(f"The index in {folder} is in the {uri} store, but FASHION_RAG_STORE is "
                              f"{settings.STORE}; move it with `python scripts/build_index.py --update --out "
                              f"{folder}` (no re-encoding).")
    try:
        items = pd.read_csv(folder / FILES["items"], dtype=str, keep_default_na=False)
        vectors = np.load(folder / FILES["vectors"])
        items["id"] = items["id"].astype(int)
        store = FaissStore.load(folder / FILES["index"], manifest["index_type"], items) if uri == "faiss" else None
    except Exception as exc:  # a truncated or hand-edited file: say which folder to rebuild
        raise IndexDamagedError(folder, f"{type(exc).__name__} reading its files") from exc
    if store is None:
        # pymilvus only when asked for
        from fashion_rag.retrieval.milvus_store import MilvusStore
        store = MilvusStore(uri, vectors.shape[1], manifest["index_type"])
        recorded = store.meta()
        if check_store and any(recorded.get(key) != manifest[key] for key in STORE_META):
            raise StaleIndexError(f"The Milvus collection at {uri} does not hold the index in {folder} (another "
                                  "build changed it, or an update was cut short); run `python scripts/build_index.py "
                                  f"--update --out {folder}`.")
    if not (store.count() == len(items) == len(vectors) == manifest["items"]):
        raise IndexMissingError(f"The index in {folder} is inconsistent (vectors, items and manifest "
                                "disagree); rebuild it with `python scripts/build_index.py`.")
    return Index(store, _relocated(items, manifest), vectors, manifest)


def _manifest(folder: Path) -> dict:
    """The folder's manifest.json: IndexMissingError without one or of an old format,
    IndexDamagedError if it is not the JSON object an index build writes."""
    path = folder / FILES["manifest"]
    if not path.is_file():
        raise IndexMissingError(f"No index in {folder}. Build it with `python scripts/build_index.py "
                                f"--out {folder}` (or run `python app.py`, which builds it if missing).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):  # random bytes, or not JSON
        raise IndexDamagedError(folder, "manifest.json is not readable JSON") from None
    if isinstance(manifest, dict) and manifest.get("format", FORMAT) != FORMAT:
        raise IndexMissingError(f"The index in {folder} has an old format; rebuild it with "
                                "`python scripts/build_index.py`.")
    wrong = [key for key, kind in RECORDED.items()
             if not isinstance(manifest, dict) or not isinstance(manifest.get(key), kind)]
    if wrong:
        raise IndexDamagedError(folder, f"manifest.json lacks {', '.join(wrong)}")
    return manifest


def _relocated(items: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Image paths under the configured catalog folder when the index was built from a catalog
    elsewhere (a Space, a copied folder) and the images are there: paths under the old folder
    are moved to the new one, so the app serves (and reads) the configured catalog's files."""
    old_root = str(Path(manifest["catalog"]).parent)
    new_root = str(settings.CATALOG_DIR.resolve())
    if items.empty or old_root == new_root:
        return items
    moved = items["path"].str.startswith(old_root + "/")
    paths = items["path"].where(~moved, new_root + items["path"].str.slice(len(old_root)))
    return items.assign(path=paths) if moved.any() and Path(paths[moved].iloc[0]).is_file() else items
