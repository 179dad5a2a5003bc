r"""Element-wise sparsification of a model's weights: masks, magnitude pruning, frozen masks.

A **mask** is a ``dict`` from a parameter's qualified name (as in ``model.named_parameters()``, e.g.
``"features.0.weight"`` or ``"fc.first.weight"`` for the first factor of a factorised layer) to a
``bool`` tensor of the parameter's shape: ``True`` keeps the entry, ``False`` holds it at exactly 0.
Masks cover the weights of the prunable layers (``prune.layers``): ``nn.Linear``, ``nn.Conv2d`` and both
factors of :class:`~prune.layers.FactorizedLinear` / :class:`~prune.layers.FactorizedConv2d`; biases,
norms and embeddings are never masked. Because a mask is keyed by name it applies equally to a deep
copy of the model it was computed on.

Pruned entries are stored as exact zeros, which is what :func:`prune.params.count_nonzero` counts.
No forward hook or re-parametrisation is left on the model, so a pruned model saves, reloads and runs
as a plain model (unlike ``torch.nn.utils.prune``, which keeps ``weight_orig`` and a forward pre-hook).

**Frozen masks in training** (:class:`FrozenMasks`, :func:`freeze_masks`): two mechanisms together,

1. a gradient hook on every masked parameter, :math:`g \leftarrow g \odot m`, so masked entries receive
   no gradient (and gradient clipping sees only live entries);
2. after every ``optimizer.step()`` (a ``register_step_post_hook`` on the optimiser given, or an explicit
   :meth:`FrozenMasks.reapply` call) the masked weights are set back to 0 and the optimiser's per-entry
   state tensors of the parameter's shape (SGD ``momentum_buffer``, Adam/AdamW ``exp_avg`` and
   ``exp_avg_sq``, ...) are zeroed at masked entries.

Step 2 is what survives momentum and weight decay: a momentum buffer filled before the mask was set, or
coupled L2 decay combined with momentum, would otherwise move a masked weight away from zero. Both
mechanisms are removed by :meth:`FrozenMasks.remove` (or leaving the ``with`` block). We do not use
``torch.nn.utils.parametrize`` because it renames the state-dict keys (``parametrizations.weight.original``),
which would break saving the model and loading it into the unpruned architecture.

Magnitude pruning (the global baseline; seed paper 2's Algorithm D when given a threshold,
papers.md 2.2): zero the entries of smallest :math:`|w_{ij}|`, either the ``amount`` fraction of all
selected weights pooled together (``scope="global"``) or of each layer separately (``scope="layer"``),
or every entry with :math:`|w_{ij}| < \xi` (``threshold``).
"""
from __future__ import annotations

import copy
import csv
import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn

from .layers import FactorizedConv2d, FactorizedLinear, prunable_layers
from .params import count_nonzero, count_parameters

__all__ = [
    "Masks",
    "prunable_weights",
    "magnitude_prune",
    "apply_masks",
    "masks_from_model",
    "FrozenMasks",
    "freeze_masks",
    "SparsityRow",
    "SparsityReport",
    "sparsity_report",
    "global_sparsity",
    "paper_theta",
    "SVSparsifyRow",
    "sparsify_singular_vectors",
    "BudgetRow",
    "mp_budget",
    "mp_magnitude_prune",
    "CycleRecord",
    "rmt_cycle_prune",
    "CYCLE_SCHEDULES",
]

Masks = dict  # dict[str, torch.Tensor] (bool), parameter name -> keep mask


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def prunable_weights(model: nn.Module, layers: Iterable[str] | None = None) -> list[tuple[str, str, nn.Parameter]]:
    """(parameter name, layer name, parameter) of every prunable weight, in registration order.

    A factorised layer contributes its two factors ``<layer>.first.weight`` and ``<layer>.second.weight``.
    A parameter shared by several layers (tied weights) is listed once.

    Parameters
    ----------
    model : nn.Module
    layers : iterable of str, optional
        Restrict to these prunable layer names (as :func:`prune.layers.prunable_layers` names them).

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Module``.
    ValueError
        The model has no prunable layer, or ``layers`` names one that is not prunable.
    """
    _check_model(model)
    found = prunable_layers(model)
    if not found:
        raise ValueError(f"model ({type(model).__name__}) has no nn.Linear or nn.Conv2d layer to prune")
    if layers is not None:
        if isinstance(layers, str):
            raise TypeError(f"layers must be an iterable of layer names, not a single string {layers!r}")
        wanted = list(layers)
        names = {n for n, _ in found}
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(f"layers names no prunable layer: {missing}; prunable layers are {sorted(names)}")
        keep = set(wanted)
        found = [(n, m) for n, m in found if n in keep]
    out, seen = [], set()
    for lname, m in found:
        if isinstance(m, (FactorizedLinear, FactorizedConv2d)):
            items = [(_join(lname, "first.weight"), m.first.weight), (_join(lname, "second.weight"), m.second.weight)]
        else:
            items = [(_join(lname, "weight"), m.weight)]
        for pname, p in items:
            if id(p) in seen:
                continue
            seen.add(id(p))
            out.append((pname, lname, p))
    return out


