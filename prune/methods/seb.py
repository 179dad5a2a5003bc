r"""Spectral Edge Budgeting (SEB) and our spectrum-guided layer budgets: global magnitude pruning whose
per-layer threshold is set by each layer's Marchenko-Pastur fit.

**SEB** (the successor paper, arXiv 2606.02608, Online Resource 2 section "Spectral Edge Budgeting"; constants and
file/line provenance in ``prune/methods/PROVENANCE.md``). For the selected layers :math:`\ell = 1..L` with
BEMA singular-value edges :math:`\sigma_+(\ell)`,

.. math::

    z_\ell = \frac{\sigma_+(\ell) - \overline{\sigma_+}}{\mathrm{sd}(\sigma_+)},\qquad
    w_\ell(s) = \max\bigl(0.1,\; 1 + \beta_{\mathrm{type}(\ell)}\, d(s)\, z_\ell\bigr),\qquad
    d(s) = (1 - s/s_d)_+ ,

and every weight gets the score :math:`|W_{ij}| / w_\ell`; the :math:`\mathrm{round}(s\,n)` smallest scores over all
selected weights are zeroed (so layer :math:`\ell` is thresholded in magnitude at :math:`q\,w_\ell`: a layer with
a far-reaching bulk edge is pruned more). :math:`(\beta, s_d)` come from the sparsity band (:data:`SEB_BANDS`).

**Spectral budgets** (:func:`spectral_budget_prune`, ours): the per-layer sparsity is set from quantities the
successor's code does not have, using this project's BEMA fit (``theory.fit_spectrum``):

* ``signal="bulk-energy"``: the fraction :math:`e_\ell = \sum_{s_i \le s_+} s_i^2 / \sum_i s_i^2` of the layer's
  energy (squared Frobenius norm) that lies in the MP bulk. Layer :math:`\ell` is pruned at rate
  :math:`s_\ell = \min(s_{\max}, \lambda\, e_\ell^{\gamma})`, :math:`\lambda` solved (bisection) so that
  :math:`\sum_\ell s_\ell n_\ell = s\,n` exactly, then magnitude pruning inside each layer. A layer whose energy is
  in its spikes (signal) keeps more weights.
* ``signal="edge-norm"``: scores :math:`|W_{ij}| / \hat\sigma_\ell` with :math:`\hat\sigma_\ell = s_+(\ell)/(\sqrt{n}+\sqrt{p})`
  the BEMA estimate of the entry noise level (the bulk edge of an :math:`N\times M` noise matrix of entry
  variance :math:`\sigma^2` is :math:`\sigma(\sqrt N + \sqrt M)`): one global threshold in units of each
  layer's own noise level.

A data-aware form multiplies each score by the root-mean-square of the input feature it multiplies
(``calibration`` inputs; the im2col column for a convolution), :math:`|W_{ij}|\,\|x_j\|` (the Wanda score,
Sun et al. 2024), before the layer budget is applied.

Every function returns ``(pruned model, masks, rows)``; the masks are exact zeros of the selected weights
(existing zeros stay zero) and the input model is not changed unless ``inplace=True``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..masks import Masks, _check_amount, _check_model, _smallest_mask, prunable_weights

__all__ = ["SEB_BANDS", "SEB_FLOOR", "LayerSpectrum", "layer_spectra", "layer_type", "seb_band", "seb_weights",
           "seb_prune", "spectral_budget_prune", "input_feature_norms", "BudgetWeightRow"]

SEB_FLOOR = 0.1  # w_l floor (ESM_2 eq. splus_weight; magnitude_rmt_sweep.py line 228)
# (upper sparsity bound of the band, beta_other, beta_attn, beta_mlp, s_d); beta 0 = plain magnitude.
# ESM_2 section "SEB final comparison" (s < 0.30 magnitude; 0.30-0.40; 0.40-0.55; > 0.55 layer-type);
# beta for layers that are neither attention nor MLP in the high band: adaptive_rmt/config.py high_splus_beta.
SEB_BANDS = (
    (0.30, 0.0, 0.0, 0.0, 1.0),
    (0.40, 1.00, 1.00, 1.00, 0.50),
    (0.55, 1.25, 1.25, 1.25, 0.70),
    (1.00, 1.50, 1.00, 2.00, 0.85),
)
SIGNALS = ("bulk-energy", "edge-norm")


@dataclass
class LayerSpectrum:
    """The BEMA fit of one selected layer (``ok`` False when the fit failed; then the numbers are NaN)."""

    name: str
    kind: str
    N: int
    M: int
    n_weights: int
    sv_edge: float
    sigma: float  # entry noise level s_+ / (sqrt(n) + sqrt(p))
    bulk_fraction: float
    bulk_energy: float
    mp_fit_error: float
    n_spikes: int
    ok: bool


@dataclass
class BudgetWeightRow:
    """What a budget method did to one layer."""

    name: str
    layer_type: str
    n_weights: int
    weight: float  # SEB w_l, or the layer's score divisor / budget multiplier
    sparsity: float  # fraction of the layer's selected weights that are zero afterwards
    sv_edge: float
    bulk_energy: float

    def as_dict(self) -> dict:
        return asdict(self)


def layer_type(name: str) -> str:
    """``"attn"``, ``"mlp"`` or ``"other"`` from the layer name (the successor's ``classify_layer_type``)."""
    n = name.lower()
    if "attn" in n or "attention" in n or n.split(".")[-1] in ("qkv", "query", "key", "value"):
        return "attn"
    if "mlp" in n or ".fc" in n or "intermediate" in n:
        return "mlp"
    return "other"


def _groups(model: nn.Module, layers):
    items = prunable_weights(model, layers)
    groups: dict[str, list] = {}
    for pname, lname, p in items:
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"parameter {pname!r} contains NaN or Inf")
        groups.setdefault(lname, []).append((pname, p))
    return groups


