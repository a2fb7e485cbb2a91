"""The chat model behind the stylist and the outfit planner: any OpenAI-compatible endpoint. At the
base of the package because two stages use it, outfits (the planner) and reply (the stylist).

Configured by environment variables, read at call time so a running app picks up a new key:
OPENAI_API_KEY (required), OPENAI_BASE_URL, FASHION_RAG_LLM_MODEL, FASHION_RAG_LLM_TIMEOUT.
Both callers put the shopper's words inside delimiter tags, as data; `neutralise` keeps data
from opening or closing a tag.
"""
from __future__ import annotations

import os
import unicodedata

import openai

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 20.0


def api_key() -> str:
    return os.environ.get("OPENAI_API_KEY", "").strip()


def configured() -> bool:
    """Whether a model can be called at all (the page says so up front)."""
    return bool(api_key())


def model() -> str:
    return os.environ.get("FASHION_RAG_LLM_MODEL") or DEFAULT_MODEL


def client() -> openai.OpenAI:
    """A client for the configured endpoint, with a bounded timeout and one retry."""
    return openai.OpenAI(api_key=api_key(), base_url=os.environ.get("OPENAI_BASE_URL") or None,
                         timeout=timeout(), max_retries=1)


def timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("FASHION_RAG_LLM_TIMEOUT") or DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def reason(exc: Exception) -> str:
    """A short, key-free description of a failure (exception messages may echo secrets)."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}" + (", check OPENAI_API_KEY" if exc.status_code == 401 else "")
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "connection failed"
    return type(exc).__name__


# Angle brackets that NFKC leaves alone but a model may read as one (‹ › 〈 〉 ⟨ ⟩ 《 》 ❮ ❯ ˂ ˃).
LOOKALIKES = str.maketrans({c: "&lt;" for c in "\u2039\u3008\u27e8\u300a\u276e\u02c2"} |
                           {c: "&gt;" for c in "\u203a\u3009\u27e9\u300b\u276f\u02c3"})


def neutralise(text: str) -> str:
    """Escape angle brackets so data can never open or close a delimiter tag of a prompt: after
    NFKC, which turns fullwidth and small forms (＜ ﹤) into the plain ones, and lookalikes too."""
    text = unicodedata.normalize("NFKC", text)
    return text.replace("<", "&lt;").replace(">", "&gt;").translate(LOOKALIKES)


def redact(text: str) -> str:
    """The text with the API key blanked out, should a model be talked into echoing it."""
    key = api_key()
    return text.replace(key, "[redacted]") if key else text
