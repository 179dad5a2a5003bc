r"""Seed paper 2's MP-weighted magnitude budget (Algorithm D) and its pruning cycles ("Algorithm 3").

(papers.md 2.2.) :func:`mp_budget` is the per-layer budget :math:`c = ((1-\mu)\gamma_b)^{1.5/i}` from a layer's
MP-fit error and bulk fraction; :func:`mp_magnitude_prune` removes that share of each layer's smallest weights;
:func:`rmt_cycle_prune` repeats singular-vector sparsification (:mod:`prune.methods.singular_vectors`, even
cycles), the budgeted magnitude step and the data-free regularisation phase (:mod:`prune.regularize`) until
a target sparsity is reached.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import nn

from ..masks import (Masks, _check_amount, _check_model, _smallest_mask, global_sparsity, masks_from_model,
                     prunable_weights)
from ..params import count_nonzero
from ..regularize import regularize
from .singular_vectors import SEED_THETA_SCALE, _check_ab, sparsify_singular_vectors

__all__ = ["BudgetRow", "mp_budget", "mp_magnitude_prune", "CYCLE_SCHEDULES", "CycleRecord", "rmt_cycle_prune"]


@dataclass
class BudgetRow:
    """What Algorithm D with the MP-weighted budget did to one layer."""

    name: str
    kind: str
    N: int
    M: int
    mp_fit_error: float
    bulk_fraction: float
    c: float  # ((1 - mu) * bulk_fraction) ** (exponent / cycle)
    nonzero_before: int
    removed: int
    threshold: float  # the largest |w| removed (0 if none)

    def as_dict(self) -> dict:
        return asdict(self)


def mp_budget(mp_fit_error: float, bulk_fraction: float, cycle: int, exponent: float = 1.5) -> float:
    r"""Seed paper 2's per-layer budget :math:`c = ((1-\mu)\,\gamma_b)^{1.5/i}` (papers.md 2.2), in [0, 1].

    ``bulk_fraction`` :math:`\gamma_b` is a fraction in [0, 1] (the seed code divides its percentage by 100);
    a layer that fits MP well (small :math:`\mu`) with a large bulk gets c near 1 (pruned most).
    """
    if not (math.isfinite(mp_fit_error) and 0.0 <= mp_fit_error <= 1.0):
        raise ValueError(f"mp_fit_error must lie in [0, 1], got {mp_fit_error!r}")
    if not (math.isfinite(bulk_fraction) and 0.0 <= bulk_fraction <= 1.0):
        raise ValueError(f"bulk_fraction must lie in [0, 1], got {bulk_fraction!r}")
    if isinstance(cycle, bool) or not isinstance(cycle, int) or cycle < 1:
        raise ValueError(f"cycle must be an integer >= 1, got {cycle!r}")
    if not exponent > 0:
        raise ValueError(f"exponent must be > 0, got {exponent!r}")
    return float(((1.0 - mp_fit_error) * bulk_fraction) ** (exponent / cycle))


def mp_magnitude_prune(model: nn.Module, reduction: float, *, cycle: int = 1, exponent: float = 1.5,
                       alpha: float = 0.25, beta: float = 0.8, max_remove: int | None = None,
                       layers: Iterable[str] | None = None, inplace: bool = False,
                       progress: bool = False) -> tuple[nn.Module, Masks, list[BudgetRow]]:
    r"""Seed paper 2's Algorithm D with the MP-weighted per-layer budget (papers.md 2.2, step 3b).

    Each layer's spectrum is fitted (BEMA edge, MP-fit error :math:`\mu`, bulk fraction :math:`\gamma_b`
    of its matrix, theory.fit_spectrum) and its budget is :math:`c = ((1-\mu)\gamma_b)^{e/i}`
    (:func:`mp_budget`, e = ``exponent``, i = ``cycle``). Then :math:`\lceil c\, r\, n_{nz} \rceil` of its
    :math:`n_{nz}` non-zero weights, the smallest in magnitude, are zeroed (r = ``reduction``). The seed
    reaches this count by raising a threshold in steps (``prune |w| < max(4 c pf, 3 pf)``, ``pf += 2e-5``),
    which overshoots by up to one step; here the count is met exactly, which is the limit of that loop.
    A factorised layer's budget applies to its two factors pooled. A layer BEMA cannot fit gets c = 0.

    Parameters
    ----------
    model : nn.Module
    reduction : float in [0, 1]
        r_i, the cycle's target fraction (the seed: 0.06 * 1.02**i).
    cycle : int >= 1
        i; later cycles flatten the budgets towards 1.
    exponent : float
        1.5 in the seed.
    alpha, beta : float
        BEMA parameters (the seed's ViT script: 0.25, 0.8).
    max_remove : int, optional
        Cap on the entries removed over all layers; the per-layer counts are scaled down
        proportionally when their sum exceeds it (the cycle driver uses it to stop at its target).
    layers, inplace, progress
        As in :func:`prune.methods.magnitude.magnitude_prune`.

    Returns
    -------
    (nn.Module, dict, list[BudgetRow])
        The model, the masks of all its selected prunable weights (``True`` = non-zero), one row per layer.
    """
    from theory import fit_spectrum

    from ..layers import matrix_shape, weight_matrix

    _check_model(model)
    _check_amount(reduction)
    _check_ab(alpha, beta)
    if max_remove is not None and (isinstance(max_remove, bool) or not isinstance(max_remove, int) or max_remove < 0):
        raise ValueError(f"max_remove must be an integer >= 0 or None, got {max_remove!r}")
    mp_budget(0.0, 1.0, cycle, exponent)  # validates cycle and exponent
    target = model if inplace else copy.deepcopy(model)
    items = prunable_weights(target, layers)
    mods = dict(target.named_modules())
    by_layer: dict[str, list] = {}
    for pname, lname, p in items:
        by_layer.setdefault(lname, []).append((pname, p))
    it = list(by_layer)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="algorithm D", unit="layer")
    plan = []
    with torch.no_grad():
        for lname in it:
            module = mods[lname]
            N, M = matrix_shape(module)
            for pname, p in by_layer[lname]:
                if not bool(torch.isfinite(p).all()):
                    raise ValueError(f"parameter {pname!r} contains NaN or Inf")
            try:
                rep = fit_spectrum(weight_matrix(module).detach(), alpha=alpha, beta=beta)
                mu, gb = float(rep.mp_fit_error), float(rep.bulk_fraction)
                c = mp_budget(min(max(mu, 0.0), 1.0), gb, cycle, exponent)
            except ValueError:
                mu, gb, c = math.nan, math.nan, 0.0
            nnz = sum(int(torch.count_nonzero(p)) for _, p in by_layer[lname])
            plan.append([lname, module, N, M, mu, gb, c, nnz, min(nnz, math.ceil(c * reduction * nnz))])
        want = sum(row[-1] for row in plan)
        if max_remove is not None and want > max_remove:
            # scale down proportionally; the units lost to flooring go to the largest remainders
            exact = [row[-1] * max_remove / want for row in plan]
            for row, e in zip(plan, exact):
                row[-1] = int(math.floor(e))
            short = max_remove - sum(row[-1] for row in plan)
            for j in sorted(range(len(plan)), key=lambda j: exact[j] - plan[j][-1], reverse=True)[:short]:
                plan[j][-1] += 1
        masks: Masks = {}
        rows = []
        for lname, module, N, M, mu, gb, c, nnz, k in plan:
            tensors = by_layer[lname]
            flat = torch.cat([p.detach().abs().flatten().to(torch.float64) for _, p in tensors])
            zeros = int((flat == 0).sum())
            keep = _smallest_mask(flat, zeros + k)
            thr = float(flat[~keep].max()) if k > 0 else 0.0
            start = 0
            for pname, p in tensors:
                m = keep[start:start + p.numel()].reshape(p.shape).to(p.device)
                start += p.numel()
                p.mul_(m)
                masks[pname] = m
            rows.append(BudgetRow(name=lname, kind=type(module).__name__, N=N, M=M, mp_fit_error=mu,
                                  bulk_fraction=gb, c=c, nonzero_before=nnz, removed=k, threshold=thr))
    return target, masks, rows


CYCLE_SCHEDULES = {
    "paper": lambda i: 5000 + 1000 * (i - 1),  # the seed's regularisation steps in cycle i (papers.md 2.2)
    "fast": lambda i: 0,  # no regularisation phase: the cheapest schedule reaching the same result (see rmt_cycle_prune)
}


@dataclass
class CycleRecord:
    """One cycle of :func:`rmt_cycle_prune`."""

    cycle: int
    reduction: float
    sv_sparsified: bool
    removed: int
    sparsity: float  # of the prunable weights, after the cycle
    model_nonzero: int
    reg_steps: int
    reg_loss: float
    metric: float  # eval_fn(model) after the cycle, NaN without eval_fn
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def rmt_cycle_prune(model: nn.Module, target_sparsity: float, *, max_cycles: int = 34,
                    base_reduction: float = 0.06, growth: float = 1.02, sv_sparsify: bool = True,
                    theta_scale: float = SEED_THETA_SCALE, reg_steps=None, reg_kwargs: dict | None = None,
                    alpha: float = 0.25, beta: float = 0.8, eval_fn=None, layers: Iterable[str] | None = None,
                    start_cycle: int = 1, inplace: bool = False, progress: bool = True,
                    schedule: str = "fast") -> tuple[nn.Module, Masks, list[CycleRecord]]:
    r"""Seed paper 2's "Algorithm 3" (papers.md 2.2), run until the prunable weights reach ``target_sparsity``.

    Cycle i = 1, 2, ... with :math:`r_i` = ``base_reduction`` * ``growth`` ** i:

    (a) on even cycles, Algorithm C (:func:`sparsify_singular_vectors`) with
        :math:`\theta = ` ``theta_scale`` :math:`\cdot r_i N M`;
    (b) Algorithm D with the MP-weighted budget (:func:`mp_magnitude_prune`); the last cycle's removals are
        scaled down so that the target is met, not overshot;
    (c) the data-free regularisation phase (:func:`prune.regularize.regularize`) for ``reg_steps(i)`` AdamW
        steps, with :math:`\kappa_\ell` from each layer's MP-fit error, pruned weights frozen;
    (d) ``eval_fn(model)`` if given.

    Stops as soon as the sparsity reaches the target, or after ``max_cycles`` (the history then shows the
    sparsity reached; nothing is hidden). ``start_cycle`` continues a schedule (for a sweep over increasing
    targets, pass the previous run's last cycle + 1).

    ``schedule`` names the regularisation schedule used when ``reg_steps`` is None: ``"paper"`` is the seed's
    ``reg_steps = 5000 + 1000 (i - 1)`` AdamW steps per cycle at lr 5e-8; ``"fast"`` (the default) runs none.
    With the seed's constants Adam moves a weight by at most lr x steps per cycle (5e-8 x 15 000 = 7.5e-4 at
    cycle 11), and measured on a pretrained ViT at 50 % sparsity (issue 14) the paper schedule took 551 s
    for the same accuracy as 0.27 s without it; tests/test_sparsify.py checks that both schedules give the same
    masks on a small model. ``reg_steps`` (an int or a callable of the cycle) overrides ``schedule``.

    Returns
    -------
    (nn.Module, dict, list[CycleRecord])
        The pruned model (a copy unless ``inplace``), its masks, one record per cycle.
    """
    import time

    _check_model(model)
    target_sparsity = _check_amount(target_sparsity)
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1:
        raise ValueError(f"max_cycles must be an integer >= 1, got {max_cycles!r}")
    if isinstance(start_cycle, bool) or not isinstance(start_cycle, int) or start_cycle < 1:
        raise ValueError(f"start_cycle must be an integer >= 1, got {start_cycle!r}")
    if not 0 < base_reduction <= 1:
        raise ValueError(f"base_reduction must lie in (0, 1], got {base_reduction!r}")
    if not growth > 0:
        raise ValueError(f"growth must be > 0, got {growth!r}")
    if schedule not in CYCLE_SCHEDULES:
        raise ValueError(f"schedule must be one of {tuple(CYCLE_SCHEDULES)}, got {schedule!r}")
    if reg_steps is None:
        reg_steps = CYCLE_SCHEDULES[schedule]
    elif not callable(reg_steps):
        if isinstance(reg_steps, bool) or not isinstance(reg_steps, int) or reg_steps < 0:
            raise ValueError(f"reg_steps must be an integer >= 0, a callable or None, got {reg_steps!r}")
        n_steps = reg_steps
        reg_steps = lambda i: n_steps  # noqa: E731
    target = model if inplace else copy.deepcopy(model)
    items = prunable_weights(target, layers)
    total = sum(p.numel() for _, _, p in items)
    history: list[CycleRecord] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_cycles, desc=f"RMT cycles to sparsity {target_sparsity:.2f}", unit="cycle")
    masks = masks_from_model(target, layers)
    for i in range(start_cycle, start_cycle + max_cycles):
        t0 = time.perf_counter()
        zeros = total - sum(int(torch.count_nonzero(p)) for _, _, p in prunable_weights(target, layers))
        need = int(math.ceil(target_sparsity * total)) - zeros
        if need <= 0:
            break
        r = min(1.0, base_reduction * growth ** i)
        sv = sv_sparsify and i % 2 == 0
        if sv:
            target, _ = sparsify_singular_vectors(target, lambda N, M: theta_scale * r * N * M, alpha=alpha,
                                                  beta=beta, keep_zeros=True, layers=layers, inplace=True)
        target, masks, rows = mp_magnitude_prune(target, r, cycle=i, alpha=alpha, beta=beta, max_remove=need,
                                                 layers=layers, inplace=True)
        mus = {row.name: row.mp_fit_error for row in rows}
        n_reg = int(reg_steps(i))
        reg_loss = math.nan
        if n_reg > 0:
            target, rh = regularize(target, n_reg, mus=mus, cycle=i, masks=masks, layers=layers, inplace=True,
                                    **(reg_kwargs or {}))
            reg_loss = rh["loss_end"]
        sp = global_sparsity(target, layers)
        with torch.no_grad():  # evaluation only: no graph
            metric = float(eval_fn(target)) if eval_fn is not None else math.nan
        history.append(CycleRecord(cycle=i, reduction=r, sv_sparsified=sv, removed=sum(x.removed for x in rows),
                                   sparsity=sp, model_nonzero=count_nonzero(target), reg_steps=n_reg,
                                   reg_loss=reg_loss, metric=metric, seconds=time.perf_counter() - t0))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(sparsity=f"{sp:.3f}", metric=f"{metric:.4g}")
        if sum(x.removed for x in rows) == 0:
            break  # no layer can be pruned further (budgets all 0): the history shows where it stopped
    if bar is not None:
        bar.close()
    return target, masks_from_model(target, layers), history
