r"""Seed paper 2's Algorithm C: sparsify each layer's singular vectors below a threshold, then recompose.

(papers.md 2.2.) :func:`sparsify_singular_vectors` zeroes the small entries of :math:`U` and :math:`V` in
:math:`W = U \Sigma V^T` with a threshold that is largest for singular values far below the BEMA edge;
:func:`paper_theta` is the seed code's scale. The cycle driver (:mod:`prune.methods.mp_cycles`) runs it on
even cycles.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import nn

from ..layers import FactorizedConv2d, FactorizedLinear
from ..masks import _check_model, prunable_weights

__all__ = ["SEED_THETA_SCALE", "paper_theta", "SVSparsifyRow", "sparsify_singular_vectors"]

SEED_THETA_SCALE = 750 * 1.5e-8  # theta = 750 * 1.5e-8 * r_i * N * M in the seed's prune.py (papers.md 2.2)


def paper_theta(reduction: float, N: int, M: int) -> float:
    r"""The seed code's Algorithm-C scale :math:`\theta = 750 \cdot 1.5\times10^{-8}\, r\, N M` (papers.md 2.2)."""
    return SEED_THETA_SCALE * float(reduction) * N * M


@dataclass
class SVSparsifyRow:
    """What Algorithm C did to one layer."""

    name: str
    kind: str
    N: int
    M: int
    rank: int
    sv_edge: float
    theta: float
    u_zeroed: int  # entries of U (N x r) set to 0
    v_zeroed: int  # entries of V (M x r) set to 0
    rel_change: float  # ||W' - W||_F / ||W||_F
    action: str  # "sparsified" (dense), "sparsified-factors" (factorised), "skipped-sparse-factors", "nofit" (BEMA could not fit: floor threshold only)

    def as_dict(self) -> dict:
        return asdict(self)


def _check_ab(alpha: float, beta: float) -> None:
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 1/2), got {alpha!r}")
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must lie in (0, 1), got {beta!r}")


def _fit_or_none(eigs, N: int, M: int, alpha: float, beta: float):
    from theory import fit_eigenvalues

    try:
        return fit_eigenvalues(eigs, p=min(N, M), n=max(N, M), alpha=alpha, beta=beta)
    except ValueError:
        return None  # too few eigenvalues in BEMA's window (tiny or rank-deficient layer)


