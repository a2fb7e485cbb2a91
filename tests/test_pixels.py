"""The fast model-input path gives the image processor's own pixels, for every shape of picture."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, CLIPImageProcessor

from fashion_rag import settings
from fashion_rag.data.catalog import load_catalog
from fashion_rag.data.images import load_image
from fashion_rag.data.photos import load_photos
from fashion_rag.encoding.pixels import Pixels


def pictures() -> list[Image.Image]:
    """Real catalog shots and phone photos (portrait and landscape), and odd sizes: smaller than
    the crop (scaled up), one pixel wide, exactly the crop, an odd long side."""
    items = load_catalog(settings.CATALOG_DIR / "styles.csv", check_images=False).items
    uploads = load_photos("validation")
    real = [load_image(p) for p in list(items["path"].head(4)) + list(uploads["path"].head(12))]
    assert {p.width < p.height for p in real} == {True, False}, "portrait and landscape photos"
    rng = np.random.default_rng(0)
    odd = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
           for h, w in ((50, 100), (500, 1), (240, 240), (333, 241), (97, 1023))]
    return real + odd


@pytest.mark.parametrize("processor", [
    AutoImageProcessor.from_pretrained(settings.DEFAULT_MODEL) if Path(settings.DEFAULT_MODEL).is_dir() else None,
    CLIPImageProcessor(),  # CLIP's own: 224 px, its mean and std
    CLIPImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 200}, resample=2),
], ids=["own encoder", "clip", "non-square crop"])
def test_fast_pixels_are_the_processors(processor):
    if processor is None:
        pytest.skip("the own encoder is not trained yet")
    fast = Pixels(processor)
    assert fast.fast
    for picture in pictures():
        want = processor(images=[picture], return_tensors="pt")["pixel_values"]
        got = fast([picture])
        assert got.dtype == torch.float32 and got.shape == want.shape, picture.size
        assert torch.allclose(got, want, atol=1e-5), (picture.size, float((got - want).abs().max()))


def test_other_steps_and_modes_are_left_to_the_processor():
    square = CLIPImageProcessor(size={"height": 200, "width": 200}, crop_size={"height": 200, "width": 200})
    assert not Pixels(square).fast  # resizes to a fixed square: not the steps Pixels knows
    assert Pixels(square)([Image.new("RGB", (300, 100))]).shape == (1, 3, 200, 200)
    clip = CLIPImageProcessor()
    transparent = Image.new("RGBA", (300, 300), (0, 0, 0, 0))  # the processor decides what alpha becomes
    assert torch.equal(Pixels(clip)([transparent]), clip(images=[transparent], return_tensors="pt")["pixel_values"])
    assert Pixels(clip)([]).shape == (0, 3, 224, 224)
