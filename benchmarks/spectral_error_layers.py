"""Spectral-norm error of element-wise sparsification on real trained layers: magnitude vs the spectral sampler.

For a few layers of the shared MNIST CNN and CIFAR ResNet-56 (conv kernels as their C_out x C_in k k matrix), and
target sparsities 0.5 / 0.7 / 0.8 / 0.9, measures ||W - W_s||_2 / ||W||_2, the worst shift of the top-10 singular
values relative to s_1, and the relative Frobenius error, for global-magnitude thresholding of the layer and for
the sampler of ``prune.methods.spectral_sparsify`` (p ~ |w|^q, q = 1 and 2, rescaled by 1/p; seeds 0-2).

Writes ``benchmarks/results/spectral_error_layers.csv`` and ``.json`` (command, versions).
Run: ``RMT_DATA_DIR=/work/shared/data python benchmarks/spectral_error_layers.py``.
"""
from __future__ import annotations

import csv
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from prune.methods.spectral_sparsify import sparsification_curve
from prune.models.registry import load_model

LAYERS = {"mnist-cnn": ["features.3.weight", "classifier.0.weight"],
          "resnet56": ["layer1.0.conv1.weight", "layer2.4.conv2.weight", "layer3.8.conv2.weight"]}


def main() -> int:
    torch.set_num_threads(1)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    rows = []
    for model_name, names in LAYERS.items():
        params = dict(load_model(model_name).named_parameters())
        for pname in names:
            W = params[pname].detach()
            for r in sparsification_curve(W, [0.5, 0.7, 0.8, 0.9], seeds=[0, 1, 2], powers=(1.0, 2.0)):
                rows.append(dict(model=model_name, layer=pname, shape="x".join(map(str, W.shape)), **r))
            print(model_name, pname, "done", flush=True)
    with open(out / "spectral_error_layers.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    (out / "spectral_error_layers.json").write_text(json.dumps(dict(
        command=" ".join([Path(sys.executable).name] + sys.argv),
        versions=dict(python=platform.python_version(), torch=torch.__version__, numpy=np.__version__),
        machine=dict(platform=platform.platform(), torch_threads=1), layers=LAYERS), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
