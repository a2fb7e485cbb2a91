"""Build (or --update) the search index: `python scripts/build_index.py [--catalog CSV] [--images DIR]
[--model M] [--out index/] [--index-type flat|hnsw|ivfpq] [--store faiss|milvus://host:port[/collection]]
[--update]`."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fashion_rag import settings  # noqa: E402
from fashion_rag.encoding.encoder import load_encoder  # noqa: E402
from fashion_rag.errors import FashionRagError  # noqa: E402
from fashion_rag.retrieval.index import INDEX_TYPES, build_index  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description="Encode the catalog into an index folder and its vector store.")
    p.add_argument("--catalog", type=Path, default=settings.CATALOG_DIR / "styles.csv", help="styles.csv")
    p.add_argument("--images", type=Path, help="images folder (default: paths in the CSV)")
    p.add_argument("--model", default=settings.MODEL, help="hub id or folder of the encoder")
    p.add_argument("--out", type=Path, default=settings.INDEX_DIR)
    p.add_argument("--index-type", choices=INDEX_TYPES, help="default: the old index's when updating, else flat")
    p.add_argument("--store", default=settings.STORE,
                   help="faiss (embedded in --out) or milvus://host:port[/collection] (default: FASHION_RAG_STORE)")
    p.add_argument("--update", action="store_true",
                   help="encode only new or changed items; change a store of the same kind in place")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    try:
        manifest = build_index(args.catalog, load_encoder(args.model), args.out, args.images,
                               args.index_type, args.update, args.batch_size, store=args.store)
    except FashionRagError as exc:
        sys.exit(f"error: {exc}")
    skipped = {reason: f"{len(ids)} ({', '.join(ids[:8])}{', ...' if len(ids) > 8 else ''})"
               for reason, ids in manifest["skipped"].items()}
    print(json.dumps({**manifest, "skipped": skipped}, indent=2))


if __name__ == "__main__":
    main()
