r"""Fully connected ReLU networks as in the seed papers' FC experiments (papers.md 1.3, 2.4a).

``FCNet([784, 3000, 3000, 10])`` is x -> Linear -> ReLU -> ... -> Linear -> log_softmax over the classes
(dim 1, never the batch: the seed CNN cell's ``log_softmax(dim=0)`` bug, papers.md 1.3). Weights are
drawn i.i.d. :math:`N(0, 1/\text{in})`, biases 0 (the seed code's init), from a seeded generator.

The precursor notebook (``jtj5311/NN-RMT-SVD``, ``RMT-SVD-NN.ipynb`` cell 3) differs in two ways, both
available as options: ``init="torch"`` keeps PyTorch's default ``nn.Linear`` init drawn right after
``torch.manual_seed(seed)`` (weights and biases U(-1/sqrt(in), 1/sqrt(in)); bit-identical to the notebook's
``torch.manual_seed(seed); networkModel(...)``), and ``output_relu=True`` applies the ReLU to the output
layer too (its ``no_rel`` list is all False), before the log_softmax.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["FCNet"]


class FCNet(nn.Module):
    r"""Fully connected ReLU net with layer sizes ``sizes`` = [in, hidden..., classes].

    Parameters
    ----------
    sizes : sequence of int
        At least two positive sizes; ``sizes[0]`` is the flattened input dimension.
    seed : int
        Seed of the initialisation.
    init : {"normal", "torch"}
        ``"normal"``: :math:`W_{ij} \sim N(0, 1/\text{in})`, b = 0 (papers.md 1.3), from a private generator.
        ``"torch"``: PyTorch's default Linear init under ``torch.manual_seed(seed)`` (the global RNG state is
        saved and restored around it), as the precursor notebook.
    output_relu : bool
        Apply the ReLU after the last layer too (the precursor notebook), default False.

    The forward pass flattens its input and returns log-probabilities (``log_softmax`` over dim 1).
    The layers are ``self.layers[i]`` (nn.Linear, or FactorizedLinear after pruning).
    """

    def __init__(self, sizes: Sequence[int], *, seed: int = 0, init: str = "normal",
                 output_relu: bool = False) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must hold at least two positive integers, got {list(sizes)}")
        if init not in ("normal", "torch"):
            raise ValueError(f'init must be "normal" or "torch", got {init!r}')
        if not isinstance(output_relu, bool):
            raise TypeError(f"output_relu must be a bool, got {output_relu!r}")
        self.sizes = sizes
        self.output_relu = output_relu
        layers = []
        if init == "torch":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        else:
            gen = torch.Generator().manual_seed(int(seed))
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                lin = nn.Linear(fan_in, fan_out)
                with torch.no_grad():
                    lin.weight.copy_(torch.randn(fan_out, fan_in, generator=gen) / math.sqrt(fan_in))
                    lin.bias.zero_()
                layers.append(lin)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        x = self.layers[-1](x)
        if self.output_relu:
            x = torch.relu(x)
        return torch.log_softmax(x, dim=1)
