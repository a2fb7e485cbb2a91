"""The attribute guard: catalog attributes named in the tweak become hard constraints.

Embeddings are good at "vibe" and bad at "not black": a text vector for "no stripes" lies next to
stripes. So the guard finds colours, article types, genders, seasons, usages and patterns in the
text (with negations: "not black", "no sandals", "without stripes", "anything but navy"), turns
them into include/exclude filters on the catalog columns, and hands back the text with the negated
parts removed, for the encoder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from fashion_rag.data.catalog import ATTRIBUTES, NAME_PATTERNS, pattern_tags
from fashion_rag.errors import InputError
from fashion_rag.retrieval.vector_store import Where

LABELS = {"gender": "gender", "articleType": "type", "baseColour": "colour", "season": "season",
          "usage": "usage", "pattern": "pattern"}
PATTERNS = {"stripe": ["stripes", "striped", "stripy", "stripe"],
            "check": ["checks", "checked", "check", "plaid", "checkered"],
            "print": ["printed", "print", "prints", "graphic"],
            "solid": ["solid", "plain"]}
assert tuple(PATTERNS) == NAME_PATTERNS
SYNONYMS = {
    "baseColour": {"gray": ["Grey"], "navy": ["Navy Blue"], "wine": ["Maroon", "Burgundy"],
                   "golden": ["Gold"], "offwhite": ["Off White"], "ivory": ["Off White", "Cream"],
                   "camel": ["Tan", "Beige"]},
    "articleType": {"t-shirt": ["Tshirts"], "t shirt": ["Tshirts"], "t shirts": ["Tshirts"],
                    "tshirt": ["Tshirts"], "tee": ["Tshirts"],
                    "tees": ["Tshirts"], "dress": ["Dresses"], "sneakers": ["Casual Shoes", "Sports Shoes"],
                    "trainers": ["Sports Shoes"], "shoes": ["Casual Shoes", "Sports Shoes", "Formal Shoes",
                                                            "Heels", "Flats"],
                    "footwear": ["Casual Shoes", "Sports Shoes", "Formal Shoes", "Heels", "Flats", "Sandals",
                                 "Flip Flops"],
                    "pants": ["Trousers", "Track Pants"], "jacket": ["Jackets"], "coat": ["Jackets"],
                    "jumper": ["Sweaters"], "hoodie": ["Sweatshirts"], "hoodies": ["Sweatshirts"],
                    "slippers": ["Flip Flops"], "cap": ["Caps"], "hat": ["Caps", "Hat"],
                    "bag": ["Handbags", "Backpacks", "Laptop Bag", "Duffel Bag", "Messenger Bag", "Clutches"],
                    "bags": ["Handbags", "Backpacks", "Laptop Bag", "Duffel Bag", "Messenger Bag", "Clutches"],
                    "sandals": ["Sandals", "Sports Sandals"], "top": ["Tops"], "blouse": ["Tops"],
                    "chinos": ["Trousers"], "chino": ["Trousers"], "slacks": ["Trousers"],
                    "loafers": ["Casual Shoes", "Formal Shoes"], "loafer": ["Casual Shoes", "Formal Shoes"],
                    "brogues": ["Formal Shoes"], "oxfords": ["Formal Shoes"], "pumps": ["Heels"],
                    "stilettos": ["Heels"], "blazer": ["Jackets"], "polo": ["Tshirts"],
                    "purse": ["Handbags", "Clutches"], "tote": ["Handbags"]},
    "gender": {"men": ["Men"], "man": ["Men"], "mens": ["Men"], "men's": ["Men"], "male": ["Men"],
               "guy": ["Men"], "guys": ["Men"], "gents": ["Men"], "women": ["Women"], "woman": ["Women"],
               "womens": ["Women"], "women's": ["Women"], "lady": ["Women"], "ladies": ["Women"],
               "female": ["Women"], "boy": ["Boys"],
               "boys": ["Boys"], "girl": ["Girls"], "girls": ["Girls"], "kids": ["Boys", "Girls"]},
    "season": {"autumn": ["Fall"]},
    "usage": {"sporty": ["Sports"], "sport": ["Sports"], "gym": ["Sports"], "traditional": ["Ethnic"],
              "office": ["Formal"], "work": ["Formal"]},
}
NEGATORS = ["anything but", "anything except", "nothing", "not", "no", "non", "without", "except",
            "avoid", "never", "don't want", "dont want", "excluding", "minus", "but not"]
BREAKS = {",", ";", ".", "!", "?", "but", "and", "with", "in", "for", "to", "that", "which"}
# "not black and navy": a list of values of the same kind after a negation is negated as a whole.
JOINER = re.compile(r"\s*,?\s*(?:and|or|nor|&|/)\s*", re.IGNORECASE)
# Singulars of catalog types that are ordinary adjectives ("a short dress", "in brief").
NOT_SINGULARS = {"short", "brief"}
# "print" is a pattern in "a floral print" but a verb in "print your instructions"; "work" is the
# office in "shoes for work" but a verb in "would this work for a wedding?".
VERB_USE = {"print": re.compile(r"\s+(?:your|the|my|this|that|these|those|all|out|it|me|everything|any|an?)\b", re.I),
            "work": re.compile(r"\s+(?:for|with|well|out|together)\b", re.I)}
MAX_CHARS = 1000


@dataclass
class Constraints:
    include: dict[str, set[str]] = field(default_factory=dict)  # column -> allowed values
    exclude: dict[str, set[str]] = field(default_factory=dict)  # column -> forbidden values
    text: str = ""  # the tweak without its negated parts: what the encoder should see

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def merge(self, filters: dict[str, list[str]] | None) -> "Constraints":
        """Explicit filters (column -> allowed values, checked by Guard.check_filters) narrow the
        parsed ones."""
        for column, values in (filters or {}).items():
            if values:
                wanted = {values} if isinstance(values, str) else set(values)
                self.include[column] = self.include.get(column, wanted) & wanted or wanted
        return self

    def allows(self, item: dict) -> bool:
        return all(self._has(item, c, v) for c, v in self.include.items()) and \
            not any(self._has(item, c, v) for c, v in self.exclude.items())

    def where(self) -> Where:
        """The constraints as a store filter. A unisex item counts as men's and women's, whether
        asked for or ruled out (as in allows)."""
        def widened(column: str, values: set[str]) -> set[str]:
            return values | {"Unisex"} if column == "gender" and values & {"Men", "Women"} else set(values)
        return Where({c: widened(c, v) for c, v in self.include.items()},
                     {c: widened(c, v) for c, v in self.exclude.items()})

    def describe(self) -> list[str]:
        """Human-readable constraints, e.g. ['colour: Red', 'not type: Sandals']."""
        return [f"{LABELS.get(c, c)}: {' or '.join(sorted(v))}" for c, v in self.include.items()] + \
               [f"not {LABELS.get(c, c)}: {' or '.join(sorted(v))}" for c, v in self.exclude.items()]

    def reasons(self, item: dict) -> list[str]:
        """Which constraints this (allowed) item satisfies, for a hit's 'why'."""
        out = [f"{LABELS.get(c, c)} is {self._value(item, c)} (asked: {' or '.join(sorted(v))})"
               for c, v in self.include.items()]
        return out + [f"not {' / '.join(sorted(v))} ({LABELS.get(c, c)})" for c, v in self.exclude.items()]

    @staticmethod
    def _value(item: dict, column: str) -> str:
        return item.get(column, "") if column != "pattern" else "in the name"

    @staticmethod
    def _has(item: dict, column: str, values: set[str]) -> bool:
        if column == "pattern":
            return bool(values.intersection(pattern_tags(item.get("productDisplayName", ""))))
        value = item.get(column, "")
        # A unisex item suits a shopper asking for men's or women's things.
        return value in values or (column == "gender" and value == "Unisex" and bool(values & {"Men", "Women"}))


