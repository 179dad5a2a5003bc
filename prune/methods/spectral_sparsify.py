r"""Spectrum-preserving element-wise sparsification (seed paper 3's framing; Drineas-Zouzias style sampling).

Seed paper 3 (Yao, Yu, Koutis, arXiv 2307.08982) frames weight pruning as a matrix sparsification that should
preserve the spectrum; its own algorithm could not be read (papers.md 3). We implement the classical
element-wise spectral sparsifier it builds on, in its hybrid form: with target density d (a fraction of the
entries of W), each entry is kept independently with probability

.. math:: p_{ij} = \min\{1,\; s\, w_{ij}^2\},

the scale s chosen so that :math:`\sum_{ij} p_{ij} = d\,NM` (the expected number of kept entries), and a kept
entry is rescaled to :math:`w_{ij}/p_{ij}`. The entries with :math:`p_{ij} = 1` are the largest ones, kept
deterministically and unchanged; the rest are importance-sampled proportionally to their squared magnitude.
The estimator is unbiased, :math:`E[\tilde W] = W`, with entry variance :math:`w_{ij}^2(1-p_{ij})/p_{ij}`, and
the error :math:`\tilde W - W` is a random matrix of independent zero-mean entries, whose spectral norm
concentrates like :math:`\max(\text{row/column norms})` (Drineas and Zouzias 2011, Achlioptas and McSherry
2007). Plain magnitude thresholding instead drops every small entry: it minimises the Frobenius error, but its
error :math:`-W \odot 1[|W| < t]` is deterministic and can be coherent (for instance a constant offset
shared by many small entries), in which case its spectral norm is of the order of its Frobenius norm.

What to expect (measured, see ``tests/test_spectral_sparsify.py`` and ``benchmarks/prune_models.py``): the
sampler wins in spectral error when the small entries carry a coherent (low-rank) part; on i.i.d.-like
matrices, and typically on trained weights, magnitude thresholding has the smaller spectral error at equal
sparsity because the sampler's rescaling inflates the kept small entries. The sampler's realised number of
non-zeros is random (mean d NM, variance :math:`\sum p(1-p)`).

References
----------
P. Drineas and A. Zouzias, "A note on element-wise matrix sparsification via a matrix-valued Bernstein
inequality", Inform. Process. Lett. 111 (2011), arXiv:1006.0407.
D. Achlioptas and F. McSherry, "Fast computation of low-rank matrix approximations", J. ACM 54 (2007).
"""
from __future__ import annotations

import copy
import math
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..masks import Masks, _check_amount, _check_model, prunable_weights
from .magnitude import magnitude_prune

__all__ = [
    "keep_probabilities",
    "sparsify_matrix",
    "spectral_sparsify",
    "spectral_error",
    "singular_value_error",
    "sparsification_curve",
]


