"""The scale-out vector store: the items in a Milvus collection, through pymilvus's MilvusClient.

The same code talks to a Milvus standalone (`milvus-server --data DIR`, from the PyPI package
`milvus`) or a distributed cluster behind its proxy: only the address differs. One row per item:
int64 id, the [image ; caption] vector, and the filter columns as scalar fields (indexed), so a
filter is a Milvus boolean expression evaluated inside the search. The collection's properties
record the encoder hash and catalog fingerprint, checked like the embedded index's manifest.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from fashion_rag.data.catalog import ATTRIBUTES, NAME_PATTERNS, pattern_tags
from fashion_rag.errors import IndexMissingError, InputError, StoreUnavailableError
from fashion_rag.retrieval.vector_store import INDEX_TYPES, Where

DEFAULT_COLLECTION = "fashion_rag_items"
MAX_TOPK = 16384  # Milvus's limit on k per search
BATCH = 2000  # rows per insert: ~4 MB of 512-d vectors, well under the 64 MB gRPC message limit
META = "fashion_rag"  # collection property holding the build's metadata (JSON)
INDEXES = {"flat": ("FLAT", {}), "hnsw": ("HNSW", {"M": 16, "efConstruction": 128}),
           "ivfpq": ("IVF_PQ", {"nlist": 1024, "m": 64, "nbits": 8})}
SEARCH = {"flat": {}, "hnsw": {"ef": 128}, "ivfpq": {"nprobe": 32}}


def parse_uri(uri: str) -> tuple[str, str]:
    """milvus://host:port[/collection] -> (http://host:port, collection)."""
    parsed = urlparse(uri)
    if parsed.scheme != "milvus" or not parsed.hostname:
        raise InputError(f"A Milvus store is milvus://host:port[/collection], not {uri!r}.")
    collection = parsed.path.strip("/") or DEFAULT_COLLECTION
    if not collection.replace("_", "").isalnum():
        raise InputError(f"A Milvus collection name has letters, digits and _ only, not {collection!r}.")
    return f"http://{parsed.hostname}:{parsed.port or 19530}", collection


