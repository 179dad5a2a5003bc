r"""SVD truncation of the layers of a model: at the BEMA edge (MP pruning), at a fixed rank, or by energy.

For each prunable layer (``prune.layers``) with matrix W = U S V^T of shape (N, M):

* **MP truncation** (seed paper 1, Algorithm 1; papers.md 1.2): fit the spectrum
  :math:`\lambda_i = s_i^2 / n` with BEMA, edge :math:`s_+ = \sqrt{n \lambda_+}`, MP-fit error mu; if
  ``fit_cutoff`` is given and :math:`\mu \ge` ``fit_cutoff`` the layer is left alone; otherwise keep the
  :math:`k_{sig} = \#\{s_i > s_+\}` signal values plus :math:`\lfloor f\, k_{bulk} \rfloor` of the
  :math:`k_{bulk} = r - k_{sig}` bulk ones (the largest), r the layer's current rank and f = ``bulk_keep``
  (the training schedule's f(epoch)).
* **fixed rank**: keep min(k, r) values; **energy**: the smallest k with
  :math:`\sum_{i\le k} s_i^2 \ge e \sum_i s_i^2`.

The truncated matrix :math:`U_k S_k V_k^T` is stored as two thin layers when k (N + M) < N M
(:class:`prune.layers.FactorizedLinear` / ``FactorizedConv2d``), otherwise recomposed into a dense layer.
One SVD per layer serves both the spectrum fit and the truncation; a factorised layer's SVD comes
from QR factorisations of its two factors (cost O((N + M) k^2), not O(N M p)).

The seed code counts one value too many as signal (``lt = i - 1``, papers.md 1.2); here
:math:`k_{sig}` is exactly BEMA's spike count, pinned by a test.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from theory import SpectrumReport, fit_eigenvalues

from ..defaults import BEMA_ALPHA, BEMA_BETA
from ..layers import (
    FactorizedConv2d,
    FactorizedLinear,
    factorization_saves,
    from_factors,
    matrix_shape,
    prunable_layers,
    set_submodule,
    stored_parameters,
    with_matrix,
)

__all__ = [
    "LayerCut",
    "default_min_rank",
    "layer_svd",
    "mp_keep_rank",
    "truncate_layer",
    "svd_truncate",
    "mp_truncate",
    "rank_truncate",
    "energy_truncate",
]


@dataclass
class LayerCut:
    """What a truncation did to one layer (one row of the report)."""

    name: str
    kind: str
    N: int
    M: int
    rank_before: int
    rank_after: int
    params_before: int
    params_after: int
    action: str  # "factorized", "recomposed", "unchanged" (nothing to cut), "misfit" (no acceptable MP fit)
    sv_edge: float = math.nan
    n_spikes: int = -1
    bulk_fraction: float = math.nan
    mp_fit_error: float = math.nan
    rel_error: float = 0.0  # ||W - W_k||_F / ||W||_F
    note: str = ""  # why a layer was left alone ("misfit" without a fit: too small, no bulk)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LayerSVD:
    """Thin SVD of a layer's matrix: W = U diag(s) Vh, s descending, only the layer's current rank r values."""

    U: torch.Tensor
    s: torch.Tensor
    Vh: torch.Tensor
    N: int
    M: int

    @property
    def rank(self) -> int:
        return int(self.s.numel())

    def eigenvalues(self) -> np.ndarray:
        """The p = min(N, M) values s_i^2 / n, padded with zeros beyond the current rank."""
        p, n = min(self.N, self.M), max(self.N, self.M)
        lam = np.zeros(p)
        s = self.s.detach().cpu().double().numpy()
        lam[: s.size] = s**2 / n
        return lam


def layer_svd(module: nn.Module) -> LayerSVD:
    """Thin SVD (float64) of a prunable layer's matrix; through QR of the factors for factorised layers."""
    N, M = matrix_shape(module)
    with torch.no_grad():
        # check before the SVD: LAPACK fails on NaN/Inf with a RuntimeError (torch's _LinAlgError)
        factorised = isinstance(module, (FactorizedLinear, FactorizedConv2d))
        for w in (module.first.weight, module.second.weight) if factorised else (module.weight,):
            if not bool(torch.isfinite(w).all()):
                raise ValueError(f"layer weight contains {int((~torch.isfinite(w)).sum())} NaN or Inf value(s) "
                                 f"(matrix {N} x {M})")
        if factorised:
            L = module.second.weight.reshape(N, -1).double()
            R = module.first.weight.reshape(module.rank, -1).double()
            Q1, R1 = torch.linalg.qr(L)
            Q2, R2 = torch.linalg.qr(R.T)
            u, s, vh = torch.linalg.svd(R1 @ R2.T, full_matrices=False)
            U, Vh = Q1 @ u, (Q2 @ vh.T).T
        else:
            W = (module.weight.reshape(N, M) if isinstance(module, nn.Conv2d) else module.weight).double()
            U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"layer matrix contains NaN or Inf (shape {N} x {M})")
    return LayerSVD(U=U, s=s, Vh=Vh, N=N, M=M)


