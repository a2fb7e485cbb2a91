"""What an outfit is planned around, in the planner's terms: the shopper's photo as the reader read
it, a catalog item they have, and the filters every piece must meet."""
from __future__ import annotations

from fashion_rag.data.catalog import group_types
from fashion_rag.encoding.reader import Reading
from fashion_rag.outfits.planner import GROUP_ROLE, ROLE_OF, Piece, Request
from fashion_rag.retrieval.tweak import DESCRIBE_AT, kept_values


def photo_pieces(reading: Reading | None, article_types: list[str], notes: list[str]) -> list[Piece]:
    """What the photo shows as a piece the shopper has (`article_types`: the catalog's), or a note
    when it cannot be read (no photo reader: reading None) or is no outfit piece."""
    if reading is None:
        notes.append("Photos cannot be read here (no photo reader); the outfit follows your words.")
        return []
    group = reading.top("type")[0]
    if group not in GROUP_ROLE:
        notes.append(f"Your photo seems to show {group}, which is not part of an outfit here; "
                     "the outfit follows your words.")
        return []
    # Torn between two values ("sandals or shoes?", "brown or black?"): the piece may be either;
    # an unsure colour or gender is none.
    groups = [g for g in reading.candidates("type") if GROUP_ROLE.get(g) == GROUP_ROLE[group]]
    colours, sure = kept_values(reading, "colour")
    colours = colours if sure >= DESCRIBE_AT else []
    gender, sure = reading.top("gender")
    words = " ".join(([" or ".join(colours)] if colours else []) + [" or ".join(groups)])
    return [Piece(GROUP_ROLE[group], [t for g in groups for t in group_types(g, article_types)], colours,
                  words=words.lower(), source="photo",
                  gender=gender if sure >= DESCRIBE_AT and gender in ("Men", "Women") else "")]


def item_pieces(item: dict, notes: list[str]) -> list[Piece]:
    """A catalog item the shopper has as a piece, or a note when it is no outfit piece."""
    if item["articleType"] not in ROLE_OF:
        notes.append(f"{item['articleType']} is not part of an outfit here; the outfit follows your words.")
        return []
    return [Piece(ROLE_OF[item["articleType"]], [item["articleType"]], [item["baseColour"]],
                  words=f"{item['baseColour']} {item['articleType']}".lower(), source="item",
                  gender=item["gender"] if item["gender"] in ("Men", "Women") else "")]


def restrict(request: Request, filters: dict[str, list[str]], values: dict[str, list[str]]) -> None:
    """Explicit filters restrict every piece: the catalog's other `values` of a filtered column are
    excluded (unisex items stay under a gender filter), and one gender is the outfit's."""
    for column, chosen in filters.items():
        request.exclude[column] = request.exclude.get(column, set()) | \
            (set(values[column]) - set(chosen) - ({"Unisex"} if column == "gender" else set()))
        if column == "gender" and len(chosen) == 1:
            request.gender = chosen[0]