def connect(address: str, timeout: float = 10.0):
    """A MilvusClient, or a clear error naming the address (a cluster's token, user:password,
    comes from FASHION_RAG_MILVUS_TOKEN)."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException
    # pymilvus logs a refused connection as an ERROR line of its own (after its import, which sets
    # up its loggers); the error raised below says more.
    logging.getLogger("pymilvus.milvus_client._utils").setLevel(logging.CRITICAL)
    try:
        return MilvusClient(address, token=os.environ.get("FASHION_RAG_MILVUS_TOKEN", ""), timeout=timeout)
    except MilvusException as exc:
        raise StoreUnavailableError(f"Cannot reach Milvus at {address} ({exc.message}). Start it "
                                    "(`milvus-server --data DIR`) or use the embedded store "
                                    "(FASHION_RAG_STORE=faiss).") from None


def expression(where: Where | None) -> str:
    """The filter as a Milvus boolean expression; values are JSON string literals (escaped)."""
    if not where:
        return ""
    terms = []
    for column, values in sorted(where.include.items()):
        terms.append(_term(column, values))
    for column, values in sorted(where.exclude.items()):
        terms.append(f"not ({_term(column, values)})")
    return " and ".join(terms)


def _term(column: str, values: set[str]) -> str:
    listed = json.dumps(sorted(values), ensure_ascii=False)
    return f"array_contains_any(patterns, {listed})" if column == "pattern" else f"{column} in {listed}"


class MilvusStore:
    def __init__(self, uri: str, dim: int, index_type: str = "hnsw", create: bool = False):
        if index_type not in INDEX_TYPES:
            raise InputError(f"Unknown index type {index_type!r}; choose one of {INDEX_TYPES}.")
        self.uri, self.dim, self.index_type = uri, dim, index_type
        self.address, self.collection = parse_uri(uri)
        self.client, self._marked, self._created = connect(self.address), False, create
        if create:
            if self.client.has_collection(self.collection):
                self.client.drop_collection(self.collection)
            self._create()
        elif not self.client.has_collection(self.collection):
            raise IndexMissingError(f"No collection {self.collection} in Milvus at {self.address}; build it with "
                                    f"`python scripts/build_index.py --store {uri}`.")
        self.client.load_collection(self.collection)

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient
        schema = MilvusClient.create_schema(auto_id=False, description="fashion-rag catalog items")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        for column in ATTRIBUTES:
            schema.add_field(column, DataType.VARCHAR, max_length=256)
        schema.add_field("patterns", DataType.ARRAY, element_type=DataType.VARCHAR,
                         max_capacity=len(NAME_PATTERNS), max_length=16)
        params = self.client.prepare_index_params()
        kind, build = INDEXES[self.index_type]
        params.add_index("vector", index_type=kind, metric_type="IP", params=build)
        for column in ATTRIBUTES:  # scalar indexes: filters are evaluated on them, not by scanning
            params.add_index(column, index_type="Trie")
        # "Session": a process reads its own writes; "Strong" would wait ~200 ms per search for the
        # cluster's time tick, and other processes read what persist() flushed and indexed.
        self.client.create_collection(self.collection, schema=schema, index_params=params,
                                      consistency_level="Session")

    def _changing(self) -> None:
        """Mark the collection as being changed until persist() records the build: a reader of a
        half-updated collection sees that it is stale."""
        if not self._marked:
            self.client.alter_collection_properties(self.collection, properties={META: json.dumps({"updating": True})})
            self._marked = True

    def add(self, ids: np.ndarray, vectors: np.ndarray, items: pd.DataFrame) -> None:
        self._changing()
        items, vectors = items.reset_index(drop=True), np.asarray(vectors, np.float32)
        for start in range(0, len(ids), BATCH):
            rows = [{"id": int(ids[i]), "vector": vectors[i],
                     **{c: str(items.at[i, c]) for c in ATTRIBUTES},
                     "patterns": pattern_tags(items.at[i, "productDisplayName"])}
                    for i in range(start, min(len(ids), start + BATCH))]
            self.client.upsert(self.collection, rows)

    def delete(self, ids: np.ndarray) -> None:
        ids = [int(i) for i in ids]
        if ids:
            self._changing()
        for start in range(0, len(ids), BATCH):
            self.client.delete(self.collection, ids=ids[start:start + BATCH])

    def count(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def search(self, queries: np.ndarray, k: int, where: Where | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, np.float32).reshape(-1, self.dim)
        k = max(1, min(int(k), MAX_TOPK))
        params = {key: max(value, k) for key, value in SEARCH[self.index_type].items() if key == "ef"}
        params |= {key: value for key, value in SEARCH[self.index_type].items() if key != "ef"}
        results = self.client.search(self.collection, data=queries.tolist(), limit=k, filter=expression(where),
                                     search_params={"metric_type": "IP", "params": params})
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        for row, hits in enumerate(results):
            for col, hit in enumerate(hits):
                scores[row, col], ids[row, col] = hit["distance"], hit["id"]
        return scores, ids

    def persist(self, folder: Path, meta: dict, timeout: float = 3600.0) -> None:
        """Flush, wait until the vector index covers every row (until then Milvus answers from a
        coarse interim index, with lower recall), then record `meta`. A live collection changed in
        place serves new rows from the interim index until Milvus hands them over (seconds)."""
        self.client.flush(self.collection)
        deadline = time.monotonic() + timeout
        while (state := self.client.describe_index(self.collection, "vector"))["pending_index_rows"] > 0:
            if time.monotonic() > deadline:
                raise StoreUnavailableError(f"Milvus at {self.address} did not finish indexing {self.collection} "
                                            f"in {timeout:.0f} s ({state['indexed_rows']} of {state['total_rows']} rows).")
            time.sleep(0.5)
        if self._created:  # nobody searches it yet: reload, so every segment is served by its index
            self.client.release_collection(self.collection)
            self.client.load_collection(self.collection)
            self._created = False
        self.client.alter_collection_properties(self.collection, properties={META: json.dumps(meta)})
        self._marked = False

    def meta(self) -> dict:
        properties = self.client.describe_collection(self.collection).get("properties", {})
        try:
            return json.loads(properties.get(META, "{}"))
        except json.JSONDecodeError:
            return {}
