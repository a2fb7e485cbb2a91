"""One interface over dual encoders: images and texts -> L2-normalised float32 vectors in one space.

Loads a Hugging Face CLIP checkpoint or the project's own encoder (fashion_rag.encoding.model) the same
way, from a hub id or a local folder: AutoModel + AutoTokenizer + AutoImageProcessor.
"""
from __future__ import annotations

import hashlib
import json
import logging
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from fashion_rag import settings
from fashion_rag.data.images import ImageLike, load_image
from fashion_rag.encoding.colour import border, thumbnail
from fashion_rag.encoding.fast import BACKBONE_FILE, TEXT_FILE, OnnxModule, export_backbone, export_text
from fashion_rag.encoding.model import FashionEncoderModel, PooledText  # also registers it with Auto*
from fashion_rag.encoding.pixels import Pixels
from fashion_rag.errors import ModelLoadError

MAX_TEXT_TOKENS = 64
SQUARE_ENOUGH = 0.9  # a picture whose sides differ less than this is looked at once: the crop cuts little
log = logging.getLogger(__name__)


def two_views(size: tuple[int, int]) -> bool:
    """Whether a picture of this size is far enough from square to be looked at twice (`views`)."""
    width, height = size
    return min(width, height) < SQUARE_ENOUGH * max(width, height)


