"""How a catalog item reads on the page, shared by every panel so that a product is named the same
way in the results, the outfit board, the selected-product panel, the quiz and the taste notices."""
from __future__ import annotations

from fashion_rag import Hit
from fashion_rag.data.catalog import MISSING
from fashion_rag.reply.markdown import escape

FACTS = ("gender", "articleType", "baseColour", "season", "usage")  # shown for a product, in order


def field(item: dict, key: str) -> str:
    """The item's `key` as text, "" where the catalog has a placeholder for a missing value."""
    value = str(item.get(key, "") or "").strip()
    return "" if value in MISSING else value


def kind(item: dict) -> str:
    """Colour and type ("Navy Blue Shirts"), the words a shopper scans a grid by."""
    return " ".join(filter(None, [field(item, "baseColour"), field(item, "articleType")]))


def item_name(item: dict) -> str:
    """The product's name, else its kind, else its id: never an empty label."""
    return field(item, "productDisplayName") or kind(item) or f"Item {item.get('id', '')}"


def caption(hit: Hit) -> str:
    """A grid caption; it starts with the kind because the grid shows only its start."""
    return f"{kind(hit.item)} · {hit.score:.2f} · {item_name(hit.item)}"


def details_markdown(hit: Hit, index: int | None = None) -> str:
    """The selected-product panel: the product, its facts, its score and why it matched."""
    item = hit.item
    facts = " · ".join(filter(None, [field(item, k) for k in FACTS]))
    why = "\n".join(f"- {escape(reason)}" for reason in hit.why) or "- close to your query overall"
    number = f"#{index + 1} " if index is not None else ""
    return (f"#### {number}{escape(item_name(item))}\n{escape(facts)}  \nid {hit.item_id} · "
            f"score {hit.score:.3f}\n\n**Why it matched**\n{why}")
