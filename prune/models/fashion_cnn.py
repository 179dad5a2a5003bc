r"""The seed notebook's Fashion-MNIST CNN (papers.md 1.3, cell 23), without its three bugs.

Five 3x3 convolutions (padding 1) with channels [1, 32, 64, 128, 256, 512], each **Conv -> BatchNorm ->
ReLU** (the notebook has Conv -> ReLU -> BN; we take the usual order and say so), 2x2 max-pooling after
convolutions 2, 4 and 5 (28 -> 14 -> 7 -> 3, so the flattened size is 512 * 3 * 3 = 4608 as in the
notebook's first FC layer), dropout 0.35 after each pooling, then FC [4608, 1000, 10] with
BatchNorm + ReLU + dropout 0.5 on the first FC layer.

Bugs of the reference avoided: dropout is ``nn.Dropout`` (inactive under ``model.eval()``, where the
notebook's ``F.dropout(x, 0.35)`` stayed on at test time) and the output is ``log_softmax`` over the
classes (dim 1; the notebook normalised over the batch, dim 0).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["FashionCNN"]


class FashionCNN(nn.Module):
    """Conv-BN-ReLU CNN for 1 x 28 x 28 inputs; returns log-probabilities over ``n_classes``.

    Parameters
    ----------
    channels : sequence of 6 ints
        Input channels then the five convolutions' output channels (paper: 1, 32, 64, 128, 256, 512).
    hidden : int
        Width of the hidden FC layer (paper: 1000).
    n_classes : int
    conv_dropout, fc_dropout : float
        Dropout after each pooling (0.35) and after the hidden FC layer (0.5); active only in training mode.
    seed : int
        Seed of PyTorch's default initialisation (drawn inside a forked RNG; the global state is untouched).
    """

    POOL_AFTER = (1, 3, 4)  # 0-based indices of the convolutions followed by 2x2 max-pooling

    def __init__(self, channels: Sequence[int] = (1, 32, 64, 128, 256, 512), hidden: int = 1000,
                 n_classes: int = 10, conv_dropout: float = 0.35, fc_dropout: float = 0.5, *, seed: int = 0) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) != 6 or min(channels) < 1:
            raise ValueError(f"channels must be 6 positive integers, got {list(channels)}")
        for name, p in (("conv_dropout", conv_dropout), ("fc_dropout", fc_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {p}")
        if hidden < 1 or n_classes < 2:
            raise ValueError(f"hidden must be >= 1 and n_classes >= 2, got {hidden}, {n_classes}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            blocks = []
            for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
                block = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
                if i in self.POOL_AFTER:
                    block += [nn.MaxPool2d(2), nn.Dropout(conv_dropout)]
                blocks.append(nn.Sequential(*block))
            self.features = nn.Sequential(*blocks)
            flat = channels[-1] * 3 * 3
            self.fc1 = nn.Linear(flat, hidden)
            self.bn_fc = nn.BatchNorm1d(hidden)
            self.drop_fc = nn.Dropout(fc_dropout)
            self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = self.features(x).flatten(1)
        x = self.drop_fc(torch.relu(self.bn_fc(self.fc1(x))))
        return torch.log_softmax(self.fc2(x), dim=1)
