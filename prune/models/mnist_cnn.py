"""The MNIST CNN of ``shared/models/mnist-cnn`` (keys ``features.0.*``, ``features.3.*``, ``classifier.0.*``, ``classifier.2.*``).

Conv(1, 32, 3, pad 1) - ReLU - MaxPool 2 - Conv(32, 64, 3, pad 1) - ReLU - MaxPool 2 - Flatten -
Linear(3136, 128) - ReLU - Linear(128, 10); 421,642 parameters. Inputs: pixels / 255, then
(x - 0.1307) / 0.3081 (:data:`NORMALIZATION`).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["MnistCNN", "NORMALIZATION", "DEFAULT_CHECKPOINT", "load_pretrained"]

#: (mean, std) of the input normalisation, applied to pixels / 255.
NORMALIZATION = ((0.1307,), (0.3081,))
DEFAULT_CHECKPOINT = "mnist-cnn/mnist-cnn.pth"


class MnistCNN(nn.Module):
    """Two conv blocks and a two-layer classifier; input (B, 1, 28, 28), output logits (B, num_classes)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def models_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$RMT_MODELS_DIR``, else ``$RMT_DATA_DIR/../models``, else ``<repository>/../shared/models``.

    The last two follow the shared layout (``shared/data`` next to ``shared/models``, README of shared/).
    """
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("RMT_MODELS_DIR"):
        return Path(os.environ["RMT_MODELS_DIR"]).expanduser()
    if os.environ.get("RMT_DATA_DIR"):
        return Path(os.environ["RMT_DATA_DIR"]).expanduser().parent / "models"
    return Path(__file__).resolve().parents[3] / "shared" / "models"


def load_pretrained(name: str = "mnist-cnn", root: str | os.PathLike | None = None) -> MnistCNN:
    """The pretrained MNIST CNN (99.05% on the MNIST test set), loaded strictly, in eval mode.

    ``root`` is the folder holding ``mnist-cnn/mnist-cnn.pth`` (default: see :func:`models_root`).
    """
    if name != "mnist-cnn":
        raise ValueError(f"name must be 'mnist-cnn', got {name!r}")
    path = models_root(root) / DEFAULT_CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no MNIST CNN checkpoint at {path}; pass root= or set RMT_MODELS_DIR")
    model = MnistCNN()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()