def squared(picture: Image.Image) -> Image.Image:
    """The picture padded to a square with its border's colour: the whole of a long garment, where
    the processor's centre crop cuts a portrait phone photo's top and bottom."""
    width, height = picture.size
    side = max(width, height)
    fill = tuple(int(v) for v in np.median(border(thumbnail(picture)), axis=0))
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(picture.convert("RGB"), ((side - width) // 2, (side - height) // 2))
    return canvas


def views(picture: Image.Image) -> list[Image.Image]:
    """How a shopper's photo is looked at: as it comes (centre-cropped by the processor) and, when
    it is far from square, also whole on a padded square. Reading the two views' mean features
    lifted the reader's type accuracy on the dev photos from 0.91-0.92 to 0.93-0.94 (user-photos)
    and from 0.74-0.76 to 0.76-0.77 (user-photos-extra), over three seeds."""
    return [picture, squared(picture)] if two_views(picture.size) else [picture]


def pooled_output(output) -> torch.Tensor:
    """CLIPModel returns a model output with the projected vector as pooler_output; older code a tensor."""
    return getattr(output, "pooler_output", output)


class Encoder:
    """Images and texts -> unit vectors in one space. Images go through a tower (the frozen
    backbone and the colour histogram, or CLIP's whole image side) and then a projection; what
    the tower gives is also what the photo reader reads, so a photo is looked at once per search."""

    def __init__(self, model, tokenizer, image_processor, name: str, fast_backbone=None, fast_text=None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.pixels = Pixels(image_processor)
        self.name = name
        own = isinstance(model, FashionEncoderModel)
        self.tower = ((lambda pixels: model.image_tower(pixels, fast_backbone)) if own else
                      lambda pixels: pooled_output(model.get_image_features(pixel_values=pixels)))
        self.fast_backbone, self.fast_text = fast_backbone, fast_text
        self.text = ((lambda ids, mask: model.project_text(fast_text(ids, mask))) if own and fast_text else
                     lambda ids, mask: pooled_output(model.get_text_features(input_ids=ids, attention_mask=mask)))
        self.project = model.visual_projection if own else torch.nn.Identity()
        self.dim = int(self.encode_texts(["probe"]).shape[1])

    def preprocess(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Images -> the pixel tensor the model expects (the checkpoint's own processor settings)."""
        return self.pixels([load_image(i) for i in images])

    @torch.inference_mode()
    def look(self, pixels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Pixels -> (unit vectors in the shared space, the tower's features for the photo reader)."""
        features = self.tower(pixels).float()
        return _normalise(self.project(features)), features.numpy()

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        return self.look(pixels)[0]

    def look_at_images(self, images: Sequence[ImageLike], batch_size: int = 64,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """`look` over images in batches: (vectors, features)."""
        batches = range(0, len(images), batch_size)
        out = [self.look(self.preprocess(images[i:i + batch_size]))
               for i in tqdm(batches, desc="encoding images", unit="batch", disable=not progress)]
        if not out:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, self.feature_dim), np.float32)
        return np.concatenate([v for v, _ in out]), np.concatenate([f for _, f in out])

    def look_at_photo(self, picture: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """`look` at one shopper's photo (loaded: `load_image`) through its `views`: (unit vector,
        features), each the views' mean."""
        vectors, features = self.look(self.pixels(views(picture)))
        mean = vectors.mean(0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12), features.mean(0)

    def encode_images(self, images: Sequence[ImageLike], batch_size: int = 64,
                      progress: bool = False) -> np.ndarray:
        return self.look_at_images(images, batch_size, progress)[0]

    @cached_property
    def feature_dim(self) -> int:
        side = self.image_processor.crop_size["height"]
        return int(self.look(torch.zeros(1, 3, side, side))[1].shape[1])

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                    max_length=MAX_TEXT_TOKENS, return_tensors="pt")
            out.append(_normalise(self.text(tokens["input_ids"], tokens["attention_mask"])))
        return np.concatenate(out)

    @cached_property
    def feature_key(self) -> str:
        """Identifies what the tower gives for a file (its weights and the preprocessing), so cached
        features are shared by encoders whose projections differ."""
        own = isinstance(self.model, FashionEncoderModel)
        tower = self.model.vision_model if own else self.model
        colour = f"colour {self.model.config.colour_weight}" if own and self.model.config.colour_weight else ""
        settings_text = json.dumps(self.image_processor.to_dict(), sort_keys=True, default=str)
        return _hash(tower.state_dict(), settings_text + colour)

    @cached_property
    def weights_hash(self) -> str:
        """Identifies the weights, so an index built with other weights is detected."""
        return _hash(self.model.state_dict())


def _hash(state: dict, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float16).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _normalise(vectors: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(vectors.float(), dim=-1).numpy().astype(np.float32)


def load_encoder(name_or_path: str | Path | None = None, threads: int | None = None,
                 arena: bool = True) -> Encoder:
    """Load from a local folder if there is one, else from the hub; fail with what to do.
    `arena`: onnxruntime's memory arena, for large batches; a server (small batches) goes without."""
    name = str(name_or_path or settings.MODEL)
    torch.set_num_threads(threads or settings.THREADS)
    local = Path(name).expanduser()
    tried = f"the local folder {local}" if local.exists() else f"the Hugging Face hub id '{name}'"
    if not local.exists() and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise ModelLoadError(
            f"No encoder at {local}. Create the default one with `python scripts/train_encoder.py` "
            "(or just run `python app.py`, which prepares everything), or set FASHION_RAG_MODEL / "
            "--model to a CLIP checkpoint folder or hub id.")
    source = str(local) if local.exists() else name
    hf_logging.disable_progress_bar()  # our own bars say what is happening; its per-load bar is noise
    try:
        model, loading = AutoModel.from_pretrained(source, dtype=torch.float32, output_loading_info=True)
        if isinstance(model, FashionEncoderModel) and loading["missing_keys"]:  # else: random weights, silently
            raise ModelLoadError(f"The checkpoint in {source} lacks {len(loading['missing_keys'])} of the encoder's "
                                 "weights (made by another version?): train it again with `python "
                                 "scripts/train_encoder.py`, or move it away and run `python app.py`.")
        tokenizer = AutoTokenizer.from_pretrained(source)
        processor = AutoImageProcessor.from_pretrained(source)
        fast = _fast_towers(model, local, threads or settings.THREADS, arena) if local.exists() else {}
        return Encoder(model, tokenizer, processor, name, **fast)
    except ModelLoadError:
        raise
    except Exception as exc:  # transformers raises many kinds; the user needs one clear message
        raise ModelLoadError(
            f"Could not load an encoder from {tried}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]} "
            "This machine may have no access to the Hugging Face hub: use a local folder (a CLIP "
            "checkpoint or one written by `python scripts/train_encoder.py`) via FASHION_RAG_MODEL "
            "or --model.") from exc


def _fast_towers(model, folder: Path, threads: int, arena: bool) -> dict[str, OnnxModule]:
    """The own model's frozen towers under onnxruntime (fashion_rag.encoding.fast), exported beside
    the checkpoint the first time (training does it too). Where the folder is read-only, the torch
    path serves, only slower."""
    if not isinstance(model, FashionEncoderModel):
        return {}
    exports = {"fast_backbone": (BACKBONE_FILE, lambda path: export_backbone(model.vision_model, path,
                                                                              model.config.image_size)),
               "fast_text": (TEXT_FILE, lambda path: export_text(PooledText(model.text_model), path))}
    towers = {}
    for tower, (file, export) in exports.items():
        try:
            towers[tower] = OnnxModule(folder / file if (folder / file).is_file() else export(folder / file), threads,
                                       arena)
        except (OSError, ImportError) as exc:
            log.warning("%s runs in torch (slower): %s", file, exc)
    return towers