def sparsify_singular_vectors(model: nn.Module, theta, *, alpha: float = 0.25, beta: float = 0.8,
                              keep_zeros: bool = True, layers: Iterable[str] | None = None,
                              inplace: bool = False, progress: bool = False) -> tuple[nn.Module, list[SVSparsifyRow]]:
    r"""Seed paper 2's Algorithm C: zero the small entries of each layer's singular vectors, then recompose.

    For each layer :math:`W = U \Sigma V^T` (thin SVD, s descending, BEMA edge :math:`s_+`), and every i,

    .. math:: T_i = \theta \max\{1/750,\; (1 - s_i / s_+)_+^{30}\},

    entries of :math:`U_{:,i}` and :math:`V_{:,i}` with magnitude :math:`< T_i` are set to 0 and
    :math:`W' = U' \Sigma V'^T` (papers.md 2.2). A dense layer stays dense (W' is written back; with
    ``keep_zeros`` its previous exact zeros are restored, so masks stay frozen across cycles). A factorised
    layer keeps its two thin factors :math:`U'\Sigma^{1/2}` and :math:`\Sigma^{1/2}V'^T`, so the zeroed
    singular-vector entries become stored zeros; with ``keep_zeros`` a factorised layer whose factors already
    hold zeros is left alone (action ``"skipped-sparse-factors"``), because the new SVD basis could not keep
    them. A layer whose spectrum BEMA cannot fit (too small a window) gets only the floor
    :math:`\theta/750` (action ``"nofit"``).

    Parameters
    ----------
    model : nn.Module
    theta : float > 0 or callable (N, M) -> float
        The scale; the seed's is :func:`paper_theta` (``lambda N, M: paper_theta(r, N, M)``).
    alpha, beta : float
        BEMA trimming and Tracy-Widom level (the seed's ViT script: 0.25 and 0.8).
    keep_zeros : bool
        Restore the exact zeros a dense layer had before (default True).
    layers, inplace, progress
        As in :func:`prune.methods.magnitude.magnitude_prune`; ``progress`` shows a tqdm bar over layers.

    Returns
    -------
    (nn.Module, list[SVSparsifyRow])
    """
    from ..layers import from_factors, matrix_shape, set_submodule
    from .svd import layer_svd

    _check_model(model)
    _check_ab(alpha, beta)
    if not callable(theta):
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not (math.isfinite(theta) and theta > 0):
            raise ValueError(f"theta must be a finite number > 0 or a callable (N, M) -> float, got {theta!r}")
    target = model if inplace else copy.deepcopy(model)
    items = prunable_weights(target, layers)
    lnames = list(dict.fromkeys(l for _, l, _ in items))
    mods = dict(target.named_modules())
    it = lnames
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(lnames, desc="algorithm C", unit="layer")
    rows = []
    for lname in it:
        module = mods[lname]
        N, M = matrix_shape(module)
        th = float(theta(N, M)) if callable(theta) else float(theta)
        if not (math.isfinite(th) and th > 0):
            raise ValueError(f"theta({N}, {M}) must be a finite number > 0, got {th!r}")
        fact = isinstance(module, (FactorizedLinear, FactorizedConv2d))
        if fact and keep_zeros and not all(bool((t != 0).all()) for t in (module.first.weight, module.second.weight)):
            # new factors come from a new SVD basis: their old zeros could not be kept, so the layer is left alone
            rows.append(SVSparsifyRow(name=lname, kind=type(module).__name__, N=N, M=M, rank=module.rank,
                                      sv_edge=math.nan, theta=th, u_zeroed=0, v_zeroed=0, rel_change=0.0,
                                      action="skipped-sparse-factors"))
            continue
        svd = layer_svd(module)
        rep = _fit_or_none(svd.eigenvalues(), N, M, alpha, beta)
        s = svd.s
        if rep is not None and rep.sv_edge > 0:
            far = torch.clamp(1.0 - s / rep.sv_edge, min=0.0) ** 30
            edge = rep.sv_edge
        else:
            far, edge = torch.zeros_like(s), math.nan
        T = th * torch.clamp(far, min=1.0 / 750.0)
        U = torch.where(svd.U.abs() < T[None, :], 0.0, svd.U)
        Vh = torch.where(svd.Vh.abs() < T[:, None], 0.0, svd.Vh)
        W_old = (svd.U * s) @ svd.Vh
        W_new = (U * s) @ Vh
        with torch.no_grad():
            if fact:
                r = s.sqrt()
                dt = module.first.weight.dtype
                new = from_factors(module, (U * r).to(dt), (r[:, None] * Vh).to(dt))
                new.train(module.training)
                set_submodule(target, lname, new)
                action = "sparsified-factors"
            else:
                W = module.weight
                flat = W.reshape(N, M)
                upd = W_new.to(W.dtype)
                if keep_zeros:
                    upd = upd * (flat != 0)
                W.copy_(upd.reshape(W.shape))
                action = "sparsified"
        nrm = float(torch.linalg.norm(W_old))
        rows.append(SVSparsifyRow(
            name=lname, kind=type(module).__name__, N=N, M=M, rank=svd.rank, sv_edge=float(edge), theta=th,
            u_zeroed=int((U == 0).sum() - (svd.U == 0).sum()), v_zeroed=int((Vh == 0).sum() - (svd.Vh == 0).sum()),
            rel_change=float(torch.linalg.norm(W_new - W_old)) / nrm if nrm > 0 else 0.0,
            action=action if rep is not None else "nofit"))
    return target, rows
