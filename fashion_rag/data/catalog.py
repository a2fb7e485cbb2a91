"""The catalog table: loading and validating styles.csv, and turning rows into captions.

Captions are how metadata becomes text the encoder can align images to; the same functions
are used to train the encoder, to build the index and to evaluate, so they must agree.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour",
           "season", "year", "usage", "productDisplayName", "image"]
REQUIRED = ["id", "gender", "articleType", "baseColour"]
ATTRIBUTES = ["gender", "articleType", "baseColour", "season", "usage"]  # what the guard filters on
MISSING = {"", "NA", "nan", "None"}
NAME_PATTERNS = ("stripe", "check", "print", "solid")  # pattern words the guard finds in product names
PATTERN_NAMES = {"stripe": "striped", "check": "checked", "print": "printed", "solid": "solid"}  # for people

# Article types a photo cannot tell apart share a group: the unit the photo reader predicts and
# real-photo relevance is judged by. Types not listed are a group of their own (lower-cased).
TYPE_GROUPS = {
    "t-shirt": ["Tshirts"],
    "top": ["Tops", "Tunics", "Shrug"],
    "shirt": ["Shirts"],
    "kurta": ["Kurtas", "Kurtis", "Kurta Sets", "Sarees"],
    "dress": ["Dresses"],
    "sweater": ["Sweaters", "Sweatshirts"],
    "jacket": ["Jackets", "Waistcoat", "Rain Jacket", "Blazers"],
    "trousers": ["Trousers", "Jeans", "Track Pants", "Tracksuits", "Lounge Pants", "Capris",
                 "Leggings", "Churidar"],
    "shorts": ["Shorts", "Lounge Shorts"],
    "skirt": ["Skirts"],
    "innerwear": ["Briefs", "Trunk", "Boxers", "Bra", "Innerwear Vests"],
    "shoes": ["Casual Shoes", "Sports Shoes", "Formal Shoes"],
    "heels": ["Heels"],
    "flats": ["Flats"],
    "sandals": ["Sandals", "Sports Sandals", "Flip Flops"],
    "bag": ["Handbags", "Backpacks", "Clutches", "Duffel Bag", "Laptop Bag", "Messenger Bag",
            "Mobile Pouch", "Rucksacks", "Waist Pouch"],
    "cap": ["Caps", "Hat", "Headband"],
    "socks": ["Socks", "Stockings", "Tights"],
    "scarf": ["Scarves", "Mufflers", "Stoles", "Dupatta"],
    "fragrance": ["Deodorant", "Fragrance Gift Set", "Perfume and Body Mist"],
}
_GROUP_OF = {kind: group for group, kinds in TYPE_GROUPS.items() for kind in kinds}

# Garment labels of the user photos (both folders) -> the type groups they correspond to.
# "body" (a baby bodysuit) has no counterpart in the catalog and is left out.
UPLOAD_GROUPS = {
    "dress": ["dress"], "hat": ["cap"], "longsleeve": ["sweater", "top", "t-shirt"],
    "outwear": ["jacket", "sweater"], "pants": ["trousers"], "shirt": ["shirt"],
    "shoes": ["shoes", "heels", "flats"], "shorts": ["shorts"], "skirt": ["skirt"],
    "t-shirt": ["t-shirt"], "polo": ["t-shirt"], "undershirt": ["innerwear"], "blazer": ["jacket"],
    "hoodie": ["sweater"], "top": ["top"], "blouse": ["top"],
}
UPLOAD_WORDS = {"longsleeve": "long sleeve top", "outwear": "jacket", "pants": "trousers",
                "polo": "polo shirt", "undershirt": "vest"}


def type_group(article_type: str) -> str:
    return _GROUP_OF.get(article_type, article_type.lower())


def group_types(group: str, known: list[str]) -> list[str]:
    """The article types among `known` that belong to `group`."""
    return [kind for kind in known if type_group(kind) == group]


@dataclass
class Catalog:
    items: pd.DataFrame  # one row per usable item, COLUMNS plus "path" (absolute image path)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> row ids

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())


def load_catalog(csv_path: str | Path, images_dir: str | Path | None = None,
                 check_images: bool = True) -> Catalog:
    """Read styles.csv, keeping good rows and reporting (not failing on) malformed ones."""
    csv_path = Path(csv_path).resolve()
    if not csv_path.is_file():
        raise FileNotFoundError(f"Catalog table not found: {csv_path}. Point --catalog (or "
                                f"FASHION_RAG_CATALOG) at a folder with styles.csv and images/.")
    bad_lines: list[str] = []
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, engine="python",
                        on_bad_lines=lambda line: bad_lines.append(",".join(line)[:60]) and None)
    missing_cols = [c for c in REQUIRED if c not in frame.columns]
    if missing_cols:
        raise ValueError(f"{csv_path} lacks the columns {missing_cols}; expected {COLUMNS}.")
    for col in COLUMNS:
        if col not in frame.columns:
            frame[col] = ""
    frame = frame[COLUMNS].fillna("").apply(lambda s: s.str.strip())  # short rows have NaN cells
    skipped: dict[str, list[str]] = {}
    if bad_lines:
        skipped["unparseable line"] = bad_lines

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal frame
        if mask.any():
            skipped.setdefault(reason, []).extend(frame.loc[mask, "id"].astype(str).tolist())
            frame = frame[~mask]

    drop(~frame["id"].str.fullmatch(r"\d+"), "id is not a number")
    drop(frame[REQUIRED].isin(MISSING).any(axis=1), "required field empty")
    drop(frame["id"].duplicated(), "duplicate id")
    frame = frame.assign(id=frame["id"].astype(int))
    rel = frame["image"].where(frame["image"] != "", "images/" + frame["id"].astype(str) + ".jpg")
    # The CSV's paths are relative to its own folder; an explicit images folder holds the files flat.
    frame["path"] = [str(Path(images_dir) / Path(r).name) if images_dir else str(csv_path.parent / r)
                     for r in rel]
    if check_images:
        drop(~frame["path"].map(lambda p: Path(p).is_file()), "image file missing")
    return Catalog(frame.reset_index(drop=True), skipped)


def fingerprint(items: pd.DataFrame) -> str:
    """A hash of the rows that matter, so an index can tell it was built from another catalog."""
    digest = hashlib.sha256()
    for row in items[COLUMNS].itertuples(index=False):
        digest.update("\x1f".join(map(str, row)).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def _known(value: str) -> str:
    return "" if value in MISSING else value


def _gender_phrase(gender: str) -> str:
    return {"Men": "men's", "Women": "women's", "Boys": "boys'", "Girls": "girls'",
            "Unisex": "unisex"}.get(gender, "")


def caption(item: dict) -> str:
    """The canonical caption of an item: what it is, in plain words."""
    words = [_gender_phrase(item["gender"]), _known(item["baseColour"]).lower(),
             _known(item["articleType"]).lower()]
    text = " ".join(w for w in words if w)
    extras = [f"for {item['season'].lower()}" if _known(item["season"]) else "",
              f"{item['usage'].lower()} wear" if _known(item["usage"]) else ""]
    return ", ".join([text] + [e for e in extras if e])


def caption_variants(item: dict) -> list[str]:
    """Several wordings of the same facts, so the text side learns attributes, not a template."""
    g, colour = _gender_phrase(item["gender"]), _known(item["baseColour"]).lower()
    kind, usage = _known(item["articleType"]).lower(), _known(item["usage"]).lower()
    season = _known(item["season"]).lower()
    name = _known(item.get("productDisplayName", ""))
    variants = [
        caption(item),
        f"a photo of a {colour} {kind}",
        f"{colour} {kind} for {item['gender'].lower()}",
        f"{usage} {colour} {kind}, {season}".strip(", "),
        f"{g} {kind} in {colour}",
    ]
    if name:
        variants.append(name.lower())
    return [" ".join(v.split()) for v in variants]


def random_caption(item: dict, rng: random.Random) -> str:
    return rng.choice(caption_variants(item))


def attribute_values(items: pd.DataFrame) -> dict[str, list[str]]:
    """The catalog's own values per attribute, most common first (for filters and the guard)."""
    return {col: [v for v in items[col].value_counts().index if v not in MISSING]
            for col in ATTRIBUTES}


def pattern_tags(name: str) -> list[str]:
    """The NAME_PATTERNS a product name mentions ("Striped Polo" -> ["stripe"])."""
    name = str(name).lower()
    return [stem for stem in NAME_PATTERNS if stem in name]
