"""CIFAR ResNet-20/32/44/56 (He et al. 2016, sec. 4.2) with the keys of ``shared/models/cifar10-resnet``.

Three stages of 16/32/64 channels with n = (depth - 2) / 6 basic blocks each, BatchNorm, and
option-A shortcuts: identity, or (at a stride-2 stage change) spatial subsampling by 2 with the new
channels zero-padded, so the shortcut holds no parameter. Keys: ``conv1``, ``bn1``,
``layer{1,2,3}.{i}.conv{1,2}`` / ``bn{1,2}``, ``linear`` (the checkpoints' ``module.`` prefix is
stripped on loading). Inputs: pixels / 255, then per-channel (x - mean) / std with
:data:`NORMALIZATION`.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn


__all__ = ["CifarResNet", "BasicBlock", "PadShortcut", "resnet", "DEPTHS", "CHECKPOINTS", "NORMALIZATION",
           "load_pretrained"]

NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
DEPTHS = {"resnet20": 20, "resnet32": 32, "resnet44": 44, "resnet56": 56}
CHECKPOINTS = {"resnet20": "cifar10-resnet/resnet20-12fca82f.th", "resnet32": "cifar10-resnet/resnet32-d509ac18.th",
               "resnet44": "cifar10-resnet/resnet44-014dd654.th", "resnet56": "cifar10-resnet/resnet56-4bfd9763.th"}


class PadShortcut(nn.Module):
    """Option-A shortcut: ``x[:, :, ::2, ::2]`` with ``pad`` zero channels on each side (no parameters)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = int(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            if stride != 2 or planes - in_planes != 2 * (planes // 4):
                raise ValueError(f"option-A shortcut needs stride 2 and planes = 2 in_planes, got stride={stride}, "
                                 f"in_planes={in_planes}, planes={planes}")
            self.shortcut: nn.Module = PadShortcut(planes // 4)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet of depth 6 n + 2; input (B, 3, 32, 32), output logits (B, num_classes)."""

    def __init__(self, depth: int = 20, num_classes: int = 10) -> None:
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6 n + 2 with n >= 1 (20, 32, 44, 56, ...), got {depth!r}")
        n = (depth - 2) // 6
        self.depth, self.num_classes = depth, num_classes
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes_in = 16
        for stage, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(planes_in, planes, stride if i == 0 else 1))
                planes_in = planes
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def resnet(name: str, num_classes: int = 10) -> CifarResNet:
    """An untrained ``resnet20`` / ``resnet32`` / ``resnet44`` / ``resnet56``."""
    if name not in DEPTHS:
        raise ValueError(f"name must be one of {sorted(DEPTHS)}, got {name!r}")
    return CifarResNet(DEPTHS[name], num_classes)


def load_pretrained(name: str, root: str | os.PathLike | None = None) -> CifarResNet:
    """A pretrained CIFAR-10 ResNet (keys loaded strictly after stripping ``module.``), in eval mode.

    ``root`` is the folder holding ``cifar10-resnet/``; by default the file is found or downloaded (checked by
    SHA-256) as :func:`prune.models.checkpoints.checkpoint_path` describes.
    The checkpoints predate BatchNorm's ``num_batches_tracked`` buffer, which BatchNorm's own loader fills in.
    """
    from .checkpoints import checkpoint_path

    model = resnet(name)
    path = checkpoint_path(CHECKPOINTS[name], root)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt["state_dict"] if isinstance(ckpt, dict) and "state_dict" in ckpt else ckpt
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    model.load_state_dict(state, strict=True)  # BatchNorm fills the absent num_batches_tracked itself
    return model.eval()
