"""Speed benchmark: encoders, fusion, end-to-end search, index build, FAISS index types at scale.

Why: the product has latency and throughput targets (photo + text search p50 < 100 ms, index
build >= 50 images/s, approximate search over 1M vectors p50 < 10 ms at recall@10 >= 0.95), and
the choice between flat, HNSW and IVF-PQ (fashion_rag.retrieval.store.make_faiss) is a speed/recall
trade-off that only measurements at the target scale settle. Timings are the median and p95 of
repeated runs after discarded warm-up runs; variants (torch thread counts, FAISS search settings)
are compared within one run, back to back, so a busy machine slows them alike. Torch threads are
compared because OpenMP threads that spin-wait collapse when other processes hold the cores.

The FAISS tiers are synthesised from the real index's stored vectors (a real vector plus Gaussian
noise, re-normalised per half) so they keep the cluster structure of real embeddings; uniform
random data would make approximate search unrepresentatively hard. The noise length is the real
data's median nearest-neighbour distance. Queries are other noisy samples; recall@10 is against
exact (flat) search, single-query latency is one sample per query. With ~10k real vectors, the 1M
tier holds ~100 noisy copies of each, nearly tied in distance to a query: a hard case for PQ
distances (k_factor matters), an easy one for choosing IVF cells (nprobe hardly matters).

    python scripts/benchmark.py [--index DIR] [--quick] [--sizes 10000,100000,1000000]
                                [--stores 1000000,10000000] [--stores-only] [--demand-log] [--pieces]
                                [--repeats 20] [--json results.json]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import faiss
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import benchmark_stores  # noqa: E402
from bench_common import (  # noqa: E402
    KMEANS_POINTS_PER_CENTROID,
    noise_sigma,
    normalise_parts,
    quick_ivfpq_training,
    synthesise,
)

from fashion_rag import settings  # noqa: E402
from fashion_rag.data.catalog import caption, load_catalog  # noqa: E402
from fashion_rag.data.photos import load_photos  # noqa: E402
from fashion_rag.encoding.encoder import Encoder, load_encoder  # noqa: E402
from fashion_rag.encoding.fusion import query_vector  # noqa: E402
from fashion_rag.engine import Engine, load_engine  # noqa: E402
from fashion_rag.insights import DemandLog  # noqa: E402
from fashion_rag.retrieval.index import build_index  # noqa: E402
from fashion_rag.retrieval.store import make_faiss  # noqa: E402

K = 10
PHOTO_TARGET_MS = 40.0  # a photo + text engine.search, p50 (issue 18)
PHOTOS = 63  # photos per photo-search row: 3 to warm up, the median of 60 (one photo says little)
BUILD_TARGET_IPS, ANN_TARGET_MS, ANN_TARGET_RECALL = 60.0, 10.0, 0.95
OUTFIT_TARGET_MS = 150.0  # engine.complete without an LLM
DEMAND_LOG_TARGET_MS = 1.0  # what the demand log adds to a search (fashion_rag.insights), p50
API_ONE_TARGET_MS, API_LOAD_TARGET_MS = 150.0, 1000.0  # /search through gradio_client: p50 alone, p95 of 8
# Search-time settings tried on the same built index, after make_faiss's own settings.
VARIANTS: dict[str, list[dict[str, int]]] = {
    "hnsw": [{"efSearch": e} for e in (16, 32, 64, 128, 256)],
    # k_factor: candidates re-ranked exactly per result; PQ distances alone often miss near-ties.
    "ivfpq": [{"nprobe": p, "k_factor": f} for f, probes in ((8, (8, 16, 64)), (32, (16, 32, 64)),
                                                              (128, (16, 32, 64))) for p in probes],
}
SCALE = {"s": 1.0, "ms": 1e3, "µs": 1e6, "MB": 1.0}


@dataclass
class Row:
    """One line of the table. `samples` are seconds per call (MB for unit "MB")."""
    section: str
    name: str
    samples: list[float]
    unit: str = "ms"
    per_call: int = 1  # items handled per call, for the rate column
    rate_unit: str = ""
    recall: float | None = None
    target: str = ""
    passed: bool | None = None
    index_type: str = ""  # FAISS search rows: the index type and its search settings
    params: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.samples, 95))

    @property
    def rate(self) -> float | None:
        return self.per_call / self.median if self.rate_unit and self.median > 0 else None


def time_calls(fn: Callable[[], object], repeats: int, warmup: int, sample_seconds: float = 0.0) -> list[float]:
    """Seconds per call of fn over `repeats` samples. With sample_seconds, each sample averages
    as many calls as fill about that long (for microsecond operations, where one call is below
    the timer's useful resolution)."""
    for _ in range(warmup):
        fn()
    inner = 1
    if sample_seconds:
        start = time.perf_counter()
        fn()
        inner = max(1, int(sample_seconds / max(time.perf_counter() - start, 1e-9)))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return samples


def cycling(values: list) -> Callable[[], object]:
    """A zero-argument function returning the next value each call, so repeats vary the input."""
    it: Iterator = itertools.cycle(values)
    return lambda: next(it)


# --- the app: encoders, fusion, end-to-end search, index build --------------------------------

@dataclass
class AppTimer:
    """Times one app operation per torch thread count, the counts back to back, so a change in
    machine load hits the variants alike (the app itself runs with settings.THREADS)."""
    threads: list[int]
    repeats: int
    warmup: int

    def rows(self, section: str, name: str, fn: Callable[..., object], threads: list[int] | None = None,
             repeats: int | None = None, warmup: int | None = None, sample_seconds: float = 0.0,
             inputs: list | None = None, **row) -> list[Row]:
        """`inputs`: fn takes one, and every thread count goes through the same ones from the start
        (a photo with a person costs twice one with nobody: the variants must see the same photos)."""
        threads = threads or self.threads
        out = []
        for count in threads:
            torch.set_num_threads(count)
            call = fn if inputs is None else (lambda following: lambda: fn(following()))(cycling(inputs))
            samples = time_calls(call, repeats or self.repeats, self.warmup if warmup is None else warmup,
                                 sample_seconds)
            tag = f"  [torch {count}{' = app' if count == settings.THREADS else ''}]" if len(threads) > 1 else ""
            out.append(Row(section, name + tag, samples, **row))
        torch.set_num_threads(settings.THREADS)
        return out


def with_target(rows: list[Row], target: str, check: Callable[[Row], bool]) -> list[Row]:
    for row in rows:
        row.target, row.passed = target, check(row)
    return rows


def bench_encoders(timer: AppTimer, encoder: Encoder, paths: list[str], captions: list[str]) -> list[Row]:
    """Image encoding as search does it (decode + preprocess + model), split into its two parts;
    text encoding of one short query and of a batch of captions."""
    rows = []
    for batch in (1, 64):
        chunk = paths[:batch]
        pixels = encoder.preprocess(chunk)
        rows += timer.rows("encode", f"image b{batch}: decode+preprocess+model", lambda: encoder.encode_images(chunk),
                           per_call=batch, rate_unit="img/s")
        rows += timer.rows("encode", f"image b{batch}:   decode+preprocess only", lambda: encoder.preprocess(chunk),
                           threads=[settings.THREADS], per_call=batch, rate_unit="img/s")  # PIL: no torch threads
        rows += timer.rows("encode", f"image b{batch}:   model only", lambda: encoder.encode_pixels(pixels),
                           per_call=batch, rate_unit="img/s")
    for name, texts in (("text b1: 'red summer dress'", ["red summer dress"]),
                        ("text b64: catalog captions", captions[:64])):
        rows += timer.rows("encode", name, lambda: encoder.encode_texts(texts), per_call=len(texts), rate_unit="txt/s")
    return rows


def bench_fusion(timer: AppTimer, engine: Engine, image_vec: np.ndarray, text_vec: np.ndarray) -> list[Row]:
    """query_vector per available mode (gated only when a composer for these weights exists; it is
    the only mode that runs torch, so the only one timed per thread count)."""
    rows = []
    for mode in engine.modes:
        rows += timer.rows("fusion", f"query_vector mode={mode}",
                           lambda: query_vector(mode, image_vec, text_vec, 0.5, engine.composer),
                           threads=None if mode == "gated" else [settings.THREADS], sample_seconds=0.002,
                           unit="µs", rate_unit="q/s")
    return rows


def bench_end_to_end(timer: AppTimer, engine: Engine, paths: list[str]) -> list[Row]:
    """engine.search and engine.complete as the app calls them, cycling through catalog photos (and
    real uploads)."""
    validation = load_photos("validation")
    uploads = list(validation["path"].sample(n=min(PHOTOS, len(validation)), random_state=0)) or paths
    tweaks = ["in red", "in blue", "for the office", "no stripes", "for summer"]
    # Photo searches go through PHOTOS different photos, the same ones for each thread count.
    cases = (("image + 'in red'", paths[:PHOTOS], lambda path: engine.search(image=path, text="in red", k=K)),
             ("user photo + 'in red'", uploads, lambda path: engine.search(image=path, text="in red", k=K)),
             # The shopper's next tweak of the same photo: its pieces are remembered, words are new.
             ("same user photo, next tweak", tweaks, lambda tweak: engine.search(image=uploads[0], text=tweak, k=K)),
             ("image only", paths[:PHOTOS], lambda path: engine.search(image=path, k=K)),
             ("text only 'red dress'", None, lambda: engine.search(text="red dress", k=K)))
    rows = []
    for name, inputs, fn in cases:
        mode = (fn(inputs[0]) if inputs else fn()).mode
        found = timer.rows("end-to-end", f"search {name} (mode={mode})", fn, inputs=inputs, rate_unit="q/s",
                           repeats=max(timer.repeats, len(inputs) - timer.warmup) if inputs else None)
        if "+ 'in red'" in name:
            with_target(found, f"p50 < {PHOTO_TARGET_MS:.0f} ms", lambda r: r.median * 1e3 < PHOTO_TARGET_MS)
        rows += found
    next_upload = cycling(uploads)
    outfits = (("user photo + 'complete this look'",
                lambda: engine.complete(image=next_upload(), text="complete this look", planner="rules")),
               ("text, three named pieces", lambda: engine.complete(
                   text="white shirt, navy chinos and brown loafers for the office", planner="rules")))
    for name, fn in outfits:
        rows += with_target(timer.rows("end-to-end", f"complete {name} (rules)", fn, rate_unit="q/s"),
                            f"p50 < {OUTFIT_TARGET_MS:.0f} ms", lambda r: r.median * 1e3 < OUTFIT_TARGET_MS)
    return rows


def bench_build(timer: AppTimer, encoder: Encoder, catalog_dir: Path, n: int, runs: int) -> list[Row]:
    """build_index (catalog load, captions, image encoding, FAISS, files) on n real catalog rows."""
    table = pd.read_csv(catalog_dir / "styles.csv", dtype=str, keep_default_na=False)
    subset = table.sample(n=min(n, len(table)), random_state=0)
    with tempfile.TemporaryDirectory(prefix="fashion-rag-bench-") as tmp:
        csv = Path(tmp) / "styles.csv"
        subset.to_csv(csv, index=False)
        rows = timer.rows("build", f"build_index, {len(subset)} catalog images",
                          lambda: build_index(csv, encoder, Path(tmp) / "index", catalog_dir / "images",
                                              progress=False),
                          repeats=runs, warmup=1, unit="s", per_call=len(subset), rate_unit="img/s")
    return with_target(rows, f">= {BUILD_TARGET_IPS:.0f} img/s", lambda r: r.rate >= BUILD_TARGET_IPS)


def bench_app(engine: Engine, catalog_dir: Path, args: argparse.Namespace) -> list[Row]:
    """Encoders, fusion, end-to-end search and index build on real catalog photos."""
    sample = load_catalog(catalog_dir / "styles.csv", catalog_dir / "images").items.sample(n=256, random_state=0)
    paths, captions = list(sample["path"]), [caption(r) for r in sample.to_dict("records")]
    image_vec, text_vec = engine.encoder.encode_images(paths[:1])[0], engine.encoder.encode_texts(["in red"])[0]
    timer = AppTimer(args.torch_threads, args.repeats, args.warmup)
    print("  app benchmarks ...", file=sys.stderr, flush=True)
    # Encoding and building as training and `prepare` do them: with onnxruntime's memory arena,
    # which the engine (a server, small batches) goes without.
    batches = load_encoder(engine.encoder.name)
    return (bench_encoders(timer, batches, paths, captions)
            + bench_fusion(timer, engine, image_vec, text_vec)
            + bench_end_to_end(timer, engine, paths)
            + bench_build(timer, batches, catalog_dir, args.build_images, args.build_runs))


def bench_api(args: argparse.Namespace) -> list[Row]:
    """The public API as a client sees it (scripts/loadtest.py: app.py started on loopback,
    gradio_client sessions on the same cores): one shopper, then 8 at once, photo + text /search
    (+ /reply under load). Once with clients that skip downloading result images (as a browser,
    which fetches them itself over kept-alive connections), once downloading each, as
    gradio_client does by default."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import loadtest
    rows = []
    for download in (False, True):
        how = "client downloads images" if download else "no image downloads"
        print(f"  API load test ({how}) ...", file=sys.stderr, flush=True)
        result = loadtest.main(["--phases", "single,concurrent", "--single-runs", str(args.repeats),
                                "--sessions", "8", "--searches", "8"] + (["--download"] if download else []))
        samples = result["samples"]
        for key, name, target in (("single /search photo+text", "1 shopper: /search photo + text", "one"),
                                  ("single /search text", "1 shopper: /search text only", ""),
                                  ("single /select", "1 shopper: /select (client + queue floor)", ""),
                                  ("concurrent /search photo+text", "8 shoppers: /search photo + text", "load"),
                                  ("concurrent /reply", "8 shoppers: /reply (automatic summary)", "")):
            row = Row("api", f"{name} [{how}]", [ms / 1e3 for ms in samples.get(key, [])] or [float("nan")],
                      rate_unit="q/s" if key.startswith("single") else "")
            if target == "one":
                with_target([row], f"p50 < {API_ONE_TARGET_MS:.0f} ms", lambda r: r.median * 1e3 < API_ONE_TARGET_MS)
            elif target == "load":
                row.name += f", {result['errors']} errors"
                with_target([row], f"p95 < {API_LOAD_TARGET_MS:.0f} ms, 0 errors",
                            lambda r: r.p95 * 1e3 < API_LOAD_TARGET_MS and not result["errors"])
            rows.append(row)
    return rows


def alternating(switch: Callable[[bool], object], call: Callable[[], object], repeats: int) -> dict[bool, list[float]]:
    """Seconds per `call` with `switch(False)` and `switch(True)` in turn, call by call, so that
    machine load hits both alike (the first 3 of each are warm-up, dropped)."""
    samples = {False: [], True: []}
    for n in range(2 * (repeats + 3)):
        switch(bool(n % 2))
        start = time.perf_counter()
        call()
        samples[bool(n % 2)].append(time.perf_counter() - start)
    return {state: times[3:] for state, times in samples.items()}


def bench_demand_log(engine: Engine, repeats: int) -> list[Row]:
    """engine.search (catalog photo + "in red") with the demand log off and on, alternating call by
    call so that machine load hits both alike, and the log's own work on the request path (writing
    happens on its thread, so the searches with it on include that thread's share of the cores)."""
    paths = cycling(list(engine.items["path"].sample(n=64, random_state=0)))
    off = engine.demand
    with tempfile.TemporaryDirectory(prefix="fashion-rag-bench-") as tmp:
        on = DemandLog(Path(tmp) / "insights.sqlite3", engine.items)
        samples = alternating(lambda logged: setattr(engine, "demand", on if logged else off),
                              lambda: engine.search(image=paths(), text="in red", k=K), repeats)
        engine.demand = off
        query = engine.searcher.query(paths(), "in red", K)
        hits = engine.searcher.find(query)
        record = time_calls(lambda: on.searched(query, hits, "benchmark-shopper", "in red"), repeats * 10, 3)
        on.close()
    name = "search image + 'in red'"
    return [Row("demand log", f"{name}, log off", samples[False], rate_unit="q/s"),
            Row("demand log", f"{name}, log on", samples[True], rate_unit="q/s"),
            *with_target([Row("demand log", "recording one search (on the request path)", record, unit="µs")],
                         f"p50 < {DEMAND_LOG_TARGET_MS:g} ms", lambda r: r.median * 1e3 < DEMAND_LOG_TARGET_MS)]


def bench_pieces(engine: Engine, repeats: int) -> list[Row]:
    """What the page does for a photo + "in red": the search (its results are shown), then the
    photo's pieces (chips and boxes), with the pose models on and off, alternating call by call,
    on held-out catalog photos of people (tests/data/worn_pieces.csv) and on photos with nobody in
    them (that file's empty shots, and flat shoes and bags): what finding the pieces adds."""
    labels = pd.read_csv(Path(__file__).resolve().parent.parent / "tests" / "data" / "worn_pieces.csv")
    images = settings.CATALOG_DIR / "images"
    people = [str(images / f"{i}.jpg") for i in labels[labels["role"] != "none"]["id"].unique()]
    flat = engine.items[engine.items["articleType"].isin(["Casual Shoes", "Handbags", "Belts", "Watches"])]
    nobody = [str(images / f"{i}.jpg") for i in labels[labels["role"] == "none"]["id"].unique()] + \
        list(flat["path"].sample(n=30, random_state=0))
    finder, rows = engine.searcher.finder, []
    pose = finder.pose
    for name, photos in (("a person", people), ("nobody", nobody)):
        next_photo = cycling(photos)
        samples = alternating(lambda found: setattr(finder, "pose", pose if found else None),
                              lambda: searched_then_pieces(engine, next_photo()), repeats)
        finder.pose = pose
        rows += [Row("shop the look", f"photo of {name} + 'in red', then pieces, off", samples[False], rate_unit="q/s"),
                 Row("shop the look", f"photo of {name} + 'in red', then pieces, on", samples[True], rate_unit="q/s")]
    next_photo = cycling(people)
    rows.append(Row("shop the look", "engine.pieces, photo of a person",
                    time_calls(lambda: engine.pieces(next_photo()), repeats, 3), rate_unit="photos/s"))
    return rows


def searched_then_pieces(engine: Engine, photo: str) -> None:
    engine.search(image=photo, text="in red", k=K)
    engine.pieces(photo)


def peak_rss_row(name: str) -> Row:
    """The process's peak resident memory so far (ru_maxrss is in KB on Linux)."""
    return Row("memory", name, [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024], unit="MB")


# --- FAISS at scale ---------------------------------------------------------------------------

def timed_build(data: np.ndarray, index_type: str, quick: bool) -> tuple[faiss.Index, float]:
    start = time.perf_counter()
    if quick:
        with quick_ivfpq_training():
            index = make_faiss(data, index_type)
    else:
        index = make_faiss(data, index_type)
    return index, time.perf_counter() - start


def search_one_by_one(index: faiss.Index, queries: np.ndarray, warmup: int) -> tuple[list[float], np.ndarray]:
    """Single-query latencies (one sample per query) and the ids found."""
    for q in queries[:warmup]:
        index.search(q[None], K)
    samples, ids = [], np.empty((len(queries), K), np.int64)
    for i, q in enumerate(queries):
        start = time.perf_counter()
        _, found = index.search(q[None], K)
        samples.append(time.perf_counter() - start)
        ids[i] = found[0]
    return samples, ids


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))


