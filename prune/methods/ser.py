r"""Spectral Edge Reallocation (SER) and Hybrid Magnitude-SER (the successor paper, arXiv 2606.02608, Online
Resource 2 sections "SER" and "Hybrid Magnitude--SER"; constants and what had to be inferred in
``prune/methods/PROVENANCE.md``).

SER to sparsity :math:`s` (one shot from the model given):

1. **Over-prune** with the SEB scores (:func:`prune.methods.seb.seb_prune` weights :math:`w_\ell(s)`) to
   :math:`s + r` (``reserve`` r, the successor's ``--reinsert-total-fraction 0.03`` of all selected weights).
   The entries newly zeroed form the reservoir :math:`\mathcal R`.
2. **Selection phase**: only the reservoir entries are trainable (every other parameter frozen, model in eval
   mode), starting from 0; AdamW (lr ``select_lr``, cosine to ``min_lr_ratio`` x lr, no weight decay) for
   ``select_steps`` mini-batches on cross-entropy plus ``logit_l2`` x the mean squared distance of the logits to
   those of the model before pruning. :math:`\Delta_{ij}` is each entry's movement.
3. **Restore** the :math:`\mathrm{round}((s+r)n) - \mathrm{round}(s n)` reservoir entries of largest
   :math:`|\Delta_{ij}|\,\rho_\ell`, :math:`\rho_\ell = 1 / w_\ell(s)` (protected layers restore first), to their
   selection-phase value (``restore_value="trained"``) or their value before pruning (``"original"``); all
   other reservoir entries go back to 0. The selected weights are then exactly at sparsity s.
4. Fine-tuning with the mask frozen is the caller's (``prune.finetune.finetune(masks=...)``), so that every
   method in a comparison gets the same fine-tune budget.

Hybrid: global magnitude pruning up to :math:`\min(s, 0.20)`, then SER from there to :math:`s` (the successor
runs magnitude cycles to 0.20 and continues with SER cycles; here each stage is one shot).
"""
from __future__ import annotations

import copy
import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..masks import Masks, _check_amount, _check_model
from .magnitude import magnitude_prune
from .seb import BudgetWeightRow, _groups, _rows, layer_spectra, seb_weights

__all__ = ["ser_prune", "hybrid_prune", "HYBRID_SWITCH", "SER_RESERVE"]

SER_RESERVE = 0.03  # --reinsert-total-fraction 0.03 (run_removed_matrix_audit_v8_model_exec.py line 40)
HYBRID_SWITCH = 0.20  # PREFIX_TARGETS end at 0.20 (hybrid_mag20_then_v8_model.py line 18)
RESTORE_VALUES = ("trained", "original")


def _check_pos(name, val, integer=False, allow_zero=False):
    if isinstance(val, bool) or not isinstance(val, int if integer else (int, float)) or \
            not math.isfinite(val) or (val < 0 if allow_zero else val <= 0):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind} {'>= 0' if allow_zero else '> 0'}, got {val!r}")


def _check_train(train):
    if not (isinstance(train, (tuple, list)) and len(train) == 2 and all(isinstance(t, torch.Tensor) for t in train)
            and train[0].shape[0] == train[1].shape[0] and train[0].shape[0] > 0):
        raise ValueError("train must be an (X, y) pair of tensors with the same, positive number of rows")


