"""The pieces a person wears, from where their body is: a box per body region (upper body, legs,
feet) from the pose landmarks, each read by the photo reader as one of the garments that region can
hold, and given an outfit role. A dress read on the upper body takes the legs too: one piece.

Boxes are cut to the garment the reading names: shorts end at the knee, trousers at the ankle.
"""
from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..data.catalog import TYPE_GROUPS
from ..data.wardrobe import TYPE_ROLE, roles_named
from .encoder import Encoder
from .pose import Body, PoseModel
from .reader import PhotoReader, Reading

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the photo's pixels

# What each body region can hold, as the photo reader's type groups.
REGIONS = {"upper": ["t-shirt", "shirt", "top", "kurta", "sweater", "jacket", "dress"],
           "lower": ["trousers", "shorts", "skirt", "dress"],
           "feet": ["shoes", "heels", "flats", "sandals"]}
# A group's role is its main (first) type's: a kurta is worn as a top, whatever kurta sets are.
ROLE_OF = {group: TYPE_ROLE.get(kinds[0], "other") for group, kinds in TYPE_GROUPS.items()}
LOOK_BELOW = {"bottom", "one-piece"}  # a photo read as these may be a waist-down shot: look for legs
ONE_PIECE = {group for group, role in ROLE_OF.items() if role == "one-piece"}
# Around a piece's box the encoder also sees this share of its size on each side: catalog photos
# show a garment on a person, framed loosely. Chosen on the dev photos (scripts/look_eval.py: search
# P@10 0.81 at 0, 0.90 at 0.25, 0.92 at 0.4, 0.94 at 0.6); 0.4 keeps the piece a third of the crop.
CONTEXT = 0.4
REMEMBERED = 16  # photos whose pieces are kept: a shopper tweaking the words sends the same photo again
MIN_SIDE = 0.06  # a region narrower or shorter than this share of the photo is not a piece
# Where garments sit around the joints, in torso lengths (shoulders to hips) and hip widths.
TOP_BELOW_HIPS = 0.0  # an untucked top reaches this far below the hip joints
WAIST_ABOVE_HIPS = 0.1  # a waistband sits this far above them
LEGS_ASIDE = 0.5  # trousers reach this far beside the leg landmarks
KURTA_HEM = 0.5  # a kurta ends this far from the hips to the knees

# MediaPipe landmark numbers.
SHOULDERS, ELBOWS, HIPS, KNEES, ANKLES, FEET = (11, 12), (13, 14), (23, 24), (25, 26), (27, 28), (29, 30, 31, 32)


@dataclass
class Piece:
    """One worn piece: where it is, what the reader sees there, and its outfit role."""
    box: Box
    role: str
    reading: Reading
    region: str  # upper, lower, feet, upper+lower (a one-piece), legs (under a kurta) or photo (no person)
    vector: np.ndarray | None = field(default=None, repr=False)  # the crop's image vector
    features: np.ndarray | None = field(default=None, repr=False)  # and its tower features

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])

    def label(self) -> str:
        """'blue trousers': the piece's colour and type as the reader sees them."""
        return f"{self.reading.top('colour')[0].lower()} {self.reading.top('type')[0]}"

    def as_dict(self) -> dict:
        return {"label": self.label(), "role": self.role, "box": list(self.box), "region": self.region,
                "reading": self.reading.as_dict()}