def search_params(index: faiss.Index, index_type: str) -> dict[str, int]:
    if index_type == "hnsw":
        return {"efSearch": index.hnsw.efSearch}
    if index_type == "ivfpq":
        return {"nprobe": faiss.extract_index_ivf(index).nprobe, "k_factor": int(index.k_factor)}
    return {}


def set_search_params(index: faiss.Index, params: dict[str, int]) -> None:
    if "efSearch" in params:
        index.hnsw.efSearch = params["efSearch"]
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = params["nprobe"]
    if "k_factor" in params:
        index.k_factor = params["k_factor"]


def _fmt(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def search_row(section: str, name: str, index: faiss.Index, index_type: str, probes: np.ndarray,
               exact: np.ndarray | None, warmup: int) -> tuple[Row, np.ndarray]:
    """Latency and recall of the index with its current search settings (exact=None: it is flat)."""
    samples, found = search_one_by_one(index, probes, warmup)
    row = Row(section, name, samples, recall=1.0 if exact is None else recall_at_k(found, exact),
              rate_unit="q/s", index_type=index_type, params=search_params(index, index_type))
    if exact is not None:
        row.target = f"p50 < {ANN_TARGET_MS:.0f} ms, R@10 >= {ANN_TARGET_RECALL}"
        row.passed = row.median * 1e3 < ANN_TARGET_MS and row.recall >= ANN_TARGET_RECALL
    return row, found


def bench_tier(real: np.ndarray, n: int, parts: int, sigma: float, args: argparse.Namespace) -> list[Row]:
    """Build each index type with make_faiss on n synthetic vectors, time single queries, then
    sweep the search settings on the same index."""
    rng = np.random.default_rng(n)
    data, probes = synthesise(real, n, sigma, parts, rng), synthesise(real, args.queries, sigma, parts, rng)
    section = f"faiss {n:,} x {data.shape[1]}d" + (" (image half)" if parts == 1 else "")
    rows, exact = [], None
    for index_type in ("flat", "hnsw", "ivfpq"):
        quick = index_type == "ivfpq" and not args.ivfpq_as_is
        label = f"{index_type}{'*' if quick else ''}"
        print(f"  {section}: {label} build, search ...", file=sys.stderr, flush=True)
        faiss.omp_set_num_threads(args.build_threads)
        index, seconds = timed_build(data, index_type, quick)
        rows.append(Row(section, f"{label} build", [seconds], unit="s", per_call=n, rate_unit="vec/s"))
        faiss.omp_set_num_threads(args.search_threads)
        params = search_params(index, index_type)
        row, found = search_row(section, f"{label} search (make_faiss{': ' + _fmt(params) if params else ''})",
                                index, index_type, probes, exact, args.warmup)
        rows.append(row)
        exact = found if exact is None else exact
        for variant in VARIANTS.get(index_type, []):
            set_search_params(index, variant)
            rows.append(search_row(section, f"  {label} {_fmt(variant)}", index, index_type, probes, exact,
                                   args.warmup)[0])
        del index
    return rows


def bench_faiss(real: np.ndarray, dim: int, args: argparse.Namespace) -> tuple[list[Row], dict]:
    """All tiers; tiers above --full-dim-max use the image half only (memory, build time)."""
    rows, tiers = [], {}
    for n in args.sizes:
        parts = 2 if n <= args.full_dim_max else 1
        base = normalise_parts(np.array(real if parts == 2 else real[:, :dim], np.float32), parts)
        tiers[n] = {"dims": base.shape[1], "noise_sigma": noise_sigma(base, parts)}
        rows += bench_tier(base, n, parts, tiers[n]["noise_sigma"], args)
    return rows, tiers


def recommendations(rows: list[Row]) -> list[str]:
    """Per tier and approximate index type, the fastest tried setting that meets the recall target."""
    lines = []
    for section in dict.fromkeys(r.section for r in rows if r.index_type):
        for index_type in VARIANTS:
            ok = [r for r in rows if r.section == section and r.index_type == index_type
                  and r.recall >= ANN_TARGET_RECALL]
            if not ok:
                lines.append(f"{section}: {index_type}: no tried setting reaches R@10 >= {ANN_TARGET_RECALL}")
                continue
            best = min(ok, key=lambda r: r.median)
            verdict = "meets" if best.median * 1e3 < ANN_TARGET_MS else "misses"
            lines.append(f"{section}: {index_type}: {_fmt(best.params)} -> p50 {best.median * 1e3:.2f} ms, "
                         f"R@10 {best.recall:.3f} ({verdict} the {ANN_TARGET_MS:.0f} ms target)")
    return lines


# --- output -----------------------------------------------------------------------------------

def _value(amount: float, unit: str) -> str:
    value = amount * SCALE[unit]
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def render(rows: list[Row]) -> str:
    """Plain-text table with aligned columns, one block per section."""
    header = ["benchmark", "n", "median", "p95", "rate", "R@10", "target", "result"]
    lines = []
    for section, group in itertools.groupby(rows, key=lambda r: r.section):
        lines.append([f"[{section}]"] + [""] * (len(header) - 1))
        for r in group:
            lines.append([r.name, str(len(r.samples)), _value(r.median, r.unit),
                          _value(r.p95, r.unit) if len(r.samples) > 1 else "",
                          f"{r.rate:,.0f} {r.rate_unit}" if r.rate is not None else "",
                          "" if r.recall is None else f"{r.recall:.3f}", r.target,
                          "" if r.passed is None else ("PASS" if r.passed else "FAIL")])
    widths = [max(len(line[i]) for line in [header] + lines) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(c.rjust(w) if 1 <= i <= 5 else c.ljust(w)
                         for i, (c, w) in enumerate(zip(line, widths))).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines])