def ser_prune(model: nn.Module, amount: float, train, *, reserve: float = SER_RESERVE, select_steps: int = 128,
              select_lr: float = 4e-4, min_lr_ratio: float = 0.25, batch_size: int = 128, logit_l2: float = 1.0,
              restore_value: str = "trained", seed: int = 0, alpha_bema: float = 0.25, beta_bema: float = 0.8,
              layers: Iterable[str] | None = None,
              inplace: bool = False) -> tuple[nn.Module, Masks, list[BudgetWeightRow]]:
    r"""SER (see the module docstring) to exactly sparsity ``amount`` of the selected weights.

    Parameters
    ----------
    model : nn.Module
    amount : float in [0, 1]
    train : (X, y) tensors
        Data for the selection phase (a training split, never the test set).
    reserve : float in [0, 1]
        Over-pruning beyond the target, as a fraction of all selected weights (0.03).
    select_steps : int >= 0
        Mini-batches of the selection phase (0: restore by SEB score order instead of movement).
    select_lr, min_lr_ratio : float
        AdamW peak learning rate (the successor: 8 x 5e-5) and final fraction of it (0.25).
    batch_size : int
    logit_l2 : float >= 0
        Weight of the logit-distance term to the unpruned model (1.0).
    restore_value : {"trained", "original"}
    seed : int
        Order of the selection-phase batches.
    alpha_bema, beta_bema, layers, inplace
        As in :func:`prune.methods.seb.seb_prune`.

    Returns
    -------
    (nn.Module, dict, list[BudgetWeightRow])
    """
    _check_model(model)
    amount = _check_amount(amount)
    if isinstance(reserve, bool) or not isinstance(reserve, (int, float)) or not 0 <= reserve <= 1:
        raise ValueError(f"reserve must be a fraction in [0, 1], got {reserve!r}")
    _check_train(train)
    _check_pos("select_steps", select_steps, integer=True, allow_zero=True)
    _check_pos("select_lr", select_lr)
    _check_pos("batch_size", batch_size, integer=True)
    _check_pos("logit_l2", logit_l2, allow_zero=True)
    if isinstance(min_lr_ratio, bool) or not isinstance(min_lr_ratio, (int, float)) or not 0 <= min_lr_ratio <= 1:
        raise ValueError(f"min_lr_ratio must lie in [0, 1], got {min_lr_ratio!r}")
    if restore_value not in RESTORE_VALUES:
        raise ValueError(f"restore_value must be one of {RESTORE_VALUES}, got {restore_value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    target = model if inplace else copy.deepcopy(model)
    ref = copy.deepcopy(target).eval() if logit_l2 > 0 and select_steps > 0 else None
    spectra = layer_spectra(target, layers, alpha=alpha_bema, beta=beta_bema)
    w = seb_weights(spectra, amount)
    groups = _groups(target, layers)
    names = [pn for ts in groups.values() for pn, _ in ts]
    params = {pn: p for ts in groups.values() for pn, p in ts}
    layer_of = {pn: ln for ln, ts in groups.items() for pn, _ in ts}
    n = sum(p.numel() for p in params.values())
    k_final = int(round(amount * n))
    k_over = min(n, int(round(min(1.0, amount + reserve) * n)))
    with torch.no_grad():
        original = {pn: p.detach().clone() for pn, p in params.items()}
        score = torch.cat([original[pn].abs().flatten().to(torch.float64) / w[layer_of[pn]] for pn in names])
        zeros = int((score == 0).sum())
        if k_final < zeros:
            raise ValueError(f"amount={amount} is below the model's existing sparsity {zeros / n:.4f}")
        order = torch.argsort(score, stable=True)
        over = torch.zeros(n, dtype=torch.bool)
        over[order[:k_over]] = True  # True = pruned at s + reserve
        was_zero = score == 0
        reservoir = over & ~was_zero
        n_restore = k_over - k_final
        sizes = [params[pn].numel() for pn in names]
        res_masks = {pn: m.reshape(params[pn].shape) for pn, m in zip(names, reservoir.split(sizes))}
        for pn in names:
            params[pn].mul_(~(over.split(sizes)[names.index(pn)].reshape(params[pn].shape)))
    moved = _selection_phase(target, ref, params, res_masks, train, select_steps, select_lr, min_lr_ratio,
                             batch_size, logit_l2, seed) if select_steps > 0 and n_restore > 0 else None
    with torch.no_grad():
        if n_restore > 0:
            rho = torch.cat([torch.full((params[pn].numel(),), 1.0 / w[layer_of[pn]], dtype=torch.float64)
                             for pn in names])
            if moved is not None:
                pri = torch.cat([moved[pn].abs().flatten().to(torch.float64) for pn in names]) * rho
            else:  # no selection phase: restore the reservoir entries of largest SEB score
                pri = score.clone()
            pri = torch.where(reservoir, pri, torch.full_like(pri, -1.0))
            back = torch.zeros(n, dtype=torch.bool)
            back[torch.argsort(pri, descending=True, stable=True)[:n_restore]] = True
        else:
            back = torch.zeros(n, dtype=torch.bool)
        keep = ~over | back
        masks: Masks = {}
        for pn, kp, bk in zip(names, keep.split(sizes), back.split(sizes)):
            p = params[pn]
            kp, bk = kp.reshape(p.shape), bk.reshape(p.shape)
            val = original[pn]
            if restore_value == "trained" and moved is not None:  # an entry that did not move keeps its old value
                val = torch.where(p.detach() != 0, p.detach(), original[pn])
            p.copy_(torch.where(bk, val, original[pn]) * kp)
            masks[pn] = kp.to(p.device)
    return target, masks, _rows(groups, masks, w, spectra)


def _selection_phase(model, ref, params, res_masks, train, steps, lr, min_lr_ratio, batch_size, logit_l2, seed):
    """Train only the reservoir entries (from 0); return their values afterwards (the movement from 0)."""
    X, y = train
    flags = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    live = [(pn, p) for pn, p in params.items() if bool(res_masks[pn].any())]
    for _, p in live:
        p.requires_grad_(True)
    fmask = {pn: res_masks[pn].to(p.dtype) for pn, p in live}
    frozen = {pn: p.detach().clone() for pn, p in live}
    hooks = [p.register_hook(lambda g, m=fmask[pn]: g * m) for pn, p in live]
    opt = torch.optim.AdamW([p for _, p in live], lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    try:
        perm = torch.randperm(X.shape[0], generator=gen)
        pos = 0
        for step in range(steps):
            if pos + batch_size > X.shape[0]:
                perm, pos = torch.randperm(X.shape[0], generator=gen), 0
            idx = perm[pos:pos + batch_size]
            pos += batch_size
            f = step / max(1, steps - 1)
            for g in opt.param_groups:
                g["lr"] = lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * f)))
            out = model(X[idx])
            loss = F.cross_entropy(out, y[idx])
            if ref is not None:
                with torch.no_grad():
                    r = ref(X[idx])
                loss = loss + logit_l2 * F.mse_loss(out, r)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():  # entries outside the reservoir keep their values exactly
                for pn, p in live:
                    p.copy_(torch.where(res_masks[pn], p, frozen[pn]))
    finally:
        for h in hooks:
            h.remove()
        for p in model.parameters():
            p.requires_grad_(flags[id(p)])
        model.train(was)
    with torch.no_grad():
        return {pn: (p.detach() * fmask[pn]).clone() if pn in fmask else torch.zeros_like(p)
                for pn, p in params.items()}


def hybrid_prune(model: nn.Module, amount: float, train, *, switch: float = HYBRID_SWITCH,
                 layers: Iterable[str] | None = None, inplace: bool = False,
                 **ser_kwargs) -> tuple[nn.Module, Masks, list[BudgetWeightRow]]:
    """Hybrid Magnitude-SER: global magnitude pruning to ``min(amount, switch)``, then :func:`ser_prune` to ``amount``.

    ``switch`` (0.20) is a fraction in [0, 1]; the other keywords go to :func:`ser_prune`.
    """
    _check_model(model)
    amount = _check_amount(amount)
    if isinstance(switch, bool) or not isinstance(switch, (int, float)) or not 0 <= switch <= 1:
        raise ValueError(f"switch must be a fraction in [0, 1], got {switch!r}")
    target, masks = magnitude_prune(model, amount=min(amount, switch), layers=layers, inplace=inplace)
    if amount <= switch:
        spectra = layer_spectra(target, layers)
        return target, masks, _rows(_groups(target, layers), masks, {}, spectra)
    return ser_prune(target, amount, train, layers=layers, inplace=True, **ser_kwargs)
