"""The query side: photo and/or text -> fused query vector -> FAISS -> attribute guard -> hits."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import settings
from .catalog import attribute_values, fingerprint, load_catalog
from .encoder import Encoder, load_encoder
from .errors import InputError, StaleIndexError
from .fusion import MODES, NEEDS, GatedComposer, query_vector
from .guard import MAX_CHARS, Guard
from .images import ImageLike, load_image
from .index import Index, load_index

log = logging.getLogger(__name__)
# What auto picks, by scripts/evaluate.py: for photo + text the best fusion available (gated needs a
# trained composer); for text alone, text against both item photos and descriptions.
AUTO_BOTH = ("gated", "concat")
AUTO_TEXT = "concat"
MIN_POOL = 2000  # candidates searched before the guard filters; the whole catalog when it is this small
MAX_K = 100


@dataclass
class Hit:
    item_id: int
    score: float
    item: dict[str, Any]  # the catalog columns of the item (id, gender, articleType, ..., image, path)
    why: list[str] = field(default_factory=list)


class Results(list):
    """A list of Hit, plus what the search did: the mode used, the constraints applied, warnings."""

    def __init__(self, hits: list[Hit], mode: str, applied: list[str], notes: list[str]):
        super().__init__(hits)
        self.mode, self.applied, self.notes = mode, applied, notes


class Engine:
    def __init__(self, index: Index, encoder: Encoder, composer: GatedComposer | None = None,
                 warnings: list[str] | None = None):
        self.index, self.encoder, self.composer = index, encoder, composer
        self.items = index.items
        self._records = self.items.to_dict("records")
        self._row_of = {int(i): row for row, i in enumerate(self.items["id"])}
        self.attribute_values = attribute_values(self.items)
        self.guard = Guard(self.attribute_values)
        self.warnings = warnings or []
        self.modes = [m for m in MODES if m != "gated" or composer is not None]

    def item(self, item_id: int) -> dict[str, Any]:
        if int(item_id) not in self._row_of:
            raise InputError(f"No item {item_id} in this catalog.")
        return dict(self._records[self._row_of[int(item_id)]])

    def resolve_mode(self, mode: str, has_image: bool, has_text: bool) -> str:
        if mode == "auto":
            if has_image and has_text:
                return next(m for m in AUTO_BOTH if m in self.modes)
            return "image" if has_image else AUTO_TEXT
        if mode not in self.modes:
            raise InputError(f"Unknown or unavailable mode {mode!r}; choose one of auto, {', '.join(self.modes)}.")
        given = {"image": has_image, "text": has_text}
        missing = [p for p in NEEDS[mode] if not given[p]]
        if missing:
            raise InputError(f"Mode {mode!r} needs {' and '.join(NEEDS[mode])}; please add "
                             f"{' and '.join('a photo' if p == 'image' else 'a text' for p in missing)}.")
        return mode

    def search(self, image: ImageLike | None = None, text: str | None = None, k: int = 10,
               mode: str = "auto", weight: float = 0.5, filters: dict[str, list[str]] | None = None,
               guard: bool = True) -> Results:
        """Ranked catalog items for a photo, a text, or both (see README for the modes)."""
        if not 1 <= int(k) <= MAX_K:
            raise InputError(f"k must be between 1 and {MAX_K}.")
        if not 0.0 <= float(weight) <= 1.0:
            raise InputError("The text weight must be between 0 and 1.")
        notes = []
        text = " ".join((text or "").split())
        if len(text) > MAX_CHARS:
            notes.append(f"Your text was long; only its first {MAX_CHARS} characters were used.")
            text = text[:MAX_CHARS]
        picture = load_image(image) if image is not None else None
        if picture is None and not text and not filters:
            raise InputError("Nothing to search for: upload a photo, type what you want, or both.")
        constraints = self.guard.parse(text) if guard else self.guard.parse("")
        constraints.text = constraints.text if guard else text
        constraints.merge(filters)
        # Negated words ("no stripes") are kept out of the text vector, which would pull towards them.
        query_text = constraints.text or (text if picture is None else "")
        mode = self.resolve_mode(mode, picture is not None, bool(query_text) or (not text and picture is None))
        image_vec = self.encoder.encode_images([picture])[0] if picture is not None else None
        text_vec = self.encoder.encode_texts([query_text or "a fashion product"])[0] \
            if query_text or picture is None else None
        query = query_vector(mode, image_vec, text_vec, float(weight), self.composer)
        hits = self._ranked(query, int(k), constraints, notes)
        for hit in hits:
            hit.why = self._why(hit, image_vec, text_vec, query_text) + constraints.reasons(hit.item)
        return Results(hits, mode, constraints.describe(), notes + self.warnings)

    def _ranked(self, query: np.ndarray, k: int, constraints, notes: list[str]) -> list[Hit]:
        total = self.index.faiss.ntotal
        pool = total if (constraints and total <= 50_000) else min(total, max(MIN_POOL, 20 * k) if constraints else k)
        scores, rows = self.index.faiss.search(query[None], pool)
        hits = []
        for score, row in zip(scores[0], rows[0]):
            if row < 0 or not constraints.allows(self._records[row]):
                continue
            item = self._records[row]
            hits.append(Hit(int(item["id"]), float(score), dict(item)))
            if len(hits) == k:
                break
        if constraints and len(hits) < k:
            where = "in the catalog" if pool == total else f"among the {pool} closest items"
            notes.append(f"Only {len(hits)} item{'s' * (len(hits) != 1)} {where} match "
                         f"{'; '.join(constraints.describe())}.")
        return hits

    def _why(self, hit: Hit, image_vec, text_vec, query_text: str) -> list[str]:
        stored = self.index.vectors[self._row_of[hit.item_id]]
        dim = self.index.dim
        why = []
        if image_vec is not None:
            why.append(f"looks like your photo (similarity {float(stored[:dim] @ image_vec):.2f})")
        if text_vec is not None and query_text:
            why.append(f"matches “{query_text[:60]}” (image {float(stored[:dim] @ text_vec):.2f}, "
                       f"description {float(stored[dim:] @ text_vec):.2f})")
        return why


def load_engine(index_dir: str | Path | None = None, model: str | None = None,
                composer_dir: str | Path | None = None, check_catalog: bool = True) -> Engine:
    """Load the index, the encoder it was built with (or `model`), and the gated composer if trained."""
    index_dir = Path(index_dir or settings.INDEX_DIR)
    index = load_index(index_dir)
    encoder = load_encoder(model or index.manifest["model"])
    if encoder.weights_hash != index.manifest["model_hash"]:
        raise StaleIndexError(
            f"The index in {index_dir} was built with other encoder weights ({index.manifest['model']}); "
            f"its vectors would not match the queries. Rebuild it: `python scripts/build_index.py --out {index_dir}`.")
    warnings = []
    catalog_csv = Path(index.manifest["catalog"])
    if check_catalog and catalog_csv.is_file():
        current = fingerprint(load_catalog(catalog_csv, check_images=False).items)
        if current != index.manifest["catalog_fingerprint"]:
            warnings.append(f"The catalog at {catalog_csv} changed since the index was built; new or edited "
                            "items are missing from results. Run `python scripts/build_index.py --update`.")
            log.warning(warnings[-1])
    composer = GatedComposer.load(Path(composer_dir or settings.COMPOSER_DIR), encoder.weights_hash)
    return Engine(index, encoder, composer, warnings)
