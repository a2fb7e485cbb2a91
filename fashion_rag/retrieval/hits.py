"""A found catalog item: what search results and outfit slots are made of."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hit:
    item_id: int
    score: float
    item: dict[str, Any]  # the catalog columns of the item (id, gender, articleType, ..., image, path)
    why: list[str] = field(default_factory=list)