def numerical_rank(svd: LayerSVD, module: nn.Module) -> int:
    r"""Singular values above :math:`s_1 \max(N, M)\, \epsilon` of the layer's dtype (numpy's
    ``matrix_rank`` tolerance): what an earlier truncation left, recomposed or factorised."""
    dtype = (module.second.weight if isinstance(module, (FactorizedLinear, FactorizedConv2d)) else module.weight).dtype
    if svd.rank == 0 or float(svd.s[0]) == 0.0:
        return 0
    tol = float(svd.s[0]) * max(svd.N, svd.M) * torch.finfo(dtype).eps
    return int((svd.s > tol).sum())


def mp_keep_rank(report: SpectrumReport, rank: int, bulk_keep: float) -> int:
    r"""Seed paper 1's kept rank: :math:`k_{sig} + \lfloor f (r - k_{sig}) \rfloor`, f = ``bulk_keep``.

    ``k_sig`` is ``report.n_spikes`` (values strictly above the edge), capped at the current rank r.
    """
    if not 0.0 <= bulk_keep <= 1.0:
        raise ValueError(f"bulk_keep must lie in [0, 1], got {bulk_keep}")
    k_sig = min(report.n_spikes, rank)
    return k_sig + int(math.floor(bulk_keep * (rank - k_sig)))


def truncate_layer(module: nn.Module, svd: LayerSVD, rank: int, factorize: str = "auto") -> nn.Module:
    """A new layer holding the rank-``rank`` truncation of ``module`` (``module`` itself is not changed).

    factorize : "auto" (two thin layers when that stores fewer numbers), "always" or "never".
        Grouped convolutions (groups > 1) cannot be factorised: "auto" recomposes them, "always" raises.
    """
    if factorize not in ("auto", "always", "never"):
        raise ValueError(f'factorize must be "auto", "always" or "never", got {factorize!r}')
    if not 1 <= rank <= svd.rank:
        raise ValueError(f"rank must lie in [1, {svd.rank}], got {rank}")
    U, s, Vh = svd.U[:, :rank], svd.s[:rank], svd.Vh[:rank]
    dtype = (module.second.weight if hasattr(module, "second") else module.weight).dtype
    grouped = isinstance(module, nn.Conv2d) and module.groups != 1
    split = factorize == "always" or (factorize == "auto" and not grouped
                                      and factorization_saves((svd.N, svd.M), rank))
    if split:
        r = s.sqrt()
        return from_factors(module, (U * r).to(dtype), (r[:, None] * Vh).to(dtype))
    return with_matrix(module, ((U * s) @ Vh).to(dtype))


