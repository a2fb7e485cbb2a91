"""Turning whatever a shopper uploads into a plain RGB image, or a clear error.

Uploads arrive as paths, bytes, numpy arrays or PIL images, and as phone photos (EXIF-rotated),
PNGs with transparency, CMYK or 16-bit scans, animated GIFs, broken files and decompression bombs.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fashion_rag.errors import InputError

MAX_PIXELS = 50_000_000  # beyond this we refuse rather than decode (decompression-bomb guard)
MAX_SIDE = 1024  # larger images are shrunk on load: the encoder sees 64-224 px anyway
# Photo formats Pillow may open: others (EPS runs Ghostscript, PSD, ICO, ...) are not photos of outfits.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # JPEG covers MPO (phone 3D shots) too

TOO_LARGE = f"That image is too large; please upload one under {MAX_PIXELS // 1_000_000} megapixels."

ImageLike = str | Path | bytes | np.ndarray | Image.Image


def _open(src: ImageLike) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, np.ndarray):
        array = src if src.dtype == np.uint8 else np.clip(src, 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    if isinstance(src, (str, Path)) and not Path(src).is_file():
        raise InputError(f"Image file not found: {src}")
    return Image.open(io.BytesIO(src) if isinstance(src, bytes) else src, formats=FORMATS)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / float: rescale to 8 bits
        array = np.asarray(image, dtype=np.float32)
        low, high = float(array.min()), float(array.max())
        array = (array - low) / (high - low or 1.0) * 255.0
        image = Image.fromarray(array.astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")  # transparent parts become white, like the catalog shots
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def sniff(path: str | Path) -> str:
    """The photo format of a file, read from its first bytes (never its name), or InputError."""
    try:
        with Image.open(path, formats=FORMATS) as image:
            _check_size(image)
            return str(image.format)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(TOO_LARGE) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError("That file is not a photo: only JPEG, PNG, WebP, GIF, BMP or TIFF images can be "
                         "uploaded.") from exc


def _check_size(image: Image.Image) -> None:
    if image.width == 0 or image.height == 0:
        raise InputError("That image is empty (0 pixels wide or high); please upload a photo.")
    if image.width * image.height > MAX_PIXELS:
        raise InputError(f"That image is too large ({image.width}x{image.height} px); "
                         f"please upload one under {MAX_PIXELS // 1_000_000} megapixels.")


def load_image(src: ImageLike) -> Image.Image:
    """Any supported input -> an upright RGB image of at most MAX_SIDE px, or InputError."""
    try:
        image = _open(src)
        _check_size(image)
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # cheap JPEG downscale, before anything decodes
        if getattr(image, "is_animated", False):
            image.seek(0)  # animated GIF/WebP: the first frame stands for the outfit
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image)
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        return image
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # PIL itself refuses the very largest on opening
        raise InputError(TOO_LARGE) from exc
    except (UnidentifiedImageError, OSError, ValueError, TypeError, SyntaxError) as exc:
        raise InputError("That file could not be read as an image (it may be broken or in an "
                         f"unsupported format): {type(exc).__name__}.") from exc
