"""The own encoder's frozen towers under onnxruntime: each exported once to ONNX beside the
checkpoint and run there at search and indexing time, where torch's per-operation overhead
dominates on a CPU (scripts/benchmark.py: the image backbone about four times faster than torch,
a short query through the text tower about twice). Torch stays the path for training.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

BACKBONE_FILE, TEXT_FILE = "backbone.onnx", "text.onnx"


def export_onnx(module: nn.Module, path: Path, example: dict[str, torch.Tensor],
                free: dict[str, dict[int, str]]) -> Path:
    """Write `module` (called with `example`'s tensors in order) as an ONNX graph whose `free`
    axes may change size, and whose single output is "out". Written atomically: a killed export
    leaves no half file for the next start to trust."""
    module = module.eval()
    partial = path.with_name(path.name + ".partial")
    with torch.inference_mode(False), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding: nothing to act on
        torch.onnx.export(module, tuple(example.values()), str(partial), input_names=list(example),
                          output_names=["out"], dynamic_axes=free | {"out": {0: "n"}}, dynamo=False,
                          opset_version=17)
    partial.replace(path)
    return path


def export_backbone(backbone: nn.Module, path: Path, side: int) -> Path:
    """The image backbone: (n, 3, side, side) pixels -> pooled features."""
    return export_onnx(backbone, path, {"pixels": torch.zeros(1, 3, side, side)}, {"pixels": {0: "n"}})


def export_text(tower: nn.Module, path: Path) -> Path:
    """The text tower: token ids and attention mask, (n, tokens) each -> pooled sentence vectors."""
    tokens = torch.ones(2, 5, dtype=torch.long)
    return export_onnx(tower, path, {"input_ids": tokens, "attention_mask": tokens},
                       {name: {0: "n", 1: "tokens"} for name in ("input_ids", "attention_mask")})


class OnnxModule:
    """An exported graph under onnxruntime, called like the torch module it came from."""

    def __init__(self, path: Path, threads: int, arena: bool = True):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # The memory arena makes large batches about 15% faster (training, building), but keeps the
        # peak of every batch size seen: a server without it kept 38 MB instead of 72 MB after the
        # load test's phases (scripts/loadtest.py), its small batches as fast.
        options.enable_cpu_mem_arena = arena
        # Idle threads sleep instead of spinning, as torch's do (OMP_WAIT_POLICY): spinning ones
        # took the cores from the text tower that runs right after, doubling a search (benchmark.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(t.numpy()) for name, t in zip(self.names, tensors)}
        return torch.from_numpy(self.session.run(None, feed)[0])
