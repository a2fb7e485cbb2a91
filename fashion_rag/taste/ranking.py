"""Personal ranking: a shopper's taste and similar shoppers' likes move a search's candidates.

For a search with a profile, each candidate that matches the query (constraints included) gets

    score = query score + w_taste(n) * taste + w_crowd(n) * crowd - SEEN if shown lately

- taste: half the cosine between the profile's preference vector (EMA of liked minus passed
  item vectors) and the item's vector, half the item's affinity: the sum, over colour, colour
  family, type, usage, season and pattern, of how much likelier the shopper is to like that value
  than anything (fashion_rag.taste.profiles);
- crowd: user-based kNN. The NEIGHBOURS profiles whose like/pass histories agree most with this
  one (cosine over shared items) vote on the item: sum(similarity * their verdict) / sum(similarity);
- n = the shopper's likes + passes. Both weights are 0 for a new profile and grow with n with no
  switch: taste early (TASTE * n / (n + 2)), the crowd later (CROWD * n / (n + 8)).
Passed items are left out for PASS_WINDOW seconds after the pass, and for good after two passes.
Exploration: a share EPSILON * DECAY ** likes of the page (its last places) goes to something new:
among the query's matches not shown lately, those whose colour, usage or pattern the shopper has
not rated yet, most novel first, ties going to the best match for the query (the personal ranking
would soon offer nothing but the taste learned so far). It decays with likes, not with passes: a
shopper who has liked nothing yet has taught only what to avoid, so the page keeps looking. Such
hits say so in `hit.why`. The weights were chosen on simulated dev shoppers
(`python scripts/taste_eval.py --split dev --detail`).
"""
from __future__ import annotations

import math

import numpy as np

from fashion_rag.retrieval.hits import Hit
from fashion_rag.taste.profiles import Profile, traits

TASTE, CROWD = 1.0, 0.3
SEEN = 0.35
PASS_WINDOW = 7 * 24 * 3600.0
EPSILON, DECAY = 0.5, 0.85
NOVEL = ("baseColour", "usage", "pattern")  # what exploration looks for values of
LIKED = 0.1  # an affinity this large is named in hit.why as liked
NEIGHBOURS = 20
SIGNAL = 0.02  # a contribution this large is named in hit.why


def weights(feedback: int) -> tuple[float, float]:
    """(taste weight, crowd weight) after `feedback` likes and passes."""
    return TASTE * feedback / (feedback + 2), CROWD * feedback / (feedback + 8)


def exploration_slots(likes: int, k: int) -> int:
    """How many of k places go to something new: a share of the page that decays with likes."""
    return int(EPSILON * DECAY ** likes * k + 0.5)


def crowd_scores(profile: str, histories: dict[str, dict[int, int]]) -> dict[int, float]:
    """Per item, the verdict of the profiles most like this one (user-based kNN, cosine over
    the items both rated); {} when nobody is alike."""
    own = histories.get(profile, {})
    if not own:
        return {}
    alike = []
    for other, theirs in histories.items():
        if other == profile:
            continue
        shared = own.keys() & theirs.keys()
        if shared:
            similarity = sum(own[i] * theirs[i] for i in shared) / math.sqrt(len(own) * len(theirs))
            if similarity > 0:
                alike.append((similarity, theirs))
    alike = sorted(alike, key=lambda pair: -pair[0])[:NEIGHBOURS]
    total = sum(s for s, _ in alike)
    votes: dict[int, float] = {}
    for similarity, theirs in alike:
        for item, verdict in theirs.items():
            votes[item] = votes.get(item, 0.0) + similarity * verdict / total
    return votes


def _affinity(profile: Profile, item: dict) -> tuple[float, list[str]]:
    """The item's summed affinity over its traits, and the values the shopper clearly likes."""
    total, liked = 0.0, []
    for column, values in traits(item).items():
        lifts = [profile.affinity.get(column, {}).get(value, 0.0) for value in values]
        best = max(lifts, key=abs, default=0.0)
        total += best
        if best > LIKED and column != "family":
            liked.append(values[lifts.index(best)])
    return total, liked


def _novel(candidates: list[Hit], known: set[tuple[str, str]], slots: int) -> list[Hit]:
    """Up to `slots` candidates, each the one with the most NOVEL values not rated and not yet
    picked (ties: the better ranked)."""
    every = [{(c, v) for c, values in traits(h.item).items() for v in values} for h in candidates]
    novel = [{(c, v) for c, v in pairs if c in NOVEL} for pairs in every]
    known, picked = set(known), []
    for _ in range(min(slots, len(candidates))):
        best = max((i for i in range(len(candidates)) if i not in picked), key=lambda i: len(novel[i] - known))
        picked.append(best)
        known |= every[best]
    return [candidates[i] for i in picked]


def personalise(hits: list[Hit], k: int, profile: Profile, vectors: np.ndarray,
                crowd: dict[int, float], now: float) -> list[Hit]:
    """The k hits to show, re-ranked for the profile, with exploration slots at the end.
    `vectors` holds the hits' item vectors, row for row."""
    w_taste, w_crowd = weights(profile.feedback)
    seen = set().union(*profile.recent) if profile.recent else set()
    cosine = np.zeros(len(hits), np.float32)
    if profile.vector is not None and len(hits) and float(np.linalg.norm(profile.vector)) > 0:
        cosine = vectors @ profile.vector / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(profile.vector) + 1e-9)
    kept = []
    for hit, similarity in zip(hits, cosine):
        times, at = profile.passed.get(hit.item_id, (0, 0.0))
        if times >= 2 or (times and now - at < PASS_WINDOW):
            continue
        affinity, liked = _affinity(profile, hit.item) if profile.vector is not None else (0.0, [])
        taste = 0.5 * float(similarity) + 0.5 * affinity
        moved_by_taste, moved_by_crowd = w_taste * taste, w_crowd * crowd.get(hit.item_id, 0.0)
        hit.score += moved_by_taste + moved_by_crowd - (SEEN if hit.item_id in seen else 0.0)
        if moved_by_taste > SIGNAL:
            hit.why.append("your taste" + (f": you like {', '.join(liked)}" if liked else ": like what you liked"))
        if moved_by_crowd > SIGNAL:
            hit.why.append("shoppers with a taste like yours liked it")
        kept.append(hit)
    kept.sort(key=lambda h: -h.score)
    explore = exploration_slots(profile.likes, k) if len(kept) > k else 0  # else all are shown
    if not explore:
        return kept[:k]
    known = {(column, value) for column, values in profile.affinity.items() for value in values}
    # From the query's own ranking: the personal one soon holds nothing but the taste learned so far.
    top, left = {id(h) for h in kept[:k - explore]}, {id(h) for h in kept}  # `hits` is in query order
    fresh = [h for h in hits if id(h) in left and id(h) not in top and h.item_id not in seen] or kept[k - explore:]
    new = _novel(fresh, known, explore)
    for hit in new:
        hit.why.append("something new, to learn your taste")
    chosen = {id(h) for h in new}
    return [h for h in kept[:k] if id(h) not in chosen][:k - len(new)] + new
