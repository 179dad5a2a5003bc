"""The MNIST CNN of ``shared/models/mnist-cnn`` (keys ``features.0.*``, ``features.3.*``, ``classifier.0.*``, ``classifier.2.*``).

Conv(1, 32, 3, pad 1) - ReLU - MaxPool 2 - Conv(32, 64, 3, pad 1) - ReLU - MaxPool 2 - Flatten -
Linear(3136, 128) - ReLU - Linear(128, 10); 421,642 parameters. Inputs: pixels / 255, then
(x - 0.1307) / 0.3081 (:data:`NORMALIZATION`).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from .checkpoints import models_root  # noqa: F401 (where the checkpoints are read from; rmt.paths protects it)

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


def load_pretrained(name: str = "mnist-cnn", root: str | os.PathLike | None = None) -> MnistCNN:
    """The pretrained MNIST CNN (99.05% on the MNIST test set), loaded strictly, in eval mode.

    ``root`` is the folder holding ``mnist-cnn/mnist-cnn.pth``; by default the file is found or downloaded (checked
    by SHA-256) as :func:`prune.models.checkpoints.checkpoint_path` describes.
    """
    from .checkpoints import checkpoint_path

    if name != "mnist-cnn":
        raise ValueError(f"name must be 'mnist-cnn', got {name!r}")
    path = checkpoint_path(DEFAULT_CHECKPOINT, root)
    model = MnistCNN()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()
