r"""A small Vision Transformer of the project's own (Dosovitskiy et al. 2021), for MNIST / Fashion-MNIST.

Patch embedding (a ``Conv2d`` with kernel = stride = patch size, or a ``Linear`` on flattened patches),
a learned cls token and position embeddings, ``depth`` pre-norm blocks

.. math:: x \leftarrow x + \mathrm{proj}(\mathrm{Attn}(\mathrm{qkv}(\mathrm{LN}(x)))), \quad
          x \leftarrow x + \mathrm{fc2}(\mathrm{GELU}(\mathrm{fc1}(\mathrm{LN}(x)))),

with the fused projection ``qkv = nn.Linear(dim, 3 dim)`` (rows: q, k, v), then LayerNorm and a linear
head on the cls token. Every weight matrix is an ``nn.Linear`` / ``nn.Conv2d``, so the analysis and
the pruning methods of ``prune`` apply to it unchanged (factorised layers replace them in place).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ViT", "Attention", "Block", "VIT_MNIST_CONFIG", "WEIGHTS_DIR", "load_pretrained"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: the architecture of the committed ``vit-mnist`` weights (see ``weights/vit-mnist.json``)
VIT_MNIST_CONFIG = dict(image_size=28, patch_size=7, in_chans=1, num_classes=10, dim=96, depth=4, heads=4,
                        mlp_ratio=2.0, patch_embed="conv")


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (out = 3 dim) and an output ``proj``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads, got dim={dim}, heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """Pre-norm transformer block: attention and MLP residual branches."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, hidden))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Small ViT; input (B, in_chans, image_size, image_size), output logits (B, num_classes).

    Parameters
    ----------
    image_size, patch_size : int
        ``image_size`` must be a multiple of ``patch_size``; (image_size / patch_size)^2 patches.
    in_chans, num_classes, dim, depth, heads : int
    mlp_ratio : float
        Hidden width of the MLP relative to ``dim``.
    patch_embed : "conv" or "linear"
        The patch embedding as ``Conv2d(in_chans, dim, patch, stride=patch)`` or as ``Linear(in_chans patch^2, dim)``
        on flattened patches (the same map).
    """

    def __init__(self, image_size: int = 28, patch_size: int = 7, in_chans: int = 1, num_classes: int = 10,
                 dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0,
                 patch_embed: str = "conv") -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size must be a multiple of patch_size, got {image_size}, {patch_size}")
        if patch_embed not in ("conv", "linear"):
            raise ValueError(f'patch_embed must be "conv" or "linear", got {patch_embed!r}')
        for arg, val in dict(in_chans=in_chans, num_classes=num_classes, dim=dim, depth=depth, heads=heads).items():
            if not isinstance(val, int) or val < 1:
                raise ValueError(f"{arg} must be a positive integer, got {val!r}")
        self.config = dict(image_size=image_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
                           dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio, patch_embed=patch_embed)
        self.patch_size, self.num_patches = patch_size, (image_size // patch_size) ** 2
        if patch_embed == "conv":
            self.patch_embed: nn.Module = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)
        else:
            self.patch_embed = nn.Linear(in_chans * patch_size * patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_patches, C P P), patches in row-major order, channel-major within a patch."""
        P = self.patch_size
        B, C, H, W = x.shape
        x = x.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, (H // P) * (W // P), C * P * P)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config["patch_embed"] == "linear":  # the layer may since have been factorised: go by the config
            tokens = self.patch_embed(self.patchify(x))
        else:
            tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + self.pos_embed
        h = self.norm(self.blocks(h))
        return self.head(h[:, 0])


def load_pretrained(name: str = "vit-mnist", root: str | os.PathLike | None = None) -> ViT:
    """The committed ViT (``weights/<name>.pt``, trained by ``prune/models/train_vit.py``), in eval mode.

    ``root`` overrides the folder holding ``<name>.pt`` and ``<name>.json``.
    """
    import json

    folder = Path(root) if root is not None else WEIGHTS_DIR
    path = folder / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no ViT weights at {path} (train them with python -m prune.models.train_vit)")
    meta = folder / f"{name}.json"
    config = json.loads(meta.read_text())["config"] if meta.is_file() else VIT_MNIST_CONFIG
    model = ViT(**config)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()
