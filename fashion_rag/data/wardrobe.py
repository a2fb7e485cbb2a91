"""Catalog values as dressing groups them: article types per outfit role, colours per colour family.

Outfits build slots and judge colour harmony with them; taste learns colour-family affinities and
spans roles and families in the quiz. They live here, below both, so neither imports the other.
"""
from __future__ import annotations

ROLE_TYPES = {
    "one-piece": ["Dresses", "Sarees", "Kurta Sets", "Jumpsuit"],
    "top": ["Tshirts", "Shirts", "Tops", "Tunics", "Kurtas", "Kurtis"],
    "bottom": ["Jeans", "Trousers", "Shorts", "Skirts", "Capris", "Track Pants", "Leggings", "Churidar"],
    "outerwear": ["Jackets", "Blazers", "Sweaters", "Sweatshirts", "Waistcoat", "Shrug", "Rain Jacket"],
    "shoes": ["Casual Shoes", "Sports Shoes", "Formal Shoes", "Heels", "Flats", "Sandals",
              "Sports Sandals", "Flip Flops"],
    "bag": ["Handbags", "Clutches", "Backpacks", "Laptop Bag", "Messenger Bag", "Duffel Bag"],
    "accessory": ["Watches", "Belts", "Sunglasses", "Ties", "Caps", "Hat", "Scarves", "Mufflers",
                  "Stoles", "Cufflinks"],
}

TYPE_ROLE = {kind: role for role, kinds in ROLE_TYPES.items() for kind in kinds}  # article type -> role


def roles_named(article_types: set[str]) -> set[str]:
    """The roles of these article types (what a shopper's words ask for: "shoes" -> {"shoes"})."""
    return {TYPE_ROLE[kind] for kind in article_types if kind in TYPE_ROLE}


NEUTRALS = ["Black", "White", "Grey", "Grey Melange", "Charcoal", "Navy Blue", "Blue", "Beige", "Cream",
            "Off White", "Khaki", "Tan", "Brown", "Coffee Brown", "Taupe", "Nude", "Skin", "Silver",
            "Steel", "Gold", "Bronze", "Copper", "Metallic"]
ACCENTS = {"red": ["Red", "Maroon", "Burgundy", "Rust"],
           "pink": ["Pink", "Magenta", "Peach", "Purple", "Lavender", "Mauve"],
           "yellow": ["Yellow", "Mustard", "Orange"],
           "green": ["Green", "Olive", "Sea Green", "Teal", "Turquoise Blue", "Fluorescent Green"],
           "multi": ["Multi"]}
COLOUR_FAMILY = {c: "neutral" for c in NEUTRALS} | {c: f for f, cs in ACCENTS.items() for c in cs}


def family(colour: str) -> str:
    """A colour's family; colours the table does not know count as neutral."""
    return COLOUR_FAMILY.get(colour, "neutral")
