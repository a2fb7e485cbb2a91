"""Synthetic vector catalogs at scale, shared by scripts/benchmark.py (the FAISS tiers) and
scripts/benchmark_stores.py (the stores with filters): real vectors plus noise of the real
nearest-neighbour distance, and a quicker IVF-PQ training to fit the time budget.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import faiss
import numpy as np

KMEANS_POINTS_PER_CENTROID = 64  # quick IVF-PQ training; faiss's default is 256


def normalise_parts(vectors: np.ndarray, parts: int) -> np.ndarray:
    """L2-normalise each of `parts` equal column blocks in place (the index stores [img ; caption])."""
    for part in np.split(vectors, parts, axis=1):
        part /= np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
    return vectors


def noise_sigma(real: np.ndarray, parts: int) -> float:
    """Per-dimension noise whose total length is the real data's median nearest-neighbour
    distance, so noisy copies overlap their neighbours the way a denser catalog would."""
    index = faiss.IndexFlatIP(real.shape[1])
    index.add(real)
    probe = real[np.random.default_rng(0).choice(len(real), min(2000, len(real)), replace=False)]
    scores, _ = index.search(probe, 2)  # the first hit is the probe itself
    distance = np.sqrt(np.maximum(2.0 * parts - 2.0 * scores[:, 1], 0.0))
    return float(np.median(distance) / np.sqrt(real.shape[1]))


def synthesise(real: np.ndarray, n: int, sigma: float, parts: int, rng: np.random.Generator,
               chunk: int = 100_000) -> np.ndarray:
    """n noisy copies of randomly chosen real vectors, re-normalised per part; chunked, since a
    second full-size noise array at 1M vectors would be another 1-2 GB."""
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = real[rng.integers(0, len(real), stop - start)]
        out[start:stop] += rng.standard_normal((stop - start, real.shape[1]), dtype=np.float32) * sigma
        normalise_parts(out[start:stop], parts)
    return out


@contextmanager
def quick_ivfpq_training() -> Iterator[None]:
    """make_faiss's IVF-PQ unchanged (factory string, nlist, nprobe, k_factor) but with its k-means
    (coarse and PQ) trained on at most KMEANS_POINTS_PER_CENTROID samples per centroid instead of
    faiss's 256: at 1M vectors the full coarse k-means (4000 centroids) alone takes several minutes
    on 2 cores. Search results differ only through the centroids."""
    original = faiss.index_factory

    def factory(*args, **kwargs) -> faiss.Index:
        index = original(*args, **kwargs)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.max_points_per_centroid = ivf.pq.cp.max_points_per_centroid = KMEANS_POINTS_PER_CENTROID
        return index

    faiss.index_factory = factory
    try:
        yield
    finally:
        faiss.index_factory = original
