r"""Seed paper 2's data-free regularisation phase (papers.md 2.2, Algorithm "3" step c).

Between pruning cycles the weights are moved by AdamW on a loss that contains **no data term**:

.. math::

    L_{reg} = \sum_\ell \kappa_\ell\, g\, \|P_\ell\|_2 \;+\; a_1 \sum |p| \;+\; a_2 \sum p^2,
    \qquad \kappa_\ell = \frac{1}{1 + K \mu_\ell / i},

a group lasso (the Frobenius norm of each weight tensor :math:`P_\ell`) weighted by how well the layer fits
MP (:math:`\mu_\ell`, its MP-fit error; i the cycle), plus L1 and L2 penalties; the seed's constants are
g = 1e-6, a_1 = 5e-7, a_2 = 2e-7, K = 1e4, AdamW lr 5e-8 with weight decay 2e-7, cosine annealing over
the phase's steps. The gradients of layer :math:`\ell` are then also multiplied by :math:`\kappa_\ell`, and
pruned (masked) weights stay exactly 0 (:class:`prune.masks.FrozenMasks`).

The penalties act on the prunable weights (Linear / Conv2d / factor weights), the tensors the MP fit is
about; biases and norm parameters are not touched. With the seed's tiny learning rate the phase moves
each weight by at most about lr x steps (Adam's step is bounded by lr), e.g. 5e-8 x 5000 = 2.5e-4.
"""
from __future__ import annotations

import copy
import math
from typing import Iterable, Mapping

import torch
from torch import nn

from .masks import FrozenMasks, masks_from_model, prunable_weights

__all__ = ["layer_kappas", "regularization_loss", "regularize"]


def layer_kappas(mus: Mapping[str, float] | None, layer_names: Iterable[str], cycle: int = 1,
                 kappa_scale: float = 1e4) -> dict[str, float]:
    r""":math:`\kappa_\ell = 1 / (1 + K \mu_\ell / i)` per layer; a layer with no (or a NaN) :math:`\mu` gets 1.

    Raises
    ------
    ValueError
        ``cycle`` < 1, ``kappa_scale`` < 0, or a negative :math:`\mu`.
    """
    if isinstance(cycle, bool) or not isinstance(cycle, int) or cycle < 1:
        raise ValueError(f"cycle must be an integer >= 1, got {cycle!r}")
    if not (math.isfinite(kappa_scale) and kappa_scale >= 0):
        raise ValueError(f"kappa_scale must be a finite number >= 0, got {kappa_scale!r}")
    out = {}
    for name in layer_names:
        mu = (mus or {}).get(name, math.nan)
        if mu is None or not math.isfinite(mu):
            out[name] = 1.0
            continue
        if mu < 0:
            raise ValueError(f"mus[{name!r}] must be >= 0, got {mu!r}")
        out[name] = 1.0 / (1.0 + kappa_scale * mu / cycle)
    return out


def regularization_loss(model: nn.Module, kappas: Mapping[str, float] | None = None, *, group_lasso: float = 1e-6,
                        l1: float = 5e-7, l2: float = 2e-7, layers: Iterable[str] | None = None) -> torch.Tensor:
    r""":math:`\sum_\ell \kappa_\ell g \|P_\ell\|_2 + a_1 \sum|p| + a_2 \sum p^2` over the prunable weights.

    ``kappas`` maps layer names to :math:`\kappa_\ell` (default 1). A factorised layer's two factors are two
    groups. Differentiable; an all-zero tensor contributes 0 with zero (sub)gradient.
    """
    for nm, v in (("group_lasso", group_lasso), ("l1", l1), ("l2", l2)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{nm} must be a finite number >= 0, got {v!r}")
    total = None
    for _, lname, p in prunable_weights(model, layers):
        k = 1.0 if kappas is None else float(kappas.get(lname, 1.0))
        sq = (p * p).sum()
        # sqrt of a sum of squares with a zero-safe gradient (torch.linalg.norm's gradient at 0 is NaN)
        norm = torch.where(sq > 0, torch.sqrt(torch.where(sq > 0, sq, torch.ones_like(sq))), torch.zeros_like(sq))
        term = k * group_lasso * norm + l1 * p.abs().sum() + l2 * sq
        total = term if total is None else total + term
    return total


def regularize(model: nn.Module, steps: int, *, mus: Mapping[str, float] | None = None, cycle: int = 1,
               lr: float = 5e-8, weight_decay: float = 2e-7, group_lasso: float = 1e-6, l1: float = 5e-7,
               l2: float = 2e-7, kappa_scale: float = 1e4, masks: Mapping[str, torch.Tensor] | None = None,
               layers: Iterable[str] | None = None, inplace: bool = False,
               progress: bool = False) -> tuple[nn.Module, dict]:
    r"""Run the data-free regularisation phase for ``steps`` AdamW steps (seed paper 2; module docstring).

    Parameters
    ----------
    model : nn.Module
    steps : int >= 0
        E_i; the seed runs 5000 + 1000 (i - 1) steps in cycle i.
    mus : dict, optional
        Layer name -> MP-fit error :math:`\mu_\ell` (e.g. from the rows of
        :func:`prune.methods.mp_cycles.mp_magnitude_prune`); layers without one get :math:`\kappa = 1`.
    cycle : int
        i in :math:`\kappa_\ell`.
    lr, weight_decay, group_lasso, l1, l2, kappa_scale : float
        The seed's constants by default.
    masks : dict, optional
        Frozen masks; default: the current zeros of the prunable weights (all pruned weights stay 0).
    layers, inplace, progress
        As elsewhere in ``prune``.

    Returns
    -------
    (nn.Module, dict)
        The model and ``{"steps", "loss_start", "loss_end", "kappas"}``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    for nm, v in (("lr", lr), ("weight_decay", weight_decay)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{nm} must be a finite number >= 0, got {v!r}")
    target = model if inplace else copy.deepcopy(model)
    items = prunable_weights(target, layers)
    lnames = list(dict.fromkeys(l for _, l, _ in items))
    kappas = layer_kappas(mus, lnames, cycle, kappa_scale)
    if masks is None:
        masks = masks_from_model(target, layers)
    kw = dict(group_lasso=group_lasso, l1=l1, l2=l2, layers=layers)
    with torch.no_grad():
        loss_start = float(regularization_loss(target, kappas, **kw))
    if steps == 0:
        return target, dict(steps=0, loss_start=loss_start, loss_end=loss_start, kappas=kappas)
    params = [p for _, _, p in items]
    was = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    scale = [(p, kappas[l]) for _, l, p in items]
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"regularisation (cycle {cycle})", unit="step")
    frozen = FrozenMasks(target, masks, optimizer=opt)
    try:
        for _ in it:
            opt.zero_grad(set_to_none=True)
            loss = regularization_loss(target, kappas, **kw)
            loss.backward()
            with torch.no_grad():
                for p, k in scale:
                    if p.grad is not None and k != 1.0:
                        p.grad.mul_(k)
            opt.step()
            sched.step()
    finally:
        frozen.remove()
        for p, w in zip(params, was):
            p.requires_grad_(w)
            p.grad = None
    with torch.no_grad():
        loss_end = float(regularization_loss(target, kappas, **kw))
    return target, dict(steps=steps, loss_start=loss_start, loss_end=loss_end, kappas=kappas)