def _check_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> dict[str, nn.Parameter]:
    """Validate ``masks`` against ``model``; return name -> parameter."""
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a dict of parameter name -> bool tensor, got {type(masks).__name__}")
    params = dict(model.named_parameters(remove_duplicate=False))
    out = {}
    for name, m in masks.items():
        if name not in params:
            raise ValueError(f"masks names {name!r}, which is not a parameter of the model")
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise TypeError(f"masks[{name!r}] must be a bool tensor, got "
                            f"{m.dtype if isinstance(m, torch.Tensor) else type(m).__name__}")
        p = params[name]
        if tuple(m.shape) != tuple(p.shape):
            raise ValueError(f"masks[{name!r}] has shape {tuple(m.shape)}, parameter has shape {tuple(p.shape)}")
        out[name] = p
    return out


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor], *, inplace: bool = False) -> nn.Module:
    """Set every masked-out entry (mask ``False``) to exactly 0; return the model (a copy unless ``inplace``).

    Raises
    ------
    TypeError, ValueError
        A mask that is not a bool tensor, names no parameter, or has the wrong shape.
    """
    _check_model(model)
    target = model if inplace else copy.deepcopy(model)
    params = _check_masks(target, masks)
    with torch.no_grad():
        for name, p in params.items():
            p.mul_(masks[name].to(p.device))
    return target


def masks_from_model(model: nn.Module, layers: Iterable[str] | None = None) -> Masks:
    """The masks of the model's current sparsity pattern: ``True`` where a prunable weight is non-zero."""
    with torch.no_grad():
        return {name: p.detach() != 0 for name, _, p in prunable_weights(model, layers)}


def _check_amount(amount) -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1], got {amount!r}")
    return float(amount)


def _smallest_mask(values: torch.Tensor, k: int) -> torch.Tensor:
    """Bool keep-mask over flat ``values`` (>= 0) that drops exactly the k smallest (ties by position)."""
    keep = torch.ones(values.numel(), dtype=torch.bool, device=values.device)
    if k > 0:
        idx = torch.argsort(values, stable=True)[:k]
        keep[idx] = False
    return keep


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
        pass them to :func:`freeze_masks` to keep the zeros through fine-tuning.

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


