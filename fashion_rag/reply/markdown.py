"""Text that goes into the page's Markdown: shown as written, and never a live link or remote image.

Shopper words and catalog names are escaped (`escape`); the model's reply keeps its formatting but
loses images, links and raw HTML (`defang`), because a model can be talked into writing
`![](http://tracker/...)`, which every visitor's browser would then fetch.
"""
from __future__ import annotations

import re

_SPECIAL = set("\\`*_[]<>|~#!")
_URL = re.compile(r"(?i)\b(https?|ftp|file|data|javascript)(:)|\b(www)(\.)")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\s*(\([^)\n]*\)|\[[^\]\n]*\])")
_LINK = re.compile(r"\[([^\]\n]*)\]\s*(\([^)\n]*\)|\[[^\]\n]*\])")
_REFERENCE = re.compile(r"(?m)^ {0,3}\[[^\]\n]+\]:.*$")
_NO_LINK = "\u2060"  # word joiner: invisible, but "http⁠://" is no longer a URL to the renderer


def _unlink(text: str) -> str:
    """Bare URLs ("http://…", "www.…") that Markdown would turn into links, as plain text."""
    return _URL.sub(lambda m: (m[1] or m[3]) + _NO_LINK + (m[2] or m[4]), text)


def escape(text: str) -> str:
    """`text` shown literally in Markdown: no formatting, links or HTML of its own."""
    return _unlink("".join("\\" + c if c in _SPECIAL else c for c in str(text)))


def defang(markdown: str) -> str:
    """Model-written Markdown with images dropped, links reduced to their text, raw HTML shown as
    text and bare URLs unlinked; bold, lists and the rest are kept."""
    text = _REFERENCE.sub("", markdown)
    text = _IMAGE.sub(lambda m: f"_(image: {m[1].strip() or 'removed'})_", text)
    text = _LINK.sub(lambda m: m[1], text)
    text = text.replace("<", "&lt;")
    return _unlink(text)