class Guard:
    """Built once from the catalog's own attribute values; parse() is cheap per query."""

    def __init__(self, attribute_values: dict[str, list[str]]):
        phrases: dict[str, tuple[str, list[str]]] = {}
        for column in ATTRIBUTES:
            for value in attribute_values.get(column, []):
                singular = value.lower()[:-2] if value.lower().endswith(("ches", "shes", "sses")) \
                    else value.lower().rstrip("s")
                for form in {value.lower(), singular} - NOT_SINGULARS:
                    if len(form) > 2:
                        phrases.setdefault(form, (column, [value]))
            known = set(attribute_values.get(column, []))
            for word, values in SYNONYMS.get(column, {}).items():
                values = [v for v in values if v in known]
                if values:
                    phrases[word] = (column, values)
        for stem, words in PATTERNS.items():
            for word in words:
                phrases[word] = ("pattern", [stem])
        self.phrases = phrases
        self.values = {column: list(attribute_values.get(column, [])) for column in ATTRIBUTES}
        alternation = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
        negators = "|".join(re.escape(n) for n in sorted(NEGATORS, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w-])(?:(?P<neg>{negators})|(?P<attr>{alternation}))(?![\w-])"
                                   rf"|(?P<brk>[,;.!?])", re.IGNORECASE)
        self._break_words = re.compile(rf"(?<![\w-])(?:{'|'.join(BREAKS - set(',;.!?'))})(?![\w-])", re.I)

    def check_filters(self, filters: dict | None) -> dict[str, list[str]]:
        """Explicit filters in canonical form: a single value becomes a list, values match the
        catalog's case-insensitively; an unknown column or value is an InputError naming the choices."""
        if filters is None:
            return {}
        if not isinstance(filters, dict):
            raise InputError("Filters must map a column (gender, articleType, baseColour, season, usage) "
                             "to a list of values.")
        checked = {}
        for column, values in filters.items():
            if column not in self.values:
                raise InputError(f"Unknown filter {column!r}; filter on {', '.join(self.values)}.")
            values = [values] if isinstance(values, str) else list(values or [])
            known = {v.lower(): v for v in self.values[column]}
            unknown = [v for v in values if str(v).lower() not in known]
            if unknown:
                raise InputError(f"No {LABELS.get(column, column)} {', '.join(map(repr, unknown))} in this catalog; "
                                 f"choose from {', '.join(self.values[column][:30])}.")
            if values:
                checked[column] = [known[str(v).lower()] for v in values]
        return checked

    def parse(self, text: str | None) -> Constraints:
        constraints = Constraints()
        # Hyphens join words ("off-white", "non-black", "no-stripes"): read them as spaces.
        text = re.sub(r"(?<=\w)-(?=\w)", " ", (text or "")[:MAX_CHARS])
        negated_spans, negating, since_negator, span_start = [], False, 0, 0
        cursor, adjective_end, rescued, last_negated = 0, None, [], None
        for match in self._pattern.finditer(text):
            attr = match.group("attr")
            column = self.phrases[attr.lower()][0] if attr else None
            if attr and attr.lower() in VERB_USE and VERB_USE[attr.lower()].match(text, match.end()):
                continue
            gap = text[cursor:match.start()]
            listed = negating and column is not None and column == last_negated and JOINER.fullmatch(gap)
            # Punctuation ends a negation; so does a joining word once something was negated
            # ("no sandals for summer", yet "not in black" still negates black), unless it joins a
            # list of the same kind ("anything except black and navy").
            if negating and not listed and (match.group("brk") or
                                            (since_negator and self._break_words.search(gap))):
                negating = False
                negated_spans.append((span_start, cursor))
            cursor = match.end()
            if match.group("neg"):
                if not negating:
                    negating, since_negator, span_start = True, 0, match.start()
            elif attr:
                values = self.phrases[attr.lower()][1]
                # In "no striped shirts" / "not black jeans" the negation is about the adjective;
                # the garment right after it is what the shopper still wants.
                qualified = column == "articleType" and adjective_end is not None and \
                    not text[adjective_end:match.start()].strip()
                target = constraints.exclude if negating and not qualified else constraints.include
                if negating and qualified:
                    rescued.append(attr)
                adjective_end = match.end() if negating and column in ("baseColour", "pattern") else None
                last_negated = column if negating and not qualified else None
                target.setdefault(column, set()).update(values)
                since_negator += negating
        if negating:
            negated_spans.append((span_start, len(text)))
        for column, values in constraints.exclude.items():  # "red, not red" -> the negation wins
            if column in constraints.include:
                constraints.include[column] -= values
                if not constraints.include[column]:
                    del constraints.include[column]
        kept = text
        for start, end in reversed(negated_spans):
            kept = kept[:start] + " " + kept[end:]
        constraints.text = " ".join(kept.split() + rescued)
        return constraints