# --- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--index", type=Path, default=settings.INDEX_DIR, help="built index folder")
    p.add_argument("--composer", type=Path, default=settings.COMPOSER_DIR, help="gated composer folder")
    p.add_argument("--catalog", type=Path, default=settings.CATALOG_DIR, help="folder with styles.csv and images/")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per measurement")
    p.add_argument("--warmup", type=int, default=3, help="discarded runs (FAISS: queries) before timing")
    p.add_argument("--torch-threads", default=",".join(map(str, sorted({1, settings.THREADS}))),
                   help="torch thread counts to compare for the app benchmarks (product: settings.THREADS)")
    p.add_argument("--build-images", type=int, default=512, help="catalog images for the build benchmark")
    p.add_argument("--build-runs", type=int, default=3, help="timed build_index runs (after one warm-up)")
    p.add_argument("--sizes", default="10000,100000,1000000", help="FAISS tiers, comma-separated")
    p.add_argument("--stores", help="also the vector stores at these sizes, with filters (scripts/benchmark_stores.py;"
                   " 1000000,10000000 takes about an hour)")
    p.add_argument("--stores-only", action="store_true", help="only the vector stores (--stores, default 1M and 10M)")
    p.add_argument("--quick", action="store_true", help="only the 10k FAISS tier")
    p.add_argument("--skip-faiss", action="store_true", help="no FAISS tiers")
    p.add_argument("--skip-app", action="store_true", help="no encoder/fusion/end-to-end/build benchmarks")
    p.add_argument("--skip-api", action="store_true", help="no API-level (gradio_client) latency")
    p.add_argument("--demand-log", action="store_true", help="also search with the demand log off and on")
    p.add_argument("--pieces", action="store_true", help="also search photos with the pose models on and off")
    p.add_argument("--queries", type=int, default=200, help="queries per FAISS latency/recall row")
    p.add_argument("--full-dim-max", type=int, default=100_000,
                   help="tiers larger than this use the image half of the vectors only")
    p.add_argument("--search-threads", type=int, default=1, help="FAISS threads for single-query latency")
    p.add_argument("--build-threads", type=int, default=os.cpu_count() or 1, help="FAISS threads for builds")
    p.add_argument("--ivfpq-as-is", action="store_true",
                   help="train IVF-PQ exactly as make_faiss does (k-means on all vectors: minutes at 1M)")
    p.add_argument("--json", type=Path, help="also save the raw numbers here")
    args = p.parse_args(argv)
    args.torch_threads = [int(t) for t in args.torch_threads.split(",") if t.strip()]
    args.sizes = [] if args.skip_faiss else [10_000] if args.quick else \
        [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stores_only:
        benchmark_stores.main(["--sizes", args.stores or "1000000,10000000", "--index", str(args.index)])
        return
    started, load_before = time.time(), os.getloadavg()
    app_faiss_threads = faiss.omp_get_max_threads()
    engine = load_engine(args.index, composer_dir=args.composer)
    manifest = engine.index.manifest
    print(f"benchmarking {args.index}: {len(engine.items):,} items, {manifest['index_type']}, "
          f"model {manifest['model']}", file=sys.stderr, flush=True)

    rows = [] if args.skip_app else bench_app(engine, args.catalog, args)
    rows += [] if args.skip_api else bench_api(args)
    rows += bench_demand_log(engine, args.repeats) if args.demand_log else []
    rows += bench_pieces(engine, args.repeats) if args.pieces else []
    rows.append(peak_rss_row("peak RSS (ru_maxrss) before the FAISS tiers"))
    faiss_rows, tiers = bench_faiss(engine.index.vectors, engine.index.dim, args)
    faiss.omp_set_num_threads(app_faiss_threads)
    if faiss_rows:
        rows += faiss_rows + [peak_rss_row("peak RSS (ru_maxrss) at the end, incl. FAISS tiers")]

    meta = {
        "index": str(args.index), "items": len(engine.items), "index_type": manifest["index_type"],
        "model": manifest["model"], "gated": engine.composer is not None, "repeats": args.repeats,
        "warmup": args.warmup, "queries": args.queries, "k": K, "torch_threads": args.torch_threads,
        "faiss_threads": {"app": app_faiss_threads, "build": args.build_threads, "search": args.search_threads},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"), "tiers": tiers,
        "cpus": os.cpu_count(), "python": platform.python_version(), "faiss": faiss.__version__,
        "torch": torch.__version__, "load_average": {"start": load_before, "end": os.getloadavg()},
        "seconds": round(time.time() - started, 1), "command": " ".join(sys.argv),
    }
    advice = recommendations(rows)
    print(f"fashion-rag benchmark: {args.index} ({meta['items']:,} items, {meta['index_type']}), "
          f"{args.repeats} repeats after {args.warmup} warm-up, {meta['seconds']:.0f} s; {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.1f} -> {meta['load_average']['end'][0]:.1f}")
    print(f"threads: torch {args.torch_threads} (app: {settings.THREADS}); FAISS app {app_faiss_threads}, "
          f"builds {args.build_threads}, single-query search {args.search_threads}; "
          f"OMP_WAIT_POLICY {meta['omp_wait_policy']}")
    print(render(rows))
    if tiers and not args.ivfpq_as_is:
        print(f"* ivfpq*: make_faiss with k-means trained on <= {KMEANS_POINTS_PER_CENTROID} points per "
              "centroid (faiss: 256), to fit the time budget; --ivfpq-as-is builds it unchanged.")
    if tiers:
        print("noise sigma per dimension: " + ", ".join(f"{n:,}: {t['noise_sigma']:.4f}" for n, t in tiers.items()))
    for line in advice:
        print(f"recommended: {line}")
    if args.stores:
        benchmark_stores.main(["--sizes", args.stores, "--index", str(args.index)])
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "recommendations": advice, "rows": [
            {**asdict(r), "median": r.median, "p95": r.p95, "rate": r.rate} for r in rows]}, indent=2))


if __name__ == "__main__":
    main()
