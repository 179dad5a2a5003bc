r"""The seed notebook's Fashion-MNIST CNN (papers.md 1.3, cell 23), without its three bugs.

Five 3x3 convolutions (padding 1) with channels [1, 32, 64, 128, 256, 512], each **Conv -> BatchNorm ->
ReLU** (the notebook has Conv -> ReLU -> BN; we take the usual order and say so), 2x2 max-pooling after
convolutions 2, 4 and 5 (28 -> 14 -> 7 -> 3, so the flattened size is 512 * 3 * 3 = 4608 as in the
notebook's first FC layer), dropout 0.35 after each pooling, then FC [4608, 1000, 10] with
BatchNorm + ReLU + dropout 0.5 on the first FC layer.

Bugs of the reference avoided: dropout is ``nn.Dropout`` (inactive under ``model.eval()``, where the
notebook's ``F.dropout(x, 0.35)`` stayed on at test time) and the output is ``log_softmax`` over the
classes (dim 1; the notebook normalised over the batch, dim 0).

``layout="notebook"`` is the notebook's layer layout exactly (``rmt_pruning_2.ipynb`` cells 5 and 11): 3x3
convolutions **without padding**, max-pooling after convolutions 3 and 5 (28 -> 26 -> 24 -> 22 -> 11 -> 9 -> 7
-> 3, again 4608 = 512 * 3 * 3 inputs to fc1), dropout 0.35 after **every** convolution, and the FC layers
initialised N(0, 1/in) with zero bias (its ``SplittableLinear``); convolutions keep PyTorch's default init.
``seed_bugs=True`` adds the three bugs papers.md 1.3 names (Conv -> ReLU -> BN, dropout active at test
time, log_softmax over dim 0), to run the reference as it was next to the fix.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["FashionCNN"]


class _AlwaysDropout(nn.Module):
    """Dropout that stays active in eval mode (the notebook's ``F.dropout(x, p)``; only with seed_bugs)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.dropout(x, self.p, training=True)


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
    layout : {"fixed", "notebook"}
        ``"fixed"`` (default): padding 1, pooling after convolutions 2, 4, 5, dropout after each pooling.
        ``"notebook"``: the notebook's layout and FC init (module docstring).
    seed_bugs : bool
        Reproduce the notebook's three named bugs (only with ``layout="notebook"``).
    """

    POOL_AFTER = (1, 3, 4)  # 0-based indices of the convolutions followed by 2x2 max-pooling
    NOTEBOOK_POOL_AFTER = (2, 4)  # the notebook's ``k % 2 == 0 and k != 0``

    def __init__(self, channels: Sequence[int] = (1, 32, 64, 128, 256, 512), hidden: int = 1000,
                 n_classes: int = 10, conv_dropout: float = 0.35, fc_dropout: float = 0.5, *, seed: int = 0,
                 layout: str = "fixed", seed_bugs: bool = False) -> None:
        super().__init__()
        if layout not in ("fixed", "notebook"):
            raise ValueError(f'layout must be "fixed" or "notebook", got {layout!r}')
        if not isinstance(seed_bugs, bool):
            raise TypeError(f"seed_bugs must be a bool, got {seed_bugs!r}")
        if seed_bugs and layout != "notebook":
            raise ValueError('seed_bugs=True needs layout="notebook"')
        self.layout, self.seed_bugs = layout, seed_bugs
        self.softmax_dim = 0 if seed_bugs else 1
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
            drop = _AlwaysDropout if seed_bugs else nn.Dropout
            for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
                if layout == "fixed":
                    block = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
                    if i in self.POOL_AFTER:
                        block += [nn.MaxPool2d(2), nn.Dropout(conv_dropout)]
                else:
                    act = [nn.ReLU(), nn.BatchNorm2d(cout)] if seed_bugs else [nn.BatchNorm2d(cout), nn.ReLU()]
                    block = [nn.Conv2d(cin, cout, 3), *act]
                    if i in self.NOTEBOOK_POOL_AFTER:
                        block.append(nn.MaxPool2d(2))
                    block.append(drop(conv_dropout))
                blocks.append(nn.Sequential(*block))
            self.features = nn.Sequential(*blocks)
            flat = channels[-1] * 3 * 3
            self.fc1 = nn.Linear(flat, hidden)
            self.bn_fc = nn.BatchNorm1d(hidden)
            self.drop_fc = drop(fc_dropout) if layout == "notebook" else nn.Dropout(fc_dropout)
            self.fc2 = nn.Linear(hidden, n_classes)
            if layout == "notebook":       # SplittableLinear: N(0, 1/in), bias 0
                for lin in (self.fc1, self.fc2):
                    nn.init.normal_(lin.weight, mean=0.0, std=lin.in_features ** -0.5)
                    nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = self.features(x).flatten(1)
        x = self.drop_fc(torch.relu(self.bn_fc(self.fc1(x))))
        return torch.log_softmax(self.fc2(x), dim=self.softmax_dim)
