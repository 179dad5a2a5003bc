r"""Masks: the element-wise sparsity patterns every pruning method returns, frozen masks, sparsity reports.

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

The pruning methods themselves live in :mod:`prune.methods` (one module per method family); this
module holds what they share: the prunable weights, mask validation and application, and the argument checks.
"""
from __future__ import annotations

import copy
import csv
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn

from .layers import FactorizedConv2d, FactorizedLinear, prunable_layers
from .params import count_nonzero, count_parameters

__all__ = [
    "Masks",
    "prunable_weights",
    "apply_masks",
    "masks_from_model",
    "FrozenMasks",
    "freeze_masks",
    "SparsityRow",
    "SparsityReport",
    "sparsity_report",
    "global_sparsity",
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