def layer_spectra(model: nn.Module, layers: Iterable[str] | None = None, *, alpha: float = 0.25,
                  beta: float = 0.8) -> list[LayerSpectrum]:
    """BEMA fit (``theory.fit_spectrum``, trimming ``alpha``, Tracy-Widom level ``beta``) of every selected layer.

    A layer BEMA cannot fit (too few singular values) gets ``ok=False`` and NaN numbers.
    """
    from theory import fit_spectrum

    from ..layers import matrix_shape, weight_matrix

    _check_model(model)
    for name, val in (("alpha", alpha), ("beta", beta)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not 0 < val < (0.5 if name == "alpha" else 1):
            raise ValueError(f"{name} must lie in (0, {0.5 if name == 'alpha' else 1}), got {val!r}")
    mods = dict(model.named_modules())
    out = []
    for lname, tensors in _groups(model, layers).items():
        m = mods[lname]
        N, M = matrix_shape(m)
        nw = sum(p.numel() for _, p in tensors)
        try:
            rep = fit_spectrum(weight_matrix(m).detach().to(torch.float64), alpha=alpha, beta=beta)
            lam = np.asarray(rep.eigenvalues)
            tot = float(lam.sum())
            bulk = float(lam[lam <= rep.lambda_plus].sum())
            out.append(LayerSpectrum(lname, type(m).__name__, N, M, nw, float(rep.sv_edge),
                                     float(rep.sv_edge) / (math.sqrt(rep.n) + math.sqrt(rep.p)),
                                     float(rep.bulk_fraction), bulk / tot if tot > 0 else math.nan,
                                     float(rep.mp_fit_error), int(rep.n_spikes), True))
        except ValueError:
            out.append(LayerSpectrum(lname, type(m).__name__, N, M, nw, math.nan, math.nan, math.nan, math.nan,
                                     math.nan, 0, False))
    return out


def seb_band(amount: float) -> tuple[float, float, float, float]:
    """(beta_other, beta_attn, beta_mlp, s_d) of the SEB band holding sparsity ``amount``:
    s < 0.30 magnitude (beta 0); 0.30 <= s <= 0.40; 0.40 < s <= 0.55; s > 0.55 (layer-type betas)."""
    amount = _check_amount(amount)
    if amount < 0.30:
        return SEB_BANDS[0][1:]
    for hi, b, ba, bm, sd in SEB_BANDS[1:]:
        if amount <= hi:
            return b, ba, bm, sd
    return SEB_BANDS[-1][1:]


def seb_weights(spectra: list[LayerSpectrum], amount: float, *, beta: float | None = None,
                s_d: float | None = None, beta_attn: float | None = None, beta_mlp: float | None = None,
                floor: float = SEB_FLOOR) -> dict[str, float]:
    r"""SEB's :math:`w_\ell(s) = \max(\text{floor}, 1 + \beta_{\mathrm{type}}\,(1 - s/s_d)_+\, z_\ell)` per layer.

    ``beta``/``s_d``/``beta_attn``/``beta_mlp`` default to the band of ``amount`` (:func:`seb_band`); a layer whose
    fit failed enters the z-score with :math:`\sigma_+ = 0`, as the successor's code does (a missing signal is 0.0).
    """
    amount = _check_amount(amount)
    b0, ba0, bm0, sd0 = seb_band(amount)
    beta_attn = ba0 if beta_attn is None else beta_attn
    beta_mlp = bm0 if beta_mlp is None else beta_mlp
    beta = b0 if beta is None else beta
    s_d = sd0 if s_d is None else s_d
    for name, val in (("beta", beta), ("beta_attn", beta_attn), ("beta_mlp", beta_mlp), ("s_d", s_d),
                      ("floor", floor)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val) or val < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
    if s_d == 0:
        raise ValueError("s_d must be > 0, got 0")
    raw = np.array([sp.sv_edge if sp.ok else 0.0 for sp in spectra], dtype=np.float64)
    sd = raw.std()
    if len(raw) == 0 or sd < 1e-12:
        return {sp.name: 1.0 for sp in spectra}
    z = (raw - raw.mean()) / sd
    decay = max(0.0, 1.0 - amount / s_d)
    per_type = {"attn": beta_attn, "mlp": beta_mlp, "other": beta}
    return {sp.name: max(floor, 1.0 + per_type[layer_type(sp.name)] * decay * zi) for sp, zi in zip(spectra, z)}


def _apply_scores(target: nn.Module, groups, scores: dict[str, torch.Tensor], amount: float) -> Masks:
    """Zero the round(amount * n) smallest pooled scores (existing zeros have score 0, so they stay zero)."""
    flat = torch.cat([scores[ln] for ln in groups])
    n = flat.numel()
    k = int(round(amount * n))
    zeros = int(sum(int((p == 0).sum()) for ts in groups.values() for _, p in ts))
    if k < zeros:
        raise ValueError(f"amount={amount} is below the model's existing sparsity {zeros / n:.4f} of the selected "
                         "weights; pruning never revives a zero")
    keep = _smallest_mask(flat, k)
    return _write_keep(groups, keep)


def _write_keep(groups, keep: torch.Tensor) -> Masks:
    masks: Masks = {}
    start = 0
    with torch.no_grad():
        for ln, ts in groups.items():
            for pname, p in ts:
                m = keep[start:start + p.numel()].reshape(p.shape).to(p.device)
                start += p.numel()
                p.mul_(m)
                masks[pname] = m
    return masks


def _rows(groups, masks, weights, spectra, scale=None) -> list[BudgetWeightRow]:
    sp = {s.name: s for s in spectra}
    rows = []
    for ln, ts in groups.items():
        n = sum(p.numel() for _, p in ts)
        z = sum(int((~masks[pn]).sum()) for pn, _ in ts)
        rows.append(BudgetWeightRow(ln, layer_type(ln), n, float(weights.get(ln, 1.0)), z / n,
                                    sp[ln].sv_edge, sp[ln].bulk_energy))
    return rows


def seb_prune(model: nn.Module, amount: float, *, beta: float | None = None, s_d: float | None = None,
              beta_attn: float | None = None, beta_mlp: float | None = None, floor: float = SEB_FLOOR,
              alpha_bema: float = 0.25, beta_bema: float = 0.8, layers: Iterable[str] | None = None,
              inplace: bool = False) -> tuple[nn.Module, Masks, list[BudgetWeightRow]]:
    r"""Spectral Edge Budgeting to exactly sparsity ``amount`` of the selected weights (no data, no fine-tune).

    Parameters
    ----------
    model : nn.Module
    amount : float in [0, 1]
        Target fraction of zeros among the selected (Linear/Conv2d) weights; ``round(amount * n)`` are zero.
    beta, s_d, beta_attn, beta_mlp : float, optional
        Override the band constants (:data:`SEB_BANDS`); ``beta`` alone sets all three betas.
    floor : float
        Lower bound of :math:`w_\ell` (0.1).
    alpha_bema, beta_bema : float
        BEMA trimming and Tracy-Widom level of the edge fit (the successor's 0.25 and 0.8).
    layers : iterable of str, optional
    inplace : bool

    Returns
    -------
    (nn.Module, dict, list[BudgetWeightRow])

    Raises
    ------
    ValueError
        An option out of range (named), ``amount`` below the model's existing sparsity, non-finite weights.
    """
    _check_model(model)
    amount = _check_amount(amount)
    if beta is not None and beta_attn is None and beta_mlp is None:
        beta_attn = beta_mlp = beta
    target = model if inplace else copy.deepcopy(model)
    spectra = layer_spectra(target, layers, alpha=alpha_bema, beta=beta_bema)
    w = seb_weights(spectra, amount, beta=beta, s_d=s_d, beta_attn=beta_attn, beta_mlp=beta_mlp, floor=floor)
    groups = _groups(target, layers)
    with torch.no_grad():
        scores = {ln: torch.cat([p.detach().abs().flatten().to(torch.float64) for _, p in ts]) / w[ln]
                  for ln, ts in groups.items()}
    masks = _apply_scores(target, groups, scores, amount)
    return target, masks, _rows(groups, masks, w, spectra)


def input_feature_norms(model: nn.Module, x: torch.Tensor, layers: Iterable[str] | None = None,
                        batch_size: int = 256) -> dict[str, torch.Tensor]:
    r"""Root-mean-square of each input feature of every selected layer over the calibration inputs ``x``.

    For ``nn.Linear`` the feature j is input coordinate j (averaged over batch and token positions); for
    ``nn.Conv2d`` it is the im2col column :math:`(c, k_h, k_w)` (``F.unfold`` of the layer input). Returns
    layer name -> tensor of the weight's flattened input size. The model is run in eval mode, unchanged.
    """
    import torch.nn.functional as F

    _check_model(model)
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"calibration must be a tensor batch of inputs, got {type(x).__name__}")
    mods = dict(model.named_modules())
    names = list(_groups(model, layers))
    sums = {n: None for n in names}
    counts = {n: 0 for n in names}
    handles = []

    def hook(name):
        def f(mod, inp, out):
            a = inp[0].detach().to(torch.float64)
            if isinstance(mod, nn.Conv2d):
                cols = F.unfold(a, mod.kernel_size, dilation=mod.dilation, padding=mod.padding, stride=mod.stride)
                sq, c = (cols ** 2).sum(dim=(0, 2)), cols.shape[0] * cols.shape[2]
            else:
                a2 = a.reshape(-1, a.shape[-1])
                sq, c = (a2 ** 2).sum(dim=0), a2.shape[0]
            sums[name] = sq if sums[name] is None else sums[name] + sq
            counts[name] += c
        return f

    for n in names:
        m = mods[n]
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            raise ValueError(f"calibration scores need nn.Linear / nn.Conv2d layers; {n!r} is {type(m).__name__}")
        handles.append(m.register_forward_hook(hook(n)))
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                model(x[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return {n: (sums[n] / max(counts[n], 1)).sqrt() for n in names}


def _budget_counts(n: np.ndarray, e: np.ndarray, total_zero: int, cap: float, floor_zero: np.ndarray) -> np.ndarray:
    """Per-layer zero counts k_l = clip(lam * e_l * n_l, floor_zero_l, cap * n_l) with sum = total_zero exactly."""
    hi_cap = np.maximum(np.floor(cap * n), floor_zero)
    if total_zero > hi_cap.sum():
        hi_cap = n.astype(float)

    def count(lam):
        return np.clip(lam * e * n, floor_zero, hi_cap)

    lo, hi = 0.0, 1.0
    while count(hi).sum() < total_zero and hi < 1e12:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if count(mid).sum() < total_zero:
            lo = mid
        else:
            hi = mid
    exact = count(hi)
    k = np.floor(exact).astype(np.int64)
    k = np.maximum(k, floor_zero.astype(np.int64))
    short = total_zero - int(k.sum())
    order = np.argsort(-(exact - k))
    j = 0
    while short != 0 and j < 10 * len(k) + 10:
        i = order[j % len(k)]
        if short > 0 and k[i] < hi_cap[i]:
            k[i] += 1
            short -= 1
        elif short < 0 and k[i] > floor_zero[i]:
            k[i] -= 1
            short += 1
        j += 1
    if short != 0:
        raise AssertionError("could not meet the exact budget")
    return k


def spectral_budget_prune(model: nn.Module, amount: float, *, signal: str = "bulk-energy", gamma: float = 1.0,
                          max_layer_sparsity: float = 0.95, calibration: torch.Tensor | None = None,
                          alpha_bema: float = 0.25, beta_bema: float = 0.8, layers: Iterable[str] | None = None,
                          inplace: bool = False) -> tuple[nn.Module, Masks, list[BudgetWeightRow]]:
    r"""Our spectrum-guided per-layer budgets (see the module docstring), to exactly sparsity ``amount``.

    Parameters
    ----------
    model : nn.Module
    amount : float in [0, 1]
    signal : {"bulk-energy", "edge-norm"}
        ``bulk-energy``: layer sparsity proportional to (bulk energy fraction) ** ``gamma``, capped at
        ``max_layer_sparsity``; ``edge-norm``: one global threshold on |W| / (layer noise level).
    gamma : float > 0
        Sharpness of the bulk-energy budget.
    max_layer_sparsity : float in (0, 1]
        No layer is pruned beyond this fraction (unless the total cannot be met otherwise).
    calibration : tensor, optional
        Inputs for the data-aware form (scores |W_ij| * rms(x_j)); None = data-free.
    alpha_bema, beta_bema, layers, inplace
        As in :func:`seb_prune`.

    Raises
    ------
    ValueError
        Unknown ``signal``, options out of range (named), ``amount`` below the existing sparsity.
    """
    _check_model(model)
    amount = _check_amount(amount)
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    if isinstance(max_layer_sparsity, bool) or not isinstance(max_layer_sparsity, (int, float)) or \
            not 0 < max_layer_sparsity <= 1:
        raise ValueError(f"max_layer_sparsity must lie in (0, 1], got {max_layer_sparsity!r}")
    target = model if inplace else copy.deepcopy(model)
    spectra = layer_spectra(target, layers, alpha=alpha_bema, beta=beta_bema)
    groups = _groups(target, layers)
    act = input_feature_norms(target, calibration, layers) if calibration is not None else None
    mods = dict(target.named_modules())
    with torch.no_grad():
        scores = {}
        for ln, ts in groups.items():
            if act is not None and len(ts) == 1:
                p = ts[0][1]
                s = p.detach().abs().to(torch.float64).reshape(p.shape[0], -1) * act[ln].reshape(1, -1)
                scores[ln] = s.flatten()
            else:
                scores[ln] = torch.cat([p.detach().abs().flatten().to(torch.float64) for _, p in ts])
            scores[ln] = torch.where(torch.cat([p.detach().flatten() for _, p in ts]) == 0,
                                     torch.zeros((), dtype=torch.float64), scores[ln])
    spd = {s.name: s for s in spectra}
    if signal == "edge-norm":
        med = float(np.nanmedian([s.sigma for s in spectra])) if any(s.ok for s in spectra) else 1.0
        w = {ln: (spd[ln].sigma if spd[ln].ok and spd[ln].sigma > 0 else med) for ln in groups}
        if act is not None:  # put the activation-scaled scores on the layer's output scale
            w = {ln: w[ln] * float(act[ln].pow(2).mean().sqrt()) for ln in groups}
        scaled = {ln: scores[ln] / w[ln] for ln in groups}
        masks = _apply_scores(target, groups, scaled, amount)
        return target, masks, _rows(groups, masks, w, spectra)
    names = list(groups)
    n = np.array([scores[ln].numel() for ln in names], dtype=np.float64)
    zeros_now = np.array([int((scores[ln] == 0).sum()) for ln in names], dtype=np.float64)
    e = np.array([spd[ln].bulk_energy if spd[ln].ok else np.nan for ln in names])
    e = np.where(np.isfinite(e), e, np.nanmean(e) if np.isfinite(e).any() else 1.0)
    e = np.maximum(e, 1e-6) ** gamma
    total = int(round(amount * n.sum()))
    if total < zeros_now.sum():
        raise ValueError(f"amount={amount} is below the model's existing sparsity "
                         f"{zeros_now.sum() / n.sum():.4f} of the selected weights; pruning never revives a zero")
    k = _budget_counts(n, e, total, max_layer_sparsity, zeros_now)
    keep = torch.cat([_smallest_mask(scores[ln], int(ki)) for ln, ki in zip(names, k)])
    masks = _write_keep(groups, keep)
    return target, masks, _rows(groups, masks, {ln: float(ei) for ln, ei in zip(names, e)}, spectra)
