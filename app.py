"""Start the web app: prepare the model and index if needed, load the engine once, serve the page.

    python app.py                       # http://127.0.0.1:7860
    python app.py --port 8080 --share   # plus a temporary public link
    python app.py --catalog DIR --index DIR

Set FASHION_RAG_PASSWORD (and optionally FASHION_RAG_USER, default "shopper") to require a login
(wrong passwords are throttled). A public link (--share, or a Space) without one is open to anyone:
the app says so on start and in the page footer.
Set OPENAI_API_KEY (and optionally OPENAI_BASE_URL) for the AI stylist; without it the page shows
an automatic summary instead.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    on_spaces = bool(os.environ.get("SPACE_ID"))
    parser = argparse.ArgumentParser(description="Fashion RAG: photo + tweak -> catalog items.")
    parser.add_argument("--host", default="0.0.0.0" if on_spaces else "127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 on Spaces)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860),
                        help="port (default $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also create a temporary public link")
    parser.add_argument("--index", metavar="DIR", help="index folder (default: index/)")
    parser.add_argument("--catalog", metavar="DIR",
                        help="catalog folder with styles.csv and images/ (default: ../shared/catalog)")
    return parser.parse_args(argv)


def access(share: bool):
    """(the login's throttle or None, warning for a public app without a password or ""), from the
    environment."""
    from fashion_rag import llm, settings
    from fashion_rag.serving import LoginThrottle

    password = os.environ.get("FASHION_RAG_PASSWORD", "")
    if password:
        owner = os.environ.get("FASHION_RAG_OWNER_PASSWORD", "")  # the owner's login sees the Insights tab
        return LoginThrottle(os.environ.get("FASHION_RAG_USER") or "shopper", password,
                             owner=(settings.OWNER, owner) if owner else None), ""
    if share or os.environ.get("SPACE_ID"):
        return None, ("This app is public and has no password: anyone with the link can use it"
                      + (" and its AI stylist" if llm.configured() else "")
                      + ". Set FASHION_RAG_PASSWORD to restrict it.")
    return None, ""


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    # Paths go into the environment before fashion_rag is imported: settings reads them once.
    if args.index:
        os.environ["FASHION_RAG_INDEX"] = str(Path(args.index).expanduser().resolve())
    if args.catalog:
        os.environ["FASHION_RAG_CATALOG"] = str(Path(args.catalog).expanduser().resolve())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from fashion_rag import load_engine, settings
    from fashion_rag.errors import FashionRagError
    from fashion_rag.insights import DemandLog
    from fashion_rag.prepare import prepare

    try:
        prepare()  # trains / builds whatever is missing or stale, with progress bars
        engine = load_engine(settings.INDEX_DIR)
        engine.warm_up()
        engine.demand = DemandLog.configured(engine.items)  # from here on: shoppers' requests only
    except FashionRagError as exc:
        print(f"\nCannot start: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:  # e.g. no catalog where it was expected
        print(f"\nCannot start: {exc}", file=sys.stderr)
        return 1

    from fashion_rag import ui
    from fashion_rag import llm

    login, notice = access(args.share)
    if notice:
        print(f"WARNING: {notice}", file=sys.stderr, flush=True)
    demo = ui.build_demo(engine, notice)
    try:
        ui.launch(demo, login, ui.image_dirs(engine), server_name=args.host, server_port=args.port,
                  share=args.share, prevent_thread_lock=True)
    except OSError as exc:  # typically: the port is taken
        print(f"\nCannot start the web server: {exc} Try another --port.", file=sys.stderr)
        return 1
    print(f"Ready in {time.perf_counter() - started:.1f} s: http://{args.host}:{args.port}"
          f"{' (login required)' if login else ''}; stylist: "
          f"{'AI model' if llm.configured() else 'automatic summary (no OPENAI_API_KEY)'}",
          flush=True)
    demo.block_thread()  # until Ctrl+C
    return 0


if __name__ == "__main__":
    sys.exit(main())