def _generator(seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    return torch.Generator().manual_seed(int(seed))


def _check_matrix(W, name: str = "W") -> torch.Tensor:
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(W).__name__}")
    if W.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(W.shape)}")
    if not W.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {W.dtype}")
    if not bool(torch.isfinite(W).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return W


def keep_probabilities(W: torch.Tensor, density: float, power: float = 2.0) -> torch.Tensor:
    r"""The keep probabilities :math:`p_{ij} = \min(1, s\,|w_{ij}|^q)` with :math:`\sum p_{ij} = d\cdot` numel.

    q = ``power``: 2 is Drineas-Zouzias' squared-magnitude sampling (the default), 1 the L1 sampling of
    Achlioptas-McSherry / Kundu-Drineas.

    Exact water-filling: with the squared entries sorted descending, :math:`v_1 \ge v_2 \ge \dots`, the
    k largest get p = 1 and the rest :math:`s v_j` with :math:`s = (d\,n - k)/\sum_{j>k} v_j`, k the smallest
    count with :math:`s\, v_{k+1} \le 1`. If W has at most d n non-zeros every non-zero gets p = 1.
    Works on any shape (element-wise); float64 result.

    Raises
    ------
    ValueError, TypeError
        ``density`` outside [0, 1]; W empty, non-float or non-finite.
    """
    W = _check_matrix(W)
    d = _check_amount(density)
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not (math.isfinite(power) and power > 0):
        raise ValueError(f"power must be a finite number > 0, got {power!r}")
    v = W.detach().to(torch.float64).abs().flatten() ** power
    n = v.numel()
    m = d * n
    nnz = int(torch.count_nonzero(v))
    if nnz <= m:
        return (v > 0).to(torch.float64).reshape(W.shape)
    if m == 0:
        return torch.zeros_like(v).reshape(W.shape)
    vs, _ = torch.sort(v, descending=True)
    tail = torch.flip(torch.cumsum(torch.flip(vs, [0]), 0), [0])  # tail[k] = sum_{j >= k} vs[j]
    ks = torch.arange(int(math.ceil(m)), dtype=torch.float64)
    kk = ks.long()
    ok = (m - ks) * vs[kk] <= tail[kk] * (1 + 1e-12)
    k = int(torch.nonzero(ok)[0]) if bool(ok.any()) else int(math.ceil(m)) - 1
    s = (m - k) / float(tail[k])
    return torch.clamp(s * v, max=1.0).reshape(W.shape)


def sparsify_matrix(W: torch.Tensor, density: float, *, power: float = 2.0, seed=0) -> torch.Tensor:
    r"""One draw of the spectrum-preserving sparsifier: keep :math:`w_{ij}` with probability :math:`p_{ij}`
    (:func:`keep_probabilities`), rescaled to :math:`w_{ij}/p_{ij}`; unbiased, :math:`E[\tilde W] = W`.

    Parameters
    ----------
    W : torch.Tensor
        Any shape, floating point.
    density : float in [0, 1]
        Expected fraction of entries kept.
    power : float
        q in :math:`p \propto |w|^q` (:func:`keep_probabilities`).
    seed : int or torch.Generator
        The sampling randomness (no global RNG state is read).

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as W.
    """
    P = keep_probabilities(W, density, power)
    g = _generator(seed)
    u = torch.rand(P.shape, generator=g, dtype=torch.float64)
    keep = u < P
    out = torch.where(keep, W.detach().to(torch.float64) / torch.where(keep, P, torch.ones_like(P)), 0.0)
    return out.to(dtype=W.dtype, device=W.device)


def spectral_sparsify(model: nn.Module, *, amount: float, scope: str = "layer", layers: Iterable[str] | None = None,
                      power: float = 2.0, seed=0, inplace: bool = False) -> tuple[nn.Module, Masks]:
    r"""Apply the spectrum-preserving sparsifier to the prunable weights of a model.

    ``amount`` is the target sparsity (expected fraction of zeros): each weight tensor (``scope="layer"``)
    or all of them pooled with one scale s (``scope="global"``) is sparsified by :func:`sparsify_matrix` at
    density 1 - ``amount``. Conv2d kernels are treated entry-wise (the im2col matrix has the same entries);
    a factorised layer's two factors are two tensors. Kept entries are rescaled by 1/p (unbiased).
    ``power`` is q in :math:`p \propto |w|^q`; ``seed`` an int or a ``torch.Generator``.

    Returns
    -------
    (nn.Module, dict)
        The model (a copy unless ``inplace``) and its masks (``True`` = non-zero), for :func:`prune.masks.freeze_masks`.
    """
    _check_model(model)
    amount = _check_amount(amount)
    if scope not in ("global", "layer"):
        raise ValueError(f'scope must be "global" or "layer", got {scope!r}')
    g = _generator(seed)
    target = model if inplace else copy.deepcopy(model)
    items = prunable_weights(target, layers)
    masks: Masks = {}
    with torch.no_grad():
        for name, _, p in items:
            if not bool(torch.isfinite(p).all()):
                raise ValueError(f"parameter {name!r} contains NaN or Inf")
        if scope == "layer":
            for name, _, p in items:
                p.copy_(sparsify_matrix(p, 1.0 - amount, power=power, seed=g))
                masks[name] = p != 0
        else:
            flat = torch.cat([p.detach().flatten().to(torch.float64) for _, _, p in items])
            new = sparsify_matrix(flat, 1.0 - amount, power=power, seed=g)
            start = 0
            for name, _, p in items:
                p.copy_(new[start:start + p.numel()].reshape(p.shape).to(p.dtype))
                start += p.numel()
                masks[name] = p != 0
    return target, masks


def _as_matrix(W: torch.Tensor) -> torch.Tensor:
    return W.reshape(W.shape[0], -1) if W.ndim != 2 else W


def spectral_error(W: torch.Tensor, W_sparse: torch.Tensor) -> float:
    r"""Relative spectral-norm error :math:`\|W - \tilde W\|_2 / \|W\|_2` (a conv kernel as its im2col matrix)."""
    W, Ws = _check_matrix(W), _check_matrix(W_sparse, "W_sparse")
    if W.shape != Ws.shape:
        raise ValueError(f"W and W_sparse must have the same shape, got {tuple(W.shape)} and {tuple(Ws.shape)}")
    A, B = _as_matrix(W.detach().double()), _as_matrix(Ws.detach().double())
    den = float(torch.linalg.matrix_norm(A, ord=2))
    if den == 0:
        raise ValueError("W is the zero matrix: the relative error is undefined")
    return float(torch.linalg.matrix_norm(A - B, ord=2)) / den


def singular_value_error(W: torch.Tensor, W_sparse: torch.Tensor, k: int | None = None) -> float:
    r""":math:`\max_{i \le k} |s_i(\tilde W) - s_i(W)| / s_1(W)`, the top-k singular values' worst relative shift
    (all of them when k is None). By Weyl's inequality it is at most :func:`spectral_error`."""
    W, Ws = _check_matrix(W), _check_matrix(W_sparse, "W_sparse")
    if W.shape != Ws.shape:
        raise ValueError(f"W and W_sparse must have the same shape, got {tuple(W.shape)} and {tuple(Ws.shape)}")
    s = torch.linalg.svdvals(_as_matrix(W.detach().double()))
    t = torch.linalg.svdvals(_as_matrix(Ws.detach().double()))
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1 or None, got {k!r}")
        s, t = s[:k], t[:k]
    if float(s[0]) == 0:
        raise ValueError("W is the zero matrix: the relative error is undefined")
    return float((s - t).abs().max() / s[0])


def sparsification_curve(W: torch.Tensor, sparsities, *, seeds: Iterable[int] = (0,), top_k: int = 10,
                         powers: Iterable[float] = (2.0,)) -> list[dict]:
    r"""Spectral and singular-value errors of magnitude thresholding and of the sampler against sparsity.

    For each target sparsity a (and each seed for the sampler) one row: method, target sparsity, realised
    sparsity, :func:`spectral_error`, :func:`singular_value_error` over the top ``top_k`` values, and the
    relative Frobenius error. Magnitude thresholding zeroes exactly round(a n) entries.
    """
    W = _check_matrix(W)
    rows = []
    fro = float(torch.linalg.norm(W.double()))
    for a in sparsities:
        a = _check_amount(a)
        lin = nn.Linear(1, 1, bias=False)
        lin.weight = nn.Parameter(W.detach().clone(), requires_grad=False)
        Wm = magnitude_prune(lin, amount=a)[0].weight.detach()
        cands = [("magnitude", None, Wm)] + [(f"spectral_q{q:g}", s, sparsify_matrix(W, 1.0 - a, power=q, seed=s))
                                              for q in powers for s in seeds]
        for method, s, Ws in cands:
            rows.append(dict(method=method, seed=-1 if s is None else int(s), target_sparsity=a,
                             sparsity=1.0 - int(torch.count_nonzero(Ws)) / W.numel(),
                             spectral_error=spectral_error(W, Ws),
                             sv_error=singular_value_error(W, Ws, min(top_k, min(_as_matrix(W).shape))),
                             frobenius_error=float(torch.linalg.norm((W - Ws).double())) / fro))
    return rows
