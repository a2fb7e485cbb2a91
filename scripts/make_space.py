"""Assemble a Hugging Face Space that starts as pushed: code, catalog, trained models and index.

A Space has no ../shared and should not train for 13 minutes at start-up, so OUT gets everything:
the Spaces README (front matter), app.py, fashion_rag/, requirements.txt (without the test tools),
catalog/ (styles.csv + the images of its rows), models/ (encoder, gated composer, photo reader, pose)
and index/ (copied when it matches, else built here with the same encoder), plus a .gitattributes
that stores binaries with Git LFS. Inside OUT, `python app.py` finds catalog/ beside the code and
starts without training. Run `python -m fashion_rag prepare` first.

    python scripts/make_space.py OUT                 # the whole catalog
    python scripts/make_space.py OUT --items 300     # a small, evenly spread subset (tests, demos)
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fashion_rag import settings  # noqa: E402
from fashion_rag.data.catalog import COLUMNS, fingerprint, load_catalog  # noqa: E402
from fashion_rag.encoding.encoder import load_encoder  # noqa: E402
from fashion_rag.errors import (  # noqa: E402
    FashionRagError,
    IndexMissingError,
    StaleIndexError,
    StoreUnavailableError,
)
from fashion_rag.retrieval.index import FILES, build_index, load_index  # noqa: E402

CODE = ["app.py", "README.md", "docs", "fashion_rag", "assets"]
LFS = ["*.safetensors", "*.onnx", "*.tflite", "*.pt", "*.faiss", "*.npy", "*.jpg", "*.png"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".building")


def space_requirements() -> str:
    """requirements.txt up to its test section: a Space needs no pytest or selenium."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return "\n".join(lines[:lines.index("# tests")] if "# tests" in lines else lines).rstrip() + "\n"


def subset(table: pd.DataFrame, items: int) -> pd.DataFrame:
    """`items` rows spread evenly over the table, or all of it."""
    if items >= len(table):
        return table
    step = len(table) / items
    return table.iloc[[int(n * step) for n in range(items)]]


def copy_catalog(catalog_dir: Path, out: Path, items: int | None) -> Path:
    """catalog/styles.csv and the images it names: the table as is, or `items` of its rows."""
    target = out / "catalog"
    (target / "images").mkdir(parents=True)
    if not items:
        shutil.copy2(catalog_dir / "styles.csv", target / "styles.csv")
        shutil.copytree(catalog_dir / "images", target / "images", dirs_exist_ok=True)
        return target / "styles.csv"
    table = subset(load_catalog(catalog_dir / "styles.csv").items, items)  # good rows with their images
    for path in table["path"]:
        shutil.copy2(path, target / "images" / Path(path).name)
    table.assign(image=["images/" + Path(p).name for p in table["path"]])[COLUMNS].to_csv(
        target / "styles.csv", index=False)
    return target / "styles.csv"


def copy_models(out: Path) -> dict[str, Path]:
    """The trained encoder, composer and reader, and the pose models when fetched (without them a
    photo of a person is searched as one piece), under models/ as settings expects them."""
    folders = {"encoder": Path(settings.MODEL), "composer": settings.COMPOSER_DIR, "reader": settings.READER_DIR}
    missing = [name for name, folder in folders.items() if not folder.is_dir()]
    if missing:
        raise SystemExit(f"No trained {', '.join(missing)} here: run `python -m fashion_rag prepare` first.")
    if settings.POSE_DIR.is_dir():
        folders["pose"] = settings.POSE_DIR
    copied = {}
    for name, folder in folders.items():
        copied[name] = out / "models" / folder.name
        shutil.copytree(folder, copied[name], ignore=IGNORE)
    return copied


def make_index(catalog_csv: Path, encoder_dir: Path, out: Path) -> str:
    """Copy the app's index when it was built from these very rows with this encoder into the
    embedded store; else build one (a Space holds its vectors itself: FAISS)."""
    encoder = load_encoder(str(encoder_dir))
    target = out / "index"
    try:
        current = load_index(settings.INDEX_DIR, check_store=False)
        same = (current.manifest["model_hash"] == encoder.weights_hash and current.manifest["catalog_fingerprint"]
                == fingerprint(load_catalog(catalog_csv, check_images=False).items)
                and current.manifest.get("store", "faiss") == "faiss")
    except (IndexMissingError, StaleIndexError, StoreUnavailableError):
        same = False
    if same:
        target.mkdir()
        for name in FILES.values():
            shutil.copy2(settings.INDEX_DIR / name, target / name)
        return "copied"
    build_index(catalog_csv, encoder, target, store="faiss")
    return "built"


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="the Space folder to create (must not exist, or be empty)")
    p.add_argument("--items", type=int, help="only this many catalog rows, spread evenly (default: all)")
    p.add_argument("--catalog", type=Path, default=settings.CATALOG_DIR, help="catalog folder to ship")
    args = p.parse_args(argv)
    out = args.out.resolve()
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty; give a new folder.")
    if not (args.catalog / "styles.csv").is_file():
        raise SystemExit(f"No catalog at {args.catalog} (styles.csv + images/); give --catalog.")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    for name in CODE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=IGNORE)
        elif source.is_file():
            shutil.copy2(source, out / name)
    (out / "requirements.txt").write_text(space_requirements())
    (out / ".gitattributes").write_text("".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in LFS))
    (out / ".gitignore").write_text("__pycache__/\nprofiles/\n")
    catalog_csv = copy_catalog(args.catalog, out, args.items)
    models = copy_models(out)
    try:
        how = make_index(catalog_csv, models["encoder"], out)
    except FashionRagError as exc:
        raise SystemExit(f"Cannot index the Space's catalog: {exc}") from None
    rows = len(pd.read_csv(catalog_csv, dtype=str))
    print(f"Space folder {out}: {rows} catalog rows, index {how}, {size_mb(out):.0f} MB, "
          f"in {time.perf_counter() - started:.0f} s.\n"
          f"Try it: cd {out} && python app.py\n"
          f"Push it: huggingface-cli upload <user>/<space> {out} . --repo-type space")
    return out


if __name__ == "__main__":
    main()
