"""load_image on what shoppers really upload: phone photos, odd PNG/GIF modes, broken files, bombs."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_rag.data.images import MAX_SIDE, load_image
from fashion_rag.errors import InputError

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (1-bit grey) with almost no pixel data: a bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def colour_at(image: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    return image.getpixel(xy)


def assert_close(actual, expected, tol=12):
    assert all(abs(a - e) <= tol for a, e in zip(actual, expected)), (actual, expected)


def test_real_catalog_jpeg(catalog_dir):
    path = catalog_dir / "images" / "10000.jpg"
    image = load_image(path)
    assert image.mode == "RGB" and image.size == Image.open(path).size
    assert load_image(str(path)).size == image.size  # str paths too
    assert_close(colour_at(image), WHITE, tol=20)  # catalog shots are on white


def test_bytes_and_arrays_are_accepted(catalog_dir):
    data = (catalog_dir / "images" / "10001.jpg").read_bytes()
    from_bytes = load_image(data)
    assert from_bytes.mode == "RGB"
    array = np.asarray(from_bytes)
    assert np.array_equal(np.asarray(load_image(array)), array)
    floats = load_image(np.full((8, 8, 3), 300.0))  # out-of-range floats are clipped, not wrapped
    assert colour_at(floats) == WHITE


def test_transparent_png_becomes_white_behind_the_garment(tmp_path):
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (5, 5, 15, 15))
    image.save(tmp_path / "cutout.png")
    loaded = load_image(tmp_path / "cutout.png")
    assert loaded.mode == "RGB"
    assert colour_at(loaded, (0, 0)) == WHITE  # not black, which is what a plain convert gives
    assert colour_at(loaded, (10, 10)) == RED


def test_palette_png_with_transparency(tmp_path):
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (0, 0, 5, 10))  # left half blue, right half palette entry 0 = transparent black
    image.save(tmp_path / "palette.png", transparency=0)
    loaded = load_image(tmp_path / "palette.png")
    assert colour_at(loaded, (1, 1)) == BLUE and colour_at(loaded, (8, 8)) == WHITE


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "print.jpg")  # pure red in CMYK
    loaded = load_image(tmp_path / "print.jpg")
    assert loaded.mode == "RGB"
    assert_close(colour_at(loaded, (8, 8)), RED, tol=30)


def test_16_bit_greyscale_png_is_rescaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    Image.fromarray(ramp).save(tmp_path / "scan.png")
    assert Image.open(tmp_path / "scan.png").mode.startswith("I")
    grey = np.asarray(load_image(tmp_path / "scan.png"))[0, :, 0].astype(int)
    assert grey[0] == 0 and grey[-1] == 255  # the full range survives (a plain convert saturates)
    assert np.all(np.diff(grey) >= 0) and len(set(grey)) > 32


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (12, 12), RED), Image.new("RGB", (12, 12), BLUE)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(tmp_path / "anim.gif").n_frames == 2
    assert_close(colour_at(load_image(tmp_path / "anim.gif"), (6, 6)), RED, tol=8)


def test_exif_rotated_phone_photo_is_turned_upright(tmp_path):
    image = Image.new("RGB", (60, 40), WHITE)
    image.paste(RED, (0, 0, 10, 10))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.size == (40, 60)
    assert_close(colour_at(loaded, (35, 4)), RED, tol=40)  # top-left moved to top-right


def test_big_photos_are_shrunk_keeping_the_aspect_ratio(tmp_path):
    Image.new("RGB", (3000, 1500), BLUE).save(tmp_path / "big.jpg")
    loaded = load_image(tmp_path / "big.jpg")
    assert loaded.size == (MAX_SIDE, MAX_SIDE // 2)


@pytest.mark.parametrize("width,height", [(10_000, 6_000), (20_000, 20_000)])
def test_decompression_bombs_are_refused_as_too_large(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(width, height))
    assert path.stat().st_size < 200
    with pytest.raises(InputError, match="too large") as error:
        load_image(path)
    assert "megapixels" in str(error.value) and "could not be read" not in str(error.value)


def unreadable_files(tmp_path: Path, catalog_dir: Path) -> dict[str, object]:
    (tmp_path / "garbage.jpg").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("my favourite red dress, size M\n")
    real = (catalog_dir / "images" / "10000.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(real[: len(real) // 2])
    return {"garbage": tmp_path / "garbage.jpg", "empty": tmp_path / "empty.jpg",
            "text renamed .jpg": tmp_path / "notes.jpg", "truncated": tmp_path / "truncated.jpg",
            "garbage bytes": b"\x00\x01 not an image", "missing": tmp_path / "nowhere.jpg"}


@pytest.mark.parametrize("kind", ["garbage", "empty", "text renamed .jpg", "truncated", "garbage bytes",
                                  "missing"])
def test_unreadable_input_is_an_input_error_with_a_human_message(tmp_path, catalog_dir, kind):
    source = unreadable_files(tmp_path, catalog_dir)[kind]
    with pytest.raises(InputError) as error:
        load_image(source)
    message = str(error.value)
    assert message.startswith(("That file could not be read as an image", "Image file not found"))
    assert "cannot identify" not in message and "Traceback" not in message and "truncated" not in message
