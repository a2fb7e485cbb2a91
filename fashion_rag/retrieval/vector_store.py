"""What every vector store offers: the VectorStore interface and its item filter, Where.

One small interface (add, delete, search with a filter, count, persist) and two engines: FaissStore
(fashion_rag.retrieval.store), embedded in the index folder (the default), and MilvusStore
(fashion_rag.retrieval.milvus_store), a Milvus standalone or cluster for catalogs and replica counts
one process cannot hold. Filters are applied inside the search, so a filtered query returns k items
whenever k items match, however few of the catalog they are. A module of its own, so that both
engines can use it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from fashion_rag.data.catalog import ATTRIBUTES
from fashion_rag.errors import InputError

FILTER_COLUMNS = ATTRIBUTES + ["pattern"]  # "pattern": the pattern words of the product name
INDEX_TYPES = ("flat", "hnsw", "ivfpq")


@dataclass
class Where:
    """An item filter: each `include` column has one of its values, no `exclude` column has any of
    its values. Plain set semantics; the guard decides what a shopper's words mean."""
    include: dict[str, set[str]] = field(default_factory=dict)
    exclude: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.include) | set(self.exclude)
        if unknown - set(FILTER_COLUMNS):
            raise InputError(f"Cannot filter on {sorted(unknown - set(FILTER_COLUMNS))}; use {FILTER_COLUMNS}.")

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)


class VectorStore(Protocol):
    """Item vectors with their filter columns, found by inner product. Ids are catalog item ids."""
    uri: str

    def add(self, ids: np.ndarray, vectors: np.ndarray, items: pd.DataFrame) -> None:
        """Insert or replace these items (`items`: their catalog rows, for the filter columns)."""

    def delete(self, ids: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int, where: Where | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (len(queries), k), best first; id -1 past the last match."""

    def count(self) -> int: ...

    def persist(self, folder: Path, meta: dict) -> None:
        """Make the current contents durable, recording `meta` (encoder hash, catalog fingerprint)."""
