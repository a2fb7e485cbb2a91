"""Encoder training: the tiny real run, held-out items, resuming, fine-tuning a CLIP checkpoint,
and the colour-preserving augmentation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fashion_rag import settings
from fashion_rag.data.catalog import load_catalog
from fashion_rag.data.photos import load_photos
from fashion_rag.encoding.encoder import load_encoder
from fashion_rag.training.train_encoder import (
    augment,
    contrastive_loss,
    positives,
    training_rows,
)
from fashion_rag.training.train_encoder import main as train_encoder

ROOT = Path(__file__).resolve().parent.parent


def item_id(path: str) -> int | None:
    """Catalog images are images/<id>.jpg; user photos have uuid names (None)."""
    stem = Path(path).stem
    return int(stem) if stem.isdigit() else None


def test_tiny_run_wrote_a_small_loadable_checkpoint(tiny_encoder):
    names = {p.name for p in tiny_encoder.iterdir()}
    assert {"config.json", "preprocessor_config.json", "tokenizer_config.json", "training.json"} <= names
    assert names & {"tokenizer.json", "vocab.txt"}
    # The checkpoint proper stays small (the text tower in fp16); the ONNX exports beside it are
    # derived from it and made again by any load that misses them.
    assert {"backbone.onnx", "text.onnx"} <= names
    assert sum(p.stat().st_size for p in tiny_encoder.iterdir() if p.suffix != ".onnx") < 100 * 2**20
    info = json.loads((tiny_encoder / "training.json").read_text())
    assert info["images"] == 150 and isinstance(info["final_loss"], float) and info["args"]["epochs"] == "1"
    assert not (tiny_encoder.parent / f".{tiny_encoder.name}.train_state.pt").exists()  # cleaned up
    encoder = load_encoder(tiny_encoder)
    assert encoder.dim == 256 and encoder.model.config.model_type == "fashion_dual_encoder"


def test_held_out_items_are_never_training_rows(catalog_dir):
    rows = training_rows(catalog_dir, [settings.USER_PHOTOS_DIR, settings.USER_PHOTOS_EXTRA_DIR], None)
    ids = [i for i in map(item_id, rows["path"]) if i is not None]
    catalog = load_catalog(catalog_dir / "styles.csv").items
    trainable = set(catalog["id"][~catalog["id"].map(settings.is_held_out)])
    assert len(trainable) > 8000 and len(ids) == len(set(ids)) and set(ids) == trainable
    assert not any(settings.is_held_out(i) for i in ids)
    uploads = rows[rows["key"].str.startswith("upload|")]
    assert len(uploads) > 0 and all(Path(p).is_file() for p in uploads["path"].head(20))
    # Only the train split's `fit` part: dev photos choose settings, validation photos are reported on.
    # Each in both of the views a shopper's photo is looked at in (encoder.views).
    fit = load_photos("fit")
    for squared in (False, True):
        assert sorted(uploads["path"][uploads["squared"] == squared]) == sorted(fit["path"])
    assert not set(uploads["path"]) & (set(load_photos("dev")["path"]) | set(load_photos("validation")["path"]))
    limited = training_rows(catalog_dir, None, 150)
    assert len(limited) == 150 and not any(settings.is_held_out(item_id(p)) for p in limited["path"])


def test_resume_continues_after_the_last_finished_epoch(tmp_path, capsys):
    out = tmp_path / "encoder"
    state = tmp_path / ".encoder.train_state.pt"
    args = ["--limit", "60", "--epochs", "2", "--batch-size", "16", "--no-user-photos", "--out", str(out)]
    # Run in a child process and kill it once epoch 2 has begun, i.e. after epoch 1's state was saved.
    child = subprocess.Popen(
        [sys.executable, "-c", f"from fashion_rag.training.train_encoder import main; main({args!r})"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_MININTERVAL": "0"})
    timer = threading.Timer(240, child.kill)
    timer.start()
    seen = b""
    try:
        while b"epoch 2/2" not in seen:
            chunk = os.read(child.stderr.fileno(), 4096)
            assert chunk, f"training ended before epoch 2 began:\n{seen.decode(errors='replace')[-2000:]}"
            seen += chunk
        child.kill()
    finally:
        timer.cancel()
        child.wait()
    assert torch.load(state, weights_only=False)["epoch"] == 0
    assert not (out / "config.json").exists()

    capsys.readouterr()
    train_encoder(args + ["--resume"])
    printed = capsys.readouterr()
    assert "resuming after epoch 1" in printed.out
    assert "epoch 2/2" in printed.err and "epoch 1/2" not in printed.err
    assert not state.exists()
    info = json.loads((out / "training.json").read_text())
    assert info["images"] == 60 and isinstance(info["final_loss"], float)
    assert (out / "model.safetensors").is_file()


def test_fine_tuning_a_clip_checkpoint_trains_the_image_side_only(tmp_path, tiny_clip_dir):
    from transformers import CLIPModel
    out = train_encoder(["--init", str(tiny_clip_dir), "--limit", "60", "--epochs", "1",
                         "--no-user-photos", "--out", str(tmp_path / "tuned")])
    before = CLIPModel.from_pretrained(tiny_clip_dir, dtype=torch.float32).state_dict()
    after = CLIPModel.from_pretrained(out, dtype=torch.float32).state_dict()
    assert before.keys() == after.keys()
    as_saved = {k: v.half().float() for k, v in before.items()}  # the checkpoint is stored in fp16
    text = [k for k in before if k.startswith(("text_model.", "text_projection."))]
    vision = [k for k in before if k.startswith(("vision_model.", "visual_projection."))]
    assert text and vision
    assert all(torch.equal(after[k], as_saved[k]) for k in text)
    changed = [k for k in vision if (after[k] - as_saved[k]).abs().max() > 1e-3]
    assert len(changed) > len(vision) // 2
    assert (after["visual_projection.weight"] - as_saved["visual_projection.weight"]).abs().max() > 1e-3
    assert load_encoder(out).dim == 32  # and it loads like any CLIP checkpoint


def test_augment_moves_pixels_but_keeps_colour(catalog_dir, tiny_encoder):
    colours = torch.tensor([[1.9, -1.8, -1.5], [-0.5, 0.2, 2.1], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    solid = colours[:, :, None, None].expand(4, 3, 32, 32).contiguous()
    moved = augment(solid, torch.Generator().manual_seed(0))
    assert moved.shape == solid.shape
    assert torch.allclose(moved.mean(dim=(2, 3)), colours, atol=1e-5)
    assert torch.allclose(moved, solid, atol=1e-5)  # every pixel keeps its colour, not just the mean

    from transformers import AutoImageProcessor

    from fashion_rag.data.images import load_image
    processor = AutoImageProcessor.from_pretrained(tiny_encoder)  # the training preprocessing
    photo = processor(images=[load_image(catalog_dir / "images" / "10003.jpg")] * 4,
                      return_tensors="pt")["pixel_values"]
    shifted = augment(photo, torch.Generator().manual_seed(1))
    assert (shifted - photo).abs().mean() > 0.01  # geometry does change
    assert not torch.allclose(shifted[0], shifted[1])  # and differs per image


def keyed(keys: list[str]) -> torch.Tensor:
    keys = np.array(keys)
    return torch.from_numpy(keys[:, None] == keys[None, :])


def test_contrastive_loss_rewards_matching_pairs():
    torch.manual_seed(0)
    image = torch.randn(6, 16)
    keys = keyed(["a", "b", "c", "d", "e", "f"])
    scale = torch.tensor(10.0)
    matched = contrastive_loss(image, image.clone(), keys, scale)
    shuffled = contrastive_loss(image, image[torch.tensor([1, 2, 3, 4, 5, 0])], keys, scale)
    assert matched < shuffled
    same = keyed(["a", "a", "b", "b", "c", "c"])  # in-batch items with one key are all positives
    swapped_within_key = image[torch.tensor([1, 0, 3, 2, 5, 4])]
    assert torch.isclose(contrastive_loss(image, image, same, scale),
                         contrastive_loss(image, swapped_within_key, same, scale), atol=1e-5)


def test_an_upload_matches_catalog_items_of_its_type_group():
    """The training signal for uploads: a dress photo is a positive for every catalog dress (its
    colour and gender are unknown), not a negative as it was when keys never matched."""
    rows = pd.DataFrame([
        {"key": "Women|Dresses|Red", "groups": ["dress"], "upload": False},
        {"key": "Women|Dresses|Blue", "groups": ["dress"], "upload": False},
        {"key": "Men|Shirts|Blue", "groups": ["shirt"], "upload": False},
        {"key": "upload|dress", "groups": ["dress"], "upload": True},
        {"key": "upload|longsleeve", "groups": ["sweater", "top", "t-shirt"], "upload": True},
        {"key": "upload|dress", "groups": ["dress"], "upload": True},
    ])
    same = positives(rows)
    assert same[3, 0] and same[3, 1] and same[0, 3] and same[3, 5]
    assert not same[3, 2] and not same[4, 0] and not same[4, 3]  # other groups, other labels
    assert not same[0, 1]  # two catalog items still need the same gender, type and colour


def test_training_the_composer_again_gives_the_same_composer(small_index, tmp_path):
    """The composer is seeded, and two processes (each with its own string-hash seed, which
    orders Python's sets) train the same weights, so a fresh machine gets the evaluated one."""
    weights = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        subprocess.run([sys.executable, "scripts/train_composer.py", "--index", str(small_index), "--out", str(out),
                        "--epochs", "1"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": hash_seed})
        weights.append(torch.load(out / "composer.pt", weights_only=True))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_an_unknown_backbone_is_a_usage_error_naming_the_choices(capsys):
    from fashion_rag.training.train_encoder import parse_args
    assert parse_args(["--backbone", "efficientnet-lite0+efficientnet-lite1"]).backbone == \
        "efficientnet-lite0+efficientnet-lite1"
    with pytest.raises(SystemExit):
        parse_args(["--backbone", "efficientnet-lite1+resnet-50"])
    assert "Unknown image backbone 'resnet-50'; choose from efficientnet-lite0" in capsys.readouterr().err
