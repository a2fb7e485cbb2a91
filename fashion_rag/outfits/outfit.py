"""Putting an outfit together: candidates per slot from the index, then the combination of pieces
that goes together, with ranked alternatives per slot so one piece can be swapped alone.

How pieces are judged to go together (a rule table, applied to the chosen pieces together with
what the shopper already has):
- gender: one per outfit, unisex pieces suit either. It is what the shopper asked, else what the
  photo or their piece is for, else the gender whose outfit scores best.
- colour harmony, by COLOUR_FAMILY (fashion_rag.data.wardrobe):
      neutral  black, white, greys, navy, blue (denim), beige, cream, off white, khaki, tan,
               browns, taupe, nude, and the metallics (silver, steel, gold, bronze, copper)
      red      red, maroon, burgundy, rust
      pink     pink, magenta, peach, purple, lavender, mauve
      yellow   yellow, mustard, orange
      green    green, olive, sea green, teal, turquoise, fluorescent green
      multi    multi-coloured
  Neutrals go with anything; accent colours only with their own family. So an outfit holds at
  most one accent family (a red dress takes black, white or maroon shoes, not green ones), and
  a multi-coloured piece goes with neutrals only.
- usage: sports pieces do not go with formal or ethnic ones.
- season: summer pieces do not go with winter ones.
Each broken rule costs PENALTY against the summed similarity of the pieces to their slots'
queries, and the best total wins (a small beam search over each slot's top candidates).
Types, colours, patterns and negations the shopper names are hard filters; usage and season
(asked, or from an occasion such as "beach") are preferred: each one an item meets adds PREFER
to its score, and a note says when a slot has no such item at all.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from fashion_rag.data.wardrobe import COLOUR_FAMILY, family
from fashion_rag.outfits.planner import NOUN, Piece, Request, Vocabulary
from fashion_rag.retrieval.guard import LABELS
from fashion_rag.retrieval.hits import Hit

_COLOURS = re.compile(rf"\b(?:{'|'.join(sorted(map(re.escape, COLOUR_FAMILY), key=len, reverse=True))}|navy)\b", re.I)
PENALTY = {"colour": 1.0, "usage": 0.5, "season": 0.3}
PREFER = 0.1  # score bonus per preference (usage, season) an item meets
POOL = 40  # candidates kept per slot (the outfit's piece and its alternatives come from these)
CANDIDATES, BEAM = 8, 16  # the combination search: top candidates per slot, partial outfits kept
MAX_ALTERNATIVES = 10
GENDERS = ("Women", "Men")  # tried in turn when nothing says who the outfit is for


def clashes(pieces: list[dict]) -> list[str]:
    """The rules (colour, usage, season) a set of pieces breaks; [] when they go together."""
    accents = [family(p.get("baseColour", "")) for p in pieces]
    accents = [a for a in accents if a != "neutral"]
    usages = {p.get("usage", "") for p in pieces}
    seasons = {p.get("season", "") for p in pieces}
    return [rule for rule, broken in (
        ("colour", len(set(accents)) > 1 or accents.count("multi") > 1),
        ("usage", "Sports" in usages and bool(usages & {"Formal", "Ethnic"})),
        ("season", {"Summer", "Winter"} <= seasons)) if broken]


def penalty(pieces: list[dict]) -> float:
    return sum(PENALTY[rule] for rule in clashes(pieces))


@dataclass
class Slot:
    role: str
    hits: list[Hit]  # best first: hits[0] is the piece in the outfit, the rest are alternatives
    why: str
    asked: str = ""  # what the request said about this slot ("navy chinos"); "" = to complete it


@dataclass
class Outfit:
    slots: list[Slot]
    planner: str  # "llm" or "rules"
    notes: list[str] = field(default_factory=list)
    context: list[Piece] = field(default_factory=list)  # what the shopper has
    gender: str = ""

    def pieces(self) -> list[Hit]:
        return [slot.hits[0] for slot in self.slots if slot.hits]

    def swap(self, slot: int, choice: int) -> "Outfit":
        """A copy with alternative `choice` of slot `slot` as that slot's piece, the other slots
        kept. The slot's list rotates, so swapping in choice 1 again and again cycles through all."""
        if not 0 <= slot < len(self.slots):
            raise IndexError(f"no slot {slot}")
        hits = self.slots[slot].hits
        if not 0 <= choice < len(hits):
            raise IndexError(f"no alternative {choice} in slot {slot}")
        slots = list(self.slots)
        slots[slot] = replace(slots[slot], hits=hits[choice:] + hits[:choice])
        return replace(self, slots=slots)

    def describe(self) -> list[str]:
        """What shaped the outfit, for a status line: planner, gender, context."""
        out = [f"planned by {'the AI planner' if self.planner == 'llm' else 'rules'}"]
        if self.gender:
            out.append(f"for {self.gender}")
        if self.context:  # "around your photo (black trousers, white shirt), your red dress"
            worn = [p.words for p in self.context if p.source == "photo"]
            out.append("around " + ", ".join([f"your photo ({', '.join(worn)})"] * bool(worn) +
                                             [f"your {p.words}" for p in self.context if p.source != "photo"]))
        return out


