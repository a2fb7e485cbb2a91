"""The embedded vector store, FaissStore: a FAISS index in the index folder (the default). And
`open_store`, which opens it or a MilvusStore; the interface both implement is in
fashion_rag.retrieval.vector_store.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from fashion_rag.data.catalog import ATTRIBUTES, NAME_PATTERNS, pattern_tags
from fashion_rag.errors import InputError
from fashion_rag.retrieval.vector_store import INDEX_TYPES, VectorStore, Where

# Below this share of the items, a filtered search scans the selected vectors exactly instead of
# walking the approximate index (which would visit ~1/share nodes to find k matches).
EXACT_BELOW = 0.05
HNSW_EF = 96
# At 300k items, an HNSW search for 13k results took 37 ms; with this cap and the exact scan after
# it, "not black" (78% of the items) averaged 7.4 ms a query.
HNSW_MAX_FETCH = 2048


def open_store(uri: str, dim: int, index_type: str = "flat") -> VectorStore:
    """An empty store of `dim`-wide vectors: "faiss", or "milvus://host:port[/collection]"."""
    if uri == "faiss":
        return FaissStore(make_faiss(np.zeros((0, dim), np.float32), "flat"), index_type)
    if uri.startswith("milvus://"):
        # pymilvus only when asked for
        from fashion_rag.retrieval.milvus_store import MilvusStore
        return MilvusStore(uri, dim, index_type, create=True)
    raise InputError(f"Unknown vector store {uri!r}; use faiss or milvus://host:port[/collection].")


class FaissStore:
    """A FAISS index whose row i is item ids[i], with the filter columns as integer codes, so a
    filter becomes a bitmap (IDSelectorBitmap) that FAISS checks during the search."""
    uri = "faiss"

    def __init__(self, index: faiss.Index, index_type: str = "flat", ids=(), items: pd.DataFrame | None = None):
        self.index, self.index_type = index, index_type
        self.ids = np.asarray(ids, np.int64)
        self._values: dict[str, dict[str, int]] = {c: {} for c in ATTRIBUTES}
        self._codes = {c: np.zeros(0, np.int32) for c in ATTRIBUTES}
        self._patterns = np.zeros(0, np.uint8)  # bit i: the name has NAME_PATTERNS[i]
        if items is not None and len(items):
            self._append_columns(items)

    @classmethod
    def load(cls, path: Path, index_type: str, items: pd.DataFrame) -> "FaissStore":
        return cls(faiss.read_index(str(path)), index_type, items["id"], items)

    def _append_columns(self, items: pd.DataFrame) -> None:
        """Integer codes of the new rows' filter columns (hashed per distinct value: fast at 10M)."""
        for column in ATTRIBUTES:
            values, known = items[column].astype(str), self._values[column]
            for value in pd.unique(values):
                known.setdefault(value, len(known))
            codes = pd.Index(list(known)).get_indexer(values).astype(np.int32)
            self._codes[column] = np.concatenate([self._codes[column], codes])
        names = items["productDisplayName"].astype(str)
        bits = {name: _pattern_bits(pattern_tags(name)) for name in pd.unique(names)}
        self._patterns = np.concatenate([self._patterns, names.map(bits).to_numpy(np.uint8)])

    def add(self, ids: np.ndarray, vectors: np.ndarray, items: pd.DataFrame) -> None:
        ids = np.asarray(ids, np.int64)
        replaced = np.isin(ids, self.ids)
        if replaced.any():
            self.delete(ids[replaced])
        if self.count():
            self.index.add(np.ascontiguousarray(vectors, np.float32))
        else:  # the first vectors shape the index (IVF-PQ trains on them)
            self.index = make_faiss(np.ascontiguousarray(vectors, np.float32), self.index_type)
        self.ids = np.concatenate([self.ids, ids])
        self._append_columns(items.reset_index(drop=True))

    def delete(self, ids: np.ndarray) -> None:
        """FAISS's HNSW cannot remove vectors: the kept ones are re-indexed from the flat copy
        every index type holds (no re-encoding)."""
        keep = ~np.isin(self.ids, np.asarray(ids, np.int64))
        if keep.all():
            return
        flat = self._flat()
        if flat is None:
            raise InputError("This FAISS index keeps no exact vectors to rebuild from; rebuild it.")
        vectors = flat.reconstruct_n(0, flat.ntotal)[keep]
        self.index = make_faiss(vectors, self.index_type if len(vectors) else "flat")
        self.ids = self.ids[keep]
        self._codes = {c: codes[keep] for c, codes in self._codes.items()}
        self._patterns = self._patterns[keep]

    def count(self) -> int:
        return int(self.index.ntotal)

    def persist(self, folder: Path, meta: dict) -> None:
        faiss.write_index(self.index, str(folder / "items.faiss"))

    def mask(self, where: Where) -> np.ndarray:
        """Which rows pass the filter (vectorised over integer codes: ~1 ms per column at 1M)."""
        mask = np.ones(len(self.ids), bool)
        for column, values in where.include.items():
            mask &= self._matches(column, values)
        for column, values in where.exclude.items():
            mask &= ~self._matches(column, values)
        return mask

    def _matches(self, column: str, values: set[str]) -> np.ndarray:
        if column == "pattern":
            return (self._patterns & _pattern_bits(values)) != 0
        known = self._values[column]
        wanted = np.zeros(len(known) + 1, bool)
        wanted[[known[v] for v in values if v in known]] = True
        return wanted[self._codes[column]]

    def search(self, queries: np.ndarray, k: int, where: Where | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered: the index as built. Filtered, by what the filter leaves: a selection under
        EXACT_BELOW of the items (or any selection in a flat index) is scanned exactly; IVF-PQ checks
        the bitmap while it scans its cells; HNSW, whose filtered walk stalls inside clusters the
        filter rules out (short result lists), fetches k / share x 2 unfiltered and keeps those that
        pass. A query still short of min(k, selected) is answered by the exact scan."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.index.d)
        n = self.count()
        k = max(1, min(int(k), n))
        empty = np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        if not n:
            return empty
        if not where:
            scores, rows = self.index.search(queries, k)
            return scores, self._ids(rows)
        mask = self.mask(where)
        selected = int(mask.sum())
        if not selected:
            return empty
        bitmap = np.packbits(mask, bitorder="little")  # must outlive the searches below
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        flat = self._flat()
        if flat is not None and (self.index_type == "flat" or selected < EXACT_BELOW * n):
            scores, rows = flat.search(queries, k, params=faiss.SearchParameters(sel=selector))
            return scores, self._ids(rows)
        index = faiss.downcast_index(self.index)
        if isinstance(index, faiss.IndexHNSW):
            scores, rows = self._hnsw_filtered(queries, k, mask, selected)
        else:
            scores, rows = self.index.search(queries, k, params=self._ivf_params(selector))
        short = (rows >= 0).sum(axis=1) < min(k, selected)
        if short.any() and flat is not None:
            scores[short], rows[short] = flat.search(queries[short], k, params=faiss.SearchParameters(sel=selector))
        return scores.astype(np.float32), self._ids(rows)

    def _hnsw_filtered(self, queries: np.ndarray, k: int, mask: np.ndarray, selected: int):
        """Top k that pass, from unfiltered HNSW searches of 2 k / share, then 8x wider for the
        queries still short (a query inside a cluster the filter rules out), up to HNSW_MAX_FETCH
        (beyond it, an exact scan is cheaper)."""
        n = len(mask)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        rows = np.full((len(queries), k), -1, np.int64)
        todo, fetch = np.arange(len(queries)), int(np.ceil(2 * k * n / selected))
        while len(todo) and fetch <= max(HNSW_MAX_FETCH, 2 * k):
            fetch = min(fetch, n)
            wide_scores, wide_rows = self.index.search(
                queries[todo], fetch, params=faiss.SearchParametersHNSW(efSearch=max(HNSW_EF, fetch)))
            passing = (wide_rows >= 0) & mask[np.maximum(wide_rows, 0)]
            order = np.argsort(~passing, axis=1, kind="stable")[:, :k]  # passing first, in rank order
            ok = np.take_along_axis(passing, order, 1)
            scores[todo] = np.where(ok, np.take_along_axis(wide_scores, order, 1), -np.inf)
            rows[todo] = np.where(ok, np.take_along_axis(wide_rows, order, 1), -1)
            todo, fetch = todo[ok.sum(axis=1) < min(k, selected)], fetch * 8
        return scores, rows

    def _ids(self, rows: np.ndarray) -> np.ndarray:
        return np.where(rows >= 0, self.ids[np.maximum(rows, 0)], -1)

    def _flat(self) -> faiss.Index | None:
        """The copy of every vector each index type keeps, to scan a selection exactly: the flat
        index itself, HNSW's storage, IVF-PQ's re-ranking stage (floats, or 8-bit codes in an
        IVF-PQ built for 10M+ items, which the scan decodes)."""
        index = faiss.downcast_index(self.index)
        if isinstance(index, faiss.IndexFlat):
            return index
        inner = getattr(index, "storage", None) or getattr(index, "refine_index", None)
        inner = faiss.downcast_index(inner) if inner is not None else None
        return inner if isinstance(inner, (faiss.IndexFlat, faiss.IndexScalarQuantizer)) else None

    def _ivf_params(self, selector) -> faiss.SearchParameters:
        """The bitmap inside the IVF scan (and through the re-ranking stage, if any)."""
        index = faiss.downcast_index(self.index)
        ivf = faiss.extract_index_ivf(index)
        inner = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
        if isinstance(index, faiss.IndexRefine):
            return faiss.IndexRefineSearchParameters(k_factor=index.k_factor, base_index_params=inner)
        return inner


def _pattern_bits(tags) -> int:
    """Bit i set for each of NAME_PATTERNS[i] among `tags` (others ignored)."""
    return sum(1 << NAME_PATTERNS.index(t) for t in set(tags) if t in NAME_PATTERNS)


def make_faiss(vectors: np.ndarray, index_type: str = "flat") -> faiss.Index:
    """Exact inner product by default; HNSW or IVF-PQ (with exact re-ranking) for 100k+ items.
    IVF-PQ is sized by the data: cells ~4 sqrt(n), PQ training needs 2**nbits vectors, "np": no
    polysemous training (unused, ~1 min)."""
    n, d = vectors.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(d)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = 80, HNSW_EF
    elif index_type == "ivfpq":
        nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))
        nbits = int(max(1, min(8, np.log2(max(n, 2)))))
        index = faiss.index_factory(d, f"IVF{nlist},PQ{d // 8}x{nbits}np,RFlat", faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        faiss.extract_index_ivf(index).nprobe = min(nlist, 32)
        index.k_factor = 32  # re-rank 32k PQ candidates exactly: R@10 0.98 at 1M (scripts/benchmark.py)
    else:
        raise InputError(f"Unknown index type {index_type!r}; choose one of {INDEX_TYPES}.")
    index.add(np.ascontiguousarray(vectors, np.float32))
    return index