def _stays_dense(model: nn.Module, name: str, module: nn.Module) -> str:
    """Why the layer at ``name`` must stay one dense ``nn.Linear`` (its parent reads its ``.weight``), or ""."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.MultiheadAttention) and child == "out_proj":
        return "nn.MultiheadAttention passes out_proj.weight to F.multi_head_attention_forward"
    if isinstance(parent, nn.TransformerEncoderLayer) and child in ("linear1", "linear2"):
        return "nn.TransformerEncoderLayer's inference fast path reads linear1.weight and linear2.weight"
    return ""


def default_min_rank(model: nn.Module) -> int:
    """The model's output dimension: the output size N of its last prunable layer (in registration order).

    The floor of every SVD truncation unless ``min_rank`` is given (seed paper 1 floors the kept rank at the number
    of classes, papers.md 1.2): a rank below it collapses a classifier (e.g. rank 3 of a 10-class head).
    """
    found = prunable_layers(model)
    if not found:
        raise ValueError(f"model ({type(model).__name__}) has no nn.Linear or nn.Conv2d layer to truncate")
    return int(matrix_shape(found[-1][1])[0])


RankRule = Callable[[str, nn.Module, LayerSVD], "tuple[int, dict]"]


def svd_truncate(model: nn.Module, rule: RankRule, *, layers: Iterable[str] | None = None, inplace: bool = False,
                 factorize: str = "auto", min_rank: int | None = None, progress: bool = False) -> tuple[nn.Module, list[LayerCut]]:
    """Apply a rank rule to every prunable layer (or the named ``layers``); return (model, per-layer report).

    ``rule(name, module, svd)`` returns the rank to keep and a dict of extra report fields; a rank
    >= the layer's current rank leaves the layer unchanged, ``None`` marks it "misfit" (left alone).
    The kept rank is never below ``min_rank``; None (the default) is the model's output dimension
    (:func:`default_min_rank`; seed paper 1 floors it at the number of classes), 1 allows any rank.
    Layers whose parent reads their ``.weight`` itself (``nn.MultiheadAttention.out_proj``,
    ``nn.TransformerEncoderLayer.linear1/linear2``) are recomposed, never factorised.

    ``model`` is deep-copied first unless ``inplace=True``.
    """
    if min_rank is not None and (not isinstance(min_rank, (int, np.integer)) or isinstance(min_rank, bool)
                                 or min_rank < 1):
        raise ValueError(f"min_rank must be an integer >= 1 or None, got {min_rank!r}")
    if factorize not in ("auto", "always", "never"):
        raise ValueError(f'factorize must be "auto", "always" or "never", got {factorize!r}')
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    min_rank = default_min_rank(model) if min_rank is None else int(min_rank)
    target = model if inplace else copy.deepcopy(model)
    found = prunable_layers(target)
    if not found:
        raise ValueError(f"model ({type(model).__name__}) has no nn.Linear or nn.Conv2d layer to truncate")
    aliases: dict[int, list[str]] = {}
    for alias, m in target.named_modules(remove_duplicate=False):
        aliases.setdefault(id(m), []).append(alias)
    if layers is not None:
        wanted = [layers] if isinstance(layers, str) else list(layers)  # one name or several
        names = {n for n, _ in found}
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(f"layers names no prunable layer: {missing}; prunable layers are {sorted(names)}")
        found = [(n, m) for n, m in found if n in set(wanted)]
    iterator = found
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(found, desc="truncating", unit="layer")
    cuts: list[LayerCut] = []
    for name, module in iterator:
        try:
            svd = layer_svd(module)
        except ValueError as err:
            raise ValueError(f"layer {name!r}: {err}") from err
        rank, extra = rule(name, module, svd)
        before = stored_parameters(module)
        kind = type(module).__name__
        common = dict(name=name, kind=kind, N=svd.N, M=svd.M, rank_before=svd.rank, params_before=before, **extra)
        if rank is None:
            cuts.append(LayerCut(rank_after=svd.rank, params_after=before, action="misfit", **common))
            continue
        rank = max(min_rank, int(rank))
        if rank >= svd.rank:
            cuts.append(LayerCut(rank_after=svd.rank, params_after=before, action="unchanged", **common))
            continue
        reason = _stays_dense(target, name, module)
        if reason and factorize == "always":
            raise ValueError(f'factorize="always" cannot split layer {name!r}: {reason}; use "auto" or "never"')
        new = truncate_layer(module, svd, rank, factorize="never" if reason else factorize)
        for alias in aliases.get(id(module), [name]):  # a layer registered under several names stays shared
            set_submodule(target, alias, new)
        total = float((svd.s**2).sum())
        rel = math.sqrt(float((svd.s[rank:] ** 2).sum()) / total) if total > 0 else 0.0
        action = "factorized" if isinstance(new, (FactorizedLinear, FactorizedConv2d)) else "recomposed"
        cuts.append(LayerCut(rank_after=rank, params_after=stored_parameters(new), action=action, rel_error=rel,
                             **common))
    return target, cuts


def _check_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")


def _spectrum_fields(rep: SpectrumReport) -> dict:
    return dict(sv_edge=rep.sv_edge, n_spikes=rep.n_spikes, bulk_fraction=rep.bulk_fraction,
                mp_fit_error=rep.mp_fit_error)


def mp_truncate(model: nn.Module, *, bulk_keep: float = 0.0, alpha: float = BEMA_ALPHA, beta: float = BEMA_BETA,
                fit_cutoff: float | None = None, **kwargs) -> tuple[nn.Module, list[LayerCut]]:
    r"""MP-SVD truncation at the BEMA edge (seed paper 1, Algorithm 1).

    Keeps :math:`k_{sig} + \lfloor f (r - k_{sig}) \rfloor` singular values per layer
    (:func:`mp_keep_rank`), f = ``bulk_keep``; layers whose MP-fit error is ``>= fit_cutoff`` are left
    alone (``fit_cutoff=None`` accepts every layer, like the seed code's cutoff 1), and so are layers
    BEMA cannot fit (p too small for its window, or a zero central window, e.g. a layer already cut
    below alpha p): all are reported ``action="misfit"``, the latter with a ``note``.

    A layer cut here remembers its fit's singular-value edge (attribute ``rmt_sv_edge``; not saved by
    :mod:`prune.io`). A later call counts as signal at least the values above that edge: the censored refit of a
    layer that holds only spikes sees no bulk (its observed window values are former spikes, which BEMA then takes
    for the bulk), so without the memory a second ``mp_truncate(bulk_keep=0)`` would cut spikes again. With it the
    second call cuts nothing, and ``n_spikes`` of :func:`prune.analysis.analyze` (same alpha, beta) is the rank the
    first keeps (at least ``min_rank``).

    Parameters
    ----------
    model : nn.Module
        Any module; its Linear / Conv2d / factorised layers are truncated.
    bulk_keep : float in [0, 1]
        Fraction of the bulk (sub-edge) singular values kept, the largest first.
    alpha, beta : float
        BEMA trimming and Tracy-Widom level; default :data:`prune.defaults.BEMA_ALPHA` / ``BEMA_BETA`` (0.25, 0.1,
        papers.md 1.3), the same as :func:`prune.analysis.analyze`'s.
    fit_cutoff : float or None
        MP-fit error cutoff (papers.md 0.3).
    **kwargs
        ``layers``, ``inplace``, ``factorize``, ``min_rank``, ``progress`` of :func:`svd_truncate`.

    Returns
    -------
    (nn.Module, list[LayerCut])
        The truncated model (a copy unless ``inplace``) and one report row per layer.
    """
    _check_number("bulk_keep", bulk_keep)
    _check_number("alpha", alpha)
    _check_number("beta", beta)
    if fit_cutoff is not None:
        _check_number("fit_cutoff", fit_cutoff)
    if not 0.0 <= bulk_keep <= 1.0:
        raise ValueError(f"bulk_keep must lie in [0, 1], got {bulk_keep}")
    if fit_cutoff is not None and not fit_cutoff > 0:
        raise ValueError(f"fit_cutoff must be > 0 or None, got {fit_cutoff}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 1/2), got {alpha}")
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must lie in (0, 1), got {beta}")

    def rule(name, module, svd):
        p, n = min(svd.N, svd.M), max(svd.N, svd.M)
        rank = numerical_rank(svd, module)
        if rank == 0:
            return None, {"note": "no MP fit: the matrix is zero (rank-deficient)"}
        try:
            # Values removed by an earlier cut are unobserved, not zeros of the bulk (censored fit).
            rep = fit_eigenvalues(svd.eigenvalues(), p=p, n=n, alpha=alpha, beta=beta, censored=p - rank)
        except ValueError as err:
            # No bulk to fit (alpha, beta and finiteness are checked already): p too small for BEMA's
            # window, or the window's eigenvalues are zero (a layer already cut below alpha p, a
            # zero-initialised layer). The layer is left as it is, with the reason.
            return None, {"note": f"no MP fit: {err}"}
        extra = _spectrum_fields(rep)
        if fit_cutoff is not None and rep.mp_fit_error >= fit_cutoff:
            return None, extra
        k_sig = rep.n_spikes
        prev = getattr(module, _EDGE_ATTR, None)
        if prev is not None:  # values an earlier MP cut called signal stay signal (see the docstring)
            k_sig = max(k_sig, int((svd.s > prev).sum()))
        k_sig = min(k_sig, rank)
        keep = k_sig + int(math.floor(bulk_keep * (rank - k_sig)))
        edges[name] = prev if prev is not None else rep.sv_edge
        return (svd.rank if keep >= rank else keep), extra  # nothing beyond the numerical rank to cut

    edges: dict[str, float] = {}
    target, cuts = svd_truncate(model, rule, **kwargs)
    for cut in cuts:
        if cut.action in ("factorized", "recomposed"):
            setattr(target.get_submodule(cut.name), _EDGE_ATTR, edges[cut.name])
    return target, cuts


#: attribute of a layer cut by :func:`mp_truncate`: the singular-value edge of the fit that cut it
_EDGE_ATTR = "rmt_sv_edge"


def rank_truncate(model: nn.Module, rank: int, **kwargs) -> tuple[nn.Module, list[LayerCut]]:
    """Truncate every layer at the fixed rank min(max(``rank``, ``min_rank``), current rank) (baseline).

    Like every SVD truncation, the kept rank is floored at ``min_rank``, which defaults to the model's output
    dimension (:func:`default_min_rank`, one default for API and CLI); pass ``min_rank=1`` to keep exactly ``rank``.
    The floor is visible in each :class:`LayerCut`'s ``rank_after``.
    """
    if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be an integer >= 1, got {rank!r}")
    return svd_truncate(model, lambda name, module, svd: (int(rank), {}), **kwargs)


def energy_truncate(model: nn.Module, energy: float = 0.9, **kwargs) -> tuple[nn.Module, list[LayerCut]]:
    r"""Keep per layer the smallest k with :math:`\sum_{i \le k} s_i^2 \ge` ``energy`` :math:`\sum_i s_i^2` (baseline)."""
    _check_number("energy", energy)
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must lie in (0, 1], got {energy}")

    def rule(name, module, svd):
        e = torch.cumsum(svd.s**2, 0)
        k = int(torch.searchsorted(e, energy * e[-1] * (1 - 1e-12)).item()) + 1
        return min(k, svd.rank), {}

    return svd_truncate(model, rule, **kwargs)