class Outfitter:
    """Builds outfits over one engine's catalog. `search(texts)` returns, per query text, catalog
    rows ordered by similarity and their scores."""

    def __init__(self, items: pd.DataFrame, vocab: Vocabulary,
                 search: Callable[[list[str]], list[tuple[np.ndarray, np.ndarray]]]):
        self.vocab, self.search = vocab, search
        self.records = items.to_dict("records")
        self.column = {c: items[c].to_numpy() for c in ("articleType", "baseColour", "gender", "usage", "season")}
        self.names = items["productDisplayName"].str.lower()
        self._patterns: dict[str, np.ndarray] = {}
        self._kids = self.names.str.contains(r"\b(?:kids|girls|boys|infant)\b", regex=True).to_numpy()

    def complete(self, request: Request, k: int = 3) -> Outfit:
        notes = list(request.notes)
        ranked = self.search([self._query(p, request) for p in request.targets])
        genders = [request.gender] if request.gender else list(GENDERS)
        best = None
        for gender in genders:
            tried_notes: list[str] = []
            pools = [self._pool(p, request, gender, rows, scores, tried_notes)
                     for p, (rows, scores) in zip(request.targets, ranked)]
            chosen, value = self._combine(pools, request.context)
            key = (sum(c is not None for c in chosen), value)
            if best is None or key > best[0]:
                best = (key, gender, pools, chosen, tried_notes)
        _, gender, pools, chosen, tried_notes = best
        notes += tried_notes
        context = [_context_item(p) for p in request.context]
        slots = []
        for n, (piece, pool) in enumerate(zip(request.targets, pools)):
            others = context + [c.item for i, c in enumerate(chosen) if c is not None and i != n]
            asked = piece.words if piece.source in ("text", "llm") else ""
            if chosen[n] is None:
                notes.append(f"Nothing in the catalog fits the {asked or NOUN[piece.role]} slot "
                             f"({self._describe(piece, request, gender)}).")
                slots.append(Slot(piece.role, [], "nothing in the catalog fits", asked))
                continue
            hits = [chosen[n]] + self._alternatives(pool, chosen[n], others, k - 1)
            for hit in hits:
                hit.why = [f"{piece.role}: {asked or 'completes the look'}", _colour_reason(hit.item, others)] + \
                    self._reasons(hit.item, piece, request)
            slots.append(Slot(piece.role, hits, f"{asked or 'completes the look'}; "
                                                f"{_colour_reason(chosen[n].item, others)}", asked))
        return Outfit(slots, request.planner, list(dict.fromkeys(notes)), request.context,
                      request.gender or (gender if any(s.hits for s in slots) else ""))

    # ------------------------------------------------------------ per slot

    def _query(self, piece: Piece, request: Request) -> str:
        gender = {"Men": "men's", "Women": "women's", "Boys": "boys'", "Girls": "girls'"}.get(request.gender, "")
        colours = " ".join(c.lower() for c in piece.colours if c.lower() not in piece.words.lower())
        extra = " ".join(w.lower() for w in request.usage + request.season)
        # A slot added to complete the look follows the kind of thing the shopper has ("to go with
        # a hoodie"), not its colour: colour is the harmony rules' business.
        around = f"to go with {' and '.join(_COLOURS.sub('', p.words) for p in request.context)}" \
            if piece.source == "default" and request.context else ""
        return " ".join(f"{gender} {colours} {piece.words or NOUN[piece.role]} {around} {request.occasion} {extra}".split())

    def _has(self, column: str, values) -> np.ndarray:
        if column != "pattern":
            return np.isin(self.column[column], list(values))
        hit = np.zeros(len(self.records), bool)
        for stem in values:
            if stem not in self._patterns:
                self._patterns[stem] = self.names.str.contains(stem, regex=False).to_numpy()
            hit |= self._patterns[stem]
        return hit

    def _mask(self, piece: Piece, request: Request, gender: str) -> np.ndarray:
        """The rows a slot may take: its types, colours and patterns, the outfit-wide negations
        and the gender (unisex items suit any)."""
        mask = self._has("articleType", piece.types or self.vocab.types[piece.role])
        colours = piece.colours or request.include.get("baseColour")
        patterns = piece.patterns or request.include.get("pattern")
        if colours:
            mask &= self._has("baseColour", colours)
        if patterns:
            mask &= self._has("pattern", patterns)
        for column, values in request.exclude.items():
            mask &= ~self._has(column, values)
        if gender:
            mask &= self._has("gender", [gender, "Unisex"])
            if gender in ("Men", "Women"):  # some adult-labelled items are children's
                mask &= ~self._kids
        return mask

    def _pool(self, piece: Piece, request: Request, gender: str, rows: np.ndarray, scores: np.ndarray,
              notes: list[str]) -> list[Hit]:
        mask = self._mask(piece, request, gender)
        keep = mask[rows]
        rows, scores = rows[keep], scores[keep].copy()
        for column in ("usage", "season"):
            wanted = getattr(request, column)
            if wanted:
                preferred = self._has(column, wanted)[rows]
                scores += PREFER * preferred
                if len(rows) and not preferred.any():
                    notes.append(f"No {' or '.join(wanted).lower()} {piece.words or NOUN[piece.role]} "
                                 f"in the catalog; showing others.")
        order = np.argsort(-scores, kind="stable")[:POOL]
        return [Hit(int(self.records[r]["id"]), float(s), dict(self.records[r]))
                for r, s in zip(rows[order], scores[order])]

    def _describe(self, piece: Piece, request: Request, gender: str) -> str:
        parts = [f"type {' or '.join(piece.types[:4])}"] if piece.types else []
        parts += [f"colour {' or '.join(piece.colours)}"] if piece.colours else []
        parts += [f"not {LABELS.get(c, c)} {' or '.join(sorted(v))}" for c, v in request.exclude.items()]
        return ", ".join(parts + ([f"for {gender}"] if gender else []))

    def _reasons(self, item: dict, piece: Piece, request: Request) -> list[str]:
        out = [f"colour is {item['baseColour']} (asked)"] if piece.colours else []
        out += [f"not {' / '.join(sorted(v))} ({LABELS.get(c, c)})" for c, v in request.exclude.items()]
        if request.usage and item.get("usage") in request.usage:
            out.append(f"{item['usage'].lower()} wear")
        return out

    # ------------------------------------------------------------ across slots

    def _combine(self, pools: list[list[Hit]], context: list[Piece]) -> tuple[list[Hit | None], float]:
        """The pieces (one per slot, None where a slot has no candidate) with the best summed
        similarity minus penalties for broken rules."""
        base = [_context_item(p) for p in context]
        beams: list[tuple[list[Hit | None], float]] = [([], 0.0)]
        for pool in pools:
            if not pool:
                beams = [(chosen + [None], value) for chosen, value in beams]
                continue
            grown = []
            for chosen, _ in beams:
                items = base + [c.item for c in chosen if c is not None]
                similarity = sum(c.score for c in chosen if c is not None)
                for hit in pool[:CANDIDATES]:
                    grown.append((chosen + [hit], similarity + hit.score - penalty(items + [hit.item])))
            beams = sorted(grown, key=lambda b: -b[1])[:BEAM]
        return beams[0]

    @staticmethod
    def _alternatives(pool: list[Hit], chosen: Hit, others: list[dict], n: int) -> list[Hit]:
        """Up to n other candidates, the ones that break no more rules than the chosen piece first."""
        allowed = penalty(others + [chosen.item])
        rest = [h for h in pool if h.item_id != chosen.item_id]
        fits = [penalty(others + [h.item]) <= allowed for h in rest]
        ordered = [h for h, f in zip(rest, fits) if f] + [h for h, f in zip(rest, fits) if not f]
        return ordered[:max(0, n)]


def _context_item(piece: Piece) -> dict:
    """A context piece as the columns the rules look at."""
    return {"baseColour": piece.colours[0] if piece.colours else "", "usage": "", "season": ""}


def _colour_reason(item: dict, others: list[dict]) -> str:
    colour = item.get("baseColour", "")
    kind = family(colour)
    if kind == "neutral":
        return f"{colour} is a neutral: it goes with anything"
    mates = sorted({o["baseColour"] for o in others if family(o.get("baseColour", "")) == kind} - {colour})
    if "colour" in clashes(others + [item]):
        return f"{colour} clashes with the other colours (nothing else fits the request)"
    if mates:
        return f"{colour} stays in one colour family ({kind}) with {' and '.join(mates)}"
    return f"{colour} is the one accent colour; the rest are neutrals"