class FrozenMasks:
    """Keeps masked weights at exactly zero while a model trains (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        The model being trained (the masks' parameter names refer to it).
    masks : dict
        Parameter name -> bool keep mask.
    optimizer : torch.optim.Optimizer, optional
        When given, masks are re-applied (and its state zeroed at masked entries) after every
        ``optimizer.step()``; otherwise call :meth:`reapply` after each step yourself.

    Use as a context manager or call :meth:`remove` to take the hooks off. The masked weights are zeroed
    once on construction.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor],
                 optimizer: torch.optim.Optimizer | None = None) -> None:
        _check_model(model)
        params = _check_masks(model, masks)
        self.model = model
        self._params = params
        self._masks = {n: masks[n].to(p.device) for n, p in params.items()}
        self._float = {n: m.to(params[n].dtype) for n, m in self._masks.items()}
        self._handles: list = []
        self._optimizers: list[torch.optim.Optimizer] = []
        for name, p in params.items():
            if p.requires_grad:
                fm = self._float[name]
                self._handles.append(p.register_hook(lambda g, fm=fm: g * fm))
        if optimizer is not None:
            self.attach(optimizer)
        self.reapply()

    @property
    def masks(self) -> Masks:
        return dict(self._masks)

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Re-apply the masks after every ``optimizer.step()`` (a step post-hook)."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self._optimizers.append(optimizer)
        self._handles.append(optimizer.register_step_post_hook(lambda opt, args, kwargs: self.reapply()))

    def reapply(self) -> None:
        """Zero the masked weights, and the attached optimisers' per-entry state at masked entries."""
        with torch.no_grad():
            for name, p in self._params.items():
                p.mul_(self._float[name])
            for opt in self._optimizers:
                for name, p in self._params.items():
                    st = opt.state.get(p)
                    if not st:
                        continue
                    for v in st.values():
                        if isinstance(v, torch.Tensor) and v.shape == p.shape and v.is_floating_point():
                            v.mul_(self._float[name])

    def remove(self) -> None:
        """Take off every hook this object registered (the weights keep their current values)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._optimizers.clear()

    def __enter__(self) -> "FrozenMasks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def freeze_masks(model: nn.Module, masks: Mapping[str, torch.Tensor],
                 optimizer: torch.optim.Optimizer | None = None) -> FrozenMasks:
    """Keep ``masks`` frozen in ``model`` during training; returns a removable :class:`FrozenMasks`."""
    return FrozenMasks(model, masks, optimizer)


@dataclass
class SparsityRow:
    """One prunable weight tensor: its size, non-zeros and sparsity (fraction of exact zeros)."""

    name: str
    layer: str
    kind: str
    shape: tuple
    numel: int
    nonzero: int
    sparsity: float

    def as_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = "x".join(str(s) for s in self.shape)
        return d


@dataclass
class SparsityReport:
    """Per-tensor sparsity of the prunable weights, with the totals over them and over the whole model."""

    rows: list[SparsityRow] = field(default_factory=list)
    numel: int = 0
    nonzero: int = 0
    sparsity: float = 0.0
    model_parameters: int = 0
    model_nonzero: int = 0

    def to_csv(self, path) -> None:
        """Write one row per tensor (name, layer, kind, shape, numel, nonzero, sparsity)."""
        fields = ["name", "layer", "kind", "shape", "numel", "nonzero", "sparsity"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for r in self.rows:
                w.writerow(r.as_dict())

    def __str__(self) -> str:
        lines = [f"{'name':40s} {'shape':>16s} {'nonzero':>10s} {'sparsity':>8s}"]
        for r in self.rows:
            lines.append(f"{r.name:40s} {'x'.join(map(str, r.shape)):>16s} {r.nonzero:10d} {r.sparsity:8.4f}")
        lines.append(f"prunable weights: {self.nonzero}/{self.numel} non-zero, sparsity {self.sparsity:.4f}; "
                     f"model: {self.model_nonzero}/{self.model_parameters} non-zero")
        return "\n".join(lines)


def sparsity_report(model: nn.Module, layers: Iterable[str] | None = None) -> SparsityReport:
    """Sparsity of every prunable weight tensor (exact zeros, as :func:`prune.params.count_nonzero` counts)."""

    items = prunable_weights(model, layers)
    mods = dict(model.named_modules())
    rows = []
    with torch.no_grad():
        for name, lname, p in items:
            nz = int(torch.count_nonzero(p))
            rows.append(SparsityRow(name=name, layer=lname, kind=type(mods[lname]).__name__, shape=tuple(p.shape),
                                    numel=p.numel(), nonzero=nz, sparsity=1.0 - nz / p.numel()))
    numel = sum(r.numel for r in rows)
    nonzero = sum(r.nonzero for r in rows)
    return SparsityReport(rows=rows, numel=numel, nonzero=nonzero, sparsity=1.0 - nonzero / numel,
                          model_parameters=count_parameters(model), model_nonzero=count_nonzero(model))


def global_sparsity(model: nn.Module, layers: Iterable[str] | None = None) -> float:
    """Fraction of exact zeros among the prunable weights (pooled)."""
    with torch.no_grad():
        items = prunable_weights(model, layers)
        total = sum(p.numel() for _, _, p in items)
        nz = sum(int(torch.count_nonzero(p)) for _, _, p in items)
    return 1.0 - nz / total


# ----------------------------------------------------------------------------------------------------------
# Seed paper 2: Algorithm C (singular-vector sparsification), Algorithm D with the MP-weighted budget,
# and the cycle driver of its "Algorithm 3" (papers.md 2.2).
# ----------------------------------------------------------------------------------------------------------

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
        As in :func:`magnitude_prune`; ``progress`` shows a tqdm bar over layers.

    Returns
    -------
    (nn.Module, list[SVSparsifyRow])
    """
    from .layers import from_factors, matrix_shape, set_submodule
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
        As in :func:`magnitude_prune`.

    Returns
    -------
    (nn.Module, dict, list[BudgetRow])
        The model, the masks of all its selected prunable weights (``True`` = non-zero), one row per layer.
    """
    from theory import fit_spectrum

    from .layers import matrix_shape, weight_matrix

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

    from .regularize import regularize

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
