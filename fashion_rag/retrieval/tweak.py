"""Photo + tweak: keep what the photo shows, change what the tweak names.

The photo reader says what the photo shows (type group, gender, colour, pattern, each with a
confidence); the guard says what the tweak asks for. An attribute the tweak names, or talks about
("in softer colours", "another pattern"), is *changed*: the guard's filters and the tweak's words
decide it. Every other attribute is *kept*, in two soft ways:
- words: a confident reading (>= DESCRIBE_AT) is written into the query text ("women's dress" +
  the tweak), which is matched against the items' descriptions (the index's caption half);
- a prior: each candidate's score gains PRIOR[attribute] x the reading's probability of that
  item's value. A low-confidence reading is a flat distribution, so it barely moves the ranking
  and never empties it, unlike a hard filter.
When the reader is torn between two values ("sandals or shoes?", `Reading.candidates`), both are
kept alike, in the words and in the prior, until the shopper picks one.
The query vector is the concat one, [(1 - WEIGHT) image ; WEIGHT text]. WEIGHT and PRIOR were
chosen on the user photos' dev part (`python scripts/evaluate.py --tune`, which also scores the
gender prior by the gender of the results); DESCRIBE_AT was checked for gender on the same dev
uploads (docs/how-it-works.md, *guided*).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fashion_rag.encoding.reader import ATTRIBUTES, Reading
from fashion_rag.retrieval.guard import Constraints

COLUMN = {"type": "articleType", "gender": "gender", "colour": "baseColour", "pattern": "pattern"}
TALKS_ABOUT = {  # words that change an attribute without naming a value
    "colour": re.compile(r"\b(?:colou?rs?|colou?red|shades?|tones?|pastels?|brighter|darker|softer|"
                         r"lighter|muted|neutrals?|vivid|bold)\b", re.I),
    "pattern": re.compile(r"\b(?:patterns?|patterned)\b", re.I),
    "gender": re.compile(r"\b(?:unisex)\b", re.I),
}
GENDER_WORDS = {"Men": "men's", "Women": "women's", "Boys": "boys'", "Girls": "girls'", "Unisex": "unisex"}
# Re-chosen after the image tower gained colour statistics and the second view (dev mean P@10 of
# alone, colour and season/usage: 0.896 at the old 0.3 / 0.3, 0.902 here, the grid's best).
WEIGHT = 0.7
PRIOR = {"type": 0.6, "gender": 0.1, "colour": 0.1, "pattern": 0.05}
DESCRIBE_AT = 0.5


@dataclass
class Plan:
    reading: Reading
    kept: list[str]  # attributes carried over from the photo
    changed: dict[str, str]  # attribute -> what the tweak asks for, in words
    text: str  # the query text: the kept description plus the tweak

    def describe(self) -> list[str]:
        """Human-readable: what is kept from the photo and what the tweak changes."""
        kept = [f"{a} {' or '.join(values)}" for a in self.kept
                for values, confidence in [kept_values(self.reading, a)] if confidence >= DESCRIBE_AT]
        out = [f"kept from your photo: {', '.join(kept)}"] if kept else []
        return out + [f"your words change the {a}: {v}" for a, v in self.changed.items()]


def kept_values(reading: Reading, attribute: str) -> tuple[list[str], float]:
    """The value(s) the photo shows for an attribute (two when the reader is torn) and their
    confidence together."""
    values = reading.candidates(attribute)
    return values, sum(reading.probability(attribute)[v] for v in values)


def plan(reading: Reading, constraints: Constraints, tweak: str) -> Plan:
    """Which attributes the tweak changes, which are kept, and the query text."""
    changed = {}
    for attribute in ATTRIBUTES:
        column = COLUMN[attribute]
        asked = [" or ".join(sorted(constraints.include[column]))] if column in constraints.include else []
        asked += [f"not {' / '.join(sorted(constraints.exclude[column]))}"] if column in constraints.exclude else []
        talk = TALKS_ABOUT.get(attribute)
        if not asked and talk is not None and talk.search(tweak):
            asked = [talk.search(tweak).group(0)]
        if asked:
            changed[attribute] = "; ".join(asked)
    kept = [a for a in ATTRIBUTES if a not in changed]
    words = []
    for attribute in ("gender", "colour", "pattern", "type"):
        values, confidence = kept_values(reading, attribute)
        if attribute in kept and confidence >= DESCRIBE_AT and "solid" not in values:
            words.append(" or ".join(GENDER_WORDS.get(v, v) if attribute == "gender" else v.lower() for v in values))
    text = " ".join(words + tweak.split())
    return Plan(reading, kept, changed, text)


def prior(the_plan: Plan, codes: dict[str, np.ndarray], classes: dict[str, list[str]]) -> np.ndarray:
    """Per catalog row, the score bonus for agreeing with the photo on the kept attributes.
    `codes[a]` holds each row's class index for attribute a (-1 when the reader has no such class)."""
    rows = len(next(iter(codes.values())))
    bonus = np.zeros(rows, np.float32)
    for attribute in the_plan.kept:
        values, together = kept_values(the_plan.reading, attribute)
        probability = the_plan.reading.probability(attribute) | {v: together for v in values}
        lookup = np.array([probability.get(c, 0.0) for c in classes[attribute]] + [0.0], np.float32)
        if attribute == "gender" and "Unisex" in classes["gender"]:  # fits men and women alike
            unisex = classes["gender"].index("Unisex")
            lookup[unisex] += 0.5 * (probability.get("Men", 0.0) + probability.get("Women", 0.0))
        bonus += PRIOR[attribute] * lookup[codes[attribute]]  # index -1 is the appended 0
    return bonus