def regions(body: Body, width: int, height: int) -> dict[str, Box]:
    """Boxes for the body regions the photo shows, in pixels, before any reading."""
    def clip(x0: float, y0: float, x1: float, y1: float) -> Box | None:
        box = (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
        wide, tall = box[2] - box[0], box[3] - box[1]
        return box if wide >= MIN_SIDE * width and tall >= MIN_SIDE * height else None

    def inside(points: np.ndarray) -> np.ndarray:
        return points[(points[:, 1] < height) & (points[:, 1] >= 0)]

    shoulders, hips = body.seen(*SHOULDERS), inside(body.seen(*HIPS))
    found: dict[str, Box | None] = {}
    span = np.ptp(body.points[list(SHOULDERS), 0]) if len(shoulders) == 2 else width / 3
    torso = (hips[:, 1].mean() - shoulders[:, 1].mean()) if len(shoulders) and len(hips) else 1.4 * span
    if len(shoulders):
        arms = np.vstack([shoulders, body.seen(*ELBOWS), hips])
        bottom = hips[:, 1].mean() + TOP_BELOW_HIPS * torso if len(hips) else shoulders[:, 1].mean() + 1.1 * torso
        found["upper"] = clip(arms[:, 0].min() - 0.1 * span, shoulders[:, 1].min() - 0.12 * torso,
                              arms[:, 0].max() + 0.1 * span, bottom)
    if len(hips):
        legs = np.vstack([hips, inside(body.seen(*KNEES)), inside(body.seen(*ANKLES))])
        hip_span = max(np.ptp(body.points[list(HIPS), 0]), 0.5 * span)
        ankles = inside(body.seen(*ANKLES))
        bottom = ankles[:, 1].max() + 0.04 * torso if len(ankles) else height
        found["lower"] = clip(legs[:, 0].min() - LEGS_ASIDE * hip_span, hips[:, 1].min() - WAIST_ABOVE_HIPS * torso,
                              legs[:, 0].max() + LEGS_ASIDE * hip_span, bottom)
    if found.get("upper") and found.get("lower") and shoulders[:, 1].max() < 0:
        # A waist-down shot: the top seen at the edge ends where the trousers begin.
        x0, y0, x1, y1 = found["upper"]
        found["upper"] = clip(x0, y0, x1, min(y1, found["lower"][1]))
    ankles, feet = inside(body.seen(*ANKLES)), body.seen(*FEET)
    feet = feet[feet[:, 1] < 1.1 * height]  # toes just past the edge still place the shoes
    if len(ankles) and len(feet) >= 2:  # a shoe reaches from the ankle to the toe, and a little aside
        pad = 0.1 * (ankles[:, 1].mean() - hips[:, 1].mean() if len(hips) else torso)
        found["feet"] = clip(feet[:, 0].min() - pad, ankles[:, 1].mean(), feet[:, 0].max() + pad,
                             feet[:, 1].max() + 0.3 * pad)
    return {name: box for name, box in found.items() if box is not None}


def widened(box: Box, width: int, height: int) -> Box:
    """The box with CONTEXT of its size added around (within the photo): what the encoder sees."""
    x0, y0, x1, y1 = box
    dx, dy = CONTEXT * (x1 - x0), CONTEXT * (y1 - y0)
    return max(0, int(x0 - dx)), max(0, int(y0 - dy)), min(width, int(x1 + dx)), min(height, int(y1 + dy))


def narrowed(reading: Reading, groups: list[str]) -> Reading:
    """The reading with its type confined to what a region can hold (renormalised)."""
    kept = [(v, p) for v, p in reading.values["type"] if v in groups]
    total = sum(p for _, p in kept) or 1.0
    return Reading(reading.values | {"type": [(v, p / total) for v, p in kept]}, reading.corrected)


def cut_to_length(box: Box, group: str, body: Body, height: int) -> Box:
    """A lower-body box ends where the garment does: shorts at the knee, a skirt or dress below it."""
    knees = body.seen(*KNEES)
    knees = knees[knees[:, 1] < height]
    if group not in {"shorts", "skirt", "dress"} or not len(knees):
        return box
    knee = knees[:, 1].mean()
    end = knee + (0.0 if group == "shorts" else 0.15 * (knee - box[1]))
    return box[0], box[1], box[2], int(min(box[3], max(end, box[1] + 1)))


def assemble(body: Body, boxes: dict[str, Box], readings: dict[str, Reading], height: int) -> list[Piece]:
    """Pieces from the regions' boxes and readings, most prominent (largest) first."""
    pieces = {}
    for name, box in boxes.items():
        reading = narrowed(readings[name], REGIONS[name])
        pieces[name] = Piece(box, ROLE_OF[reading.top("type")[0]], reading, name)
    upper, lower = pieces.get("upper"), pieces.get("lower")
    if upper and lower and (upper.role == "one-piece" or lower.role == "one-piece"):
        dress = upper if upper.role == "one-piece" else lower
        group = dress.reading.top("type")[0]
        box = (min(upper.box[0], lower.box[0]), upper.box[1], max(upper.box[2], lower.box[2]), lower.box[3])
        box = cut_to_length(box, group, body, height)
        whole = narrowed(dress.reading, sorted(ONE_PIECE))
        pieces = {k: v for k, v in pieces.items() if k not in ("upper", "lower")}
        pieces["upper+lower"] = Piece(box, "one-piece", whole, "upper+lower")
    elif lower and upper and upper.reading.top("type")[0] == "kurta":
        # A kurta covers the thighs; what the legs wear shows under it (leggings, churidar). The
        # knees are covered, so they are taken wherever the model puts them, even off the photo.
        hip, knee = body.points[list(HIPS), 1].mean(), body.points[list(KNEES), 1].mean()
        hem = int(hip + KURTA_HEM * (knee - hip))
        if upper.box[3] < hem < height:
            upper.box = (*upper.box[:3], hem)
            del pieces["lower"]
            if height - hem >= MIN_SIDE * height:
                pieces["legs"] = Piece((lower.box[0], hem, lower.box[2], lower.box[3]), "bottom",
                                       narrowed(lower.reading, ["trousers"]), "legs")
    elif lower:
        lower.box = cut_to_length(lower.box, lower.reading.top("type")[0], body, height)
    return sorted(pieces.values(), key=lambda p: -p.area)


def role_of(reading: Reading) -> str:
    return ROLE_OF.get(reading.top("type")[0], "other")


class PieceFinder:
    """A photo -> the pieces worn in it (a photo with no person is one piece: the whole photo)."""

    def __init__(self, encoder: Encoder, reader: PhotoReader, pose: PoseModel | None):
        self.encoder, self.reader, self.pose = encoder, reader, pose
        self.seen: OrderedDict[bytes, tuple[Piece, list[Piece] | None]] = OrderedDict()
        self.lock = threading.Lock()  # the app serves two searches at once

    def look(self, picture: Image.Image, pieces: bool = True) -> tuple[Piece, list[Piece] | None]:
        """The photo as a whole and, with `pieces`, the pieces worn in it (`find`; else None). Both
        are remembered for the last REMEMBERED photos by their pixels: the next tweak of the words
        only encodes the words, and pieces looked for after a search reuse its look at the whole.
        Copies: a caller may correct a reading without changing what is remembered."""
        key = hashlib.blake2b(picture.tobytes(), digest_size=16).digest() + repr(picture.size).encode()
        with self.lock:
            whole, worn = self.seen.get(key, (None, None))
        if whole is None:
            whole = self.whole(picture)
        if pieces and worn is None:
            worn = self.find(picture, whole)
        with self.lock:
            self.seen[key] = (whole, worn)
            self.seen.move_to_end(key)
            while len(self.seen) > REMEMBERED:
                self.seen.popitem(last=False)
        return copy.deepcopy((whole, worn))

    def whole(self, picture: Image.Image) -> Piece:
        """The whole photo as one piece."""
        vector, features = self.encoder.look_at_photo(picture)
        reading = self.reader.read(features, picture)
        return Piece((0, 0, *picture.size), role_of(reading), reading, "photo", vector, features)

    def find(self, picture: Image.Image, whole: Piece | None = None) -> list[Piece]:
        """The pieces worn in the photo, most prominent first (the one of the role the whole photo
        reads as, then by size); [whole photo] when nobody wears any."""
        whole = whole or self.whole(picture)
        body = self.pose.find(picture, look_below=whole.role in LOOK_BELOW) if self.pose else None
        boxes = regions(body, *picture.size) if body is not None else {}
        if not boxes:
            return [whole]
        crops = {name: picture.crop(widened(box, *picture.size)) for name, box in boxes.items()}
        vectors, features = self.encoder.look_at_images(list(crops.values()))
        readings = {name: self.reader.read(f, crop) for (name, crop), f in zip(crops.items(), features)}
        pieces = assemble(body, boxes, readings, picture.size[1])
        row = {name: i for i, name in enumerate(boxes)}
        for piece in pieces:
            if piece.region in row:
                piece.vector, piece.features = vectors[row[piece.region]], features[row[piece.region]]
            else:  # a merged one-piece, or the legs under a kurta: a box not looked at yet
                crop = picture.crop(widened(piece.box, *picture.size))
                (piece.vector,), (piece.features,) = self.encoder.look_at_images([crop])
                if piece.region == "legs":
                    piece.reading = narrowed(self.reader.read(piece.features, crop), ["trousers"])
        # The photo as a whole says what it is about (a shot of trousers shows a top too): that
        # piece leads, then the rest, largest first.
        pieces.sort(key=lambda p: p.role != whole.role)
        return pieces or [whole]


def pointed(pieces: list[Piece], article_types: set[str]) -> int | None:
    """The piece the shopper's words name ("the shoes but in black": the shoes), if any."""
    roles = roles_named(article_types)
    return next((i for i, piece in enumerate(pieces) if piece.role in roles), None)
