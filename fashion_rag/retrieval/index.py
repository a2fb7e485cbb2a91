"""The offline stage: catalog + encoder -> FAISS index, item table and manifest in one folder.

Each item is stored as one vector [image embedding ; caption embedding]. A query is a vector of
the same shape, so every fusion mode (image, text, weighted sum, concat) is one inner-product
search: a query [q ; 0] compares against images only, [a*q_img ; b*q_txt] is the concat mode.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
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
from fashion_rag.errors import FashionRagError, IndexMissingError, InputError

FORMAT = 1
INDEX_TYPES = ("flat", "hnsw", "ivfpq")
FILES = {"index": "items.faiss", "items": "items.csv", "vectors": "vectors.npy", "manifest": "manifest.json"}


@dataclass
class Index:
    faiss: faiss.Index
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


def make_faiss(vectors: np.ndarray, index_type: str = "flat") -> faiss.Index:
    """Exact inner product by default; HNSW or IVF-PQ (with exact re-ranking) for 100k+ items."""
    n, d = vectors.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(d)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = 80, 96
    elif index_type == "ivfpq":
        nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))
        # PQ training needs at least 2**nbits vectors; "np": no polysemous training (unused, ~1 min).
        nbits = int(max(1, min(8, np.log2(n))))
        index = faiss.index_factory(d, f"IVF{nlist},PQ{d // 8}x{nbits}np,RFlat", faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        faiss.extract_index_ivf(index).nprobe = min(nlist, 32)
        index.k_factor = 32  # re-rank 32k PQ candidates exactly: R@10 0.98 at 1M (scripts/benchmark.py)
    else:
        raise ValueError(f"Unknown index type {index_type!r}; choose one of {INDEX_TYPES}.")
    index.add(vectors)
    return index


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
                index_type: str = "flat", update: bool = False, batch_size: int = 64,
                progress: bool = True) -> dict:
    """Encode the catalog and write the index folder; with update=True, only new items are encoded."""
    started = time.time()
    out = Path(out)
    catalog: Catalog = load_catalog(catalog_csv, images_dir)
    items = catalog.items.assign(caption=[caption(r) for r in catalog.items.to_dict("records")])
    old = _reusable(out, encoder) if update else None
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
        "index_type": index_type, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 1), "encoded": len(good_fresh), "reused": len(items) - len(good_fresh),
        "images_per_second": round(len(fresh) / seconds, 1) if len(fresh) else None,
        "skipped": {reason: ids for reason, ids in skipped.items()},
    }
    _write(out, make_faiss(vectors, index_type), items, vectors, manifest)
    return manifest


def _reusable(out: Path, encoder: Encoder) -> Index | None:
    """The existing index, if it was made with the same weights (else its vectors are useless)."""
    try:
        old = load_index(out)
    except IndexMissingError:
        return None
    return old if old.manifest.get("model_hash") == encoder.weights_hash else None


def _write(out: Path, index: faiss.Index, items: pd.DataFrame, vectors: np.ndarray, manifest: dict) -> None:
    """Write into a temporary folder, then swap it in: a failed build never leaves half an index."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".building"
    tmp.mkdir(exist_ok=True)
    faiss.write_index(index, str(tmp / FILES["index"]))
    items[COLUMNS + ["path", "caption"]].to_csv(tmp / FILES["items"], index=False)
    np.save(tmp / FILES["vectors"], vectors)
    (tmp / FILES["manifest"]).write_text(json.dumps(manifest, indent=2))
    for key in ("index", "items", "vectors", "manifest"):  # manifest last: it marks a complete index
        (tmp / FILES[key]).replace(out / FILES[key])
    tmp.rmdir()


def load_index(folder: str | Path) -> Index:
    folder = Path(folder)
    manifest_path = folder / FILES["manifest"]
    if not manifest_path.is_file():
        raise IndexMissingError(f"No index in {folder}. Build it with `python scripts/build_index.py "
                                f"--out {folder}` (or run `python app.py`, which builds it if missing).")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise IndexMissingError(f"The index in {folder} has an old format; rebuild it with "
                                "`python scripts/build_index.py`.")
    try:
        index = faiss.read_index(str(folder / FILES["index"]))
        items = pd.read_csv(folder / FILES["items"], dtype=str, keep_default_na=False)
        vectors = np.load(folder / FILES["vectors"])
    except Exception as exc:  # a truncated or hand-edited file: say which folder to rebuild
        raise IndexMissingError(f"The index in {folder} is damaged ({type(exc).__name__}); rebuild it "
                                "with `python scripts/build_index.py`.") from exc
    items["id"] = items["id"].astype(int)
    if not (index.ntotal == len(items) == len(vectors) == manifest["items"]):
        raise IndexMissingError(f"The index in {folder} is inconsistent (vectors, items and manifest "
                                "disagree); rebuild it with `python scripts/build_index.py`.")
    return Index(index, _relocated(items, manifest), vectors, manifest)


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
