r"""Magnitude pruning: the global (or per-layer) magnitude baseline, and seed paper 2's Algorithm D by threshold.

The global baseline ( seed paper 2's Algorithm D when given a threshold,
papers.md 2.2): zero the entries of smallest :math:`|w_{ij}|`, either the ``amount`` fraction of all
selected weights pooled together (``scope="global"``) or of each layer separately (``scope="layer"``),
or every entry with :math:`|w_{ij}| < \xi` (``threshold``).
The masks it returns are :mod:`prune.masks` masks; :func:`prune.masks.freeze_masks` keeps them through
fine-tuning.
"""
from __future__ import annotations

import copy
import math
from typing import Iterable

import torch
from torch import nn

from ..masks import Masks, _check_amount, _check_model, _smallest_mask, prunable_weights

__all__ = ["magnitude_prune"]


def magnitude_prune(model: nn.Module, *, amount: float | None = None, threshold: float | None = None,
                    scope: str = "global", layers: Iterable[str] | None = None,
                    inplace: bool = False) -> tuple[nn.Module, Masks]:
    r"""Magnitude pruning: zero the weights of smallest :math:`|w_{ij}|` (the global-magnitude baseline).

    With ``amount`` = a, exactly :math:`k = \mathrm{round}(a\, n_w)` of the :math:`n_w` selected entries
    are zeroed, the smallest in magnitude first (entries already 0 count among them, so ``a`` is the
    sparsity reached), pooled over all selected layers (``scope="global"``) or per layer
    (``scope="layer"``; :math:`n_w` is then the layer's size). With ``threshold`` = :math:`\xi`, every
    entry with :math:`|w_{ij}| < \xi` is zeroed (seed paper 2's Algorithm D, papers.md 2.2).

    Parameters
    ----------
    model : nn.Module
    amount : float in [0, 1], optional
        Target sparsity of the selected weights. Exactly one of ``amount`` and ``threshold``.
    threshold : float >= 0, optional
        Magnitude below which entries are zeroed.
    scope : {"global", "layer"}
        Pool all selected weights (global) or prune each layer by ``amount`` (layer).
    layers : iterable of str, optional
        Only these prunable layers (default: all).
    inplace : bool
        Change ``model`` itself instead of a deep copy.

    Returns
    -------
    (nn.Module, dict)
        The pruned model and its masks (parameter name -> bool keep tensor) for every selected weight;
        pass them to :func:`prune.masks.freeze_masks` to keep the zeros through fine-tuning.

    Raises
    ------
    ValueError
        Both or neither of ``amount`` / ``threshold``, out-of-range values, unknown ``scope``, unknown
        layer names, non-finite weights.
    TypeError
        ``model`` is not an ``nn.Module``.

    References
    ----------
    Han, Pool, Tran, Dally, "Learning both weights and connections for efficient neural networks", NeurIPS 2015.
    """
    _check_model(model)
    if (amount is None) == (threshold is None):
        raise ValueError(f"give exactly one of amount and threshold, got amount={amount!r}, threshold={threshold!r}")
    if scope not in ("global", "layer"):
        raise ValueError(f'scope must be "global" or "layer", got {scope!r}')
    if amount is not None:
        amount = _check_amount(amount)
    else:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
                math.isfinite(threshold) and threshold >= 0):
            raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    target = model if inplace else copy.deepcopy(model)
    items = prunable_weights(target, layers)
    with torch.no_grad():
        for name, _, p in items:
            if not bool(torch.isfinite(p).all()):
                raise ValueError(f"parameter {name!r} contains NaN or Inf")
        masks: Masks = {}
        if threshold is not None:
            for name, _, p in items:
                masks[name] = p.abs() >= threshold
        elif scope == "layer":
            for name, _, p in items:
                k = int(round(amount * p.numel()))
                masks[name] = _smallest_mask(p.detach().abs().flatten(), k).reshape(p.shape)
        else:
            flat = torch.cat([p.detach().abs().flatten().to(torch.float64) for _, _, p in items])
            keep = _smallest_mask(flat, int(round(amount * flat.numel())))
            start = 0
            for name, _, p in items:
                masks[name] = keep[start:start + p.numel()].reshape(p.shape).to(p.device)
                start += p.numel()
        for name, _, p in items:
            p.mul_(masks[name])
    return target, masks
