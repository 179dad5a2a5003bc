r"""Per-layer spectral analysis of a model: one row per weight matrix, as a sortable, saveable table.

For every weight matrix W (N x M) of the model: the ESD :math:`\lambda_i = s_i^2 / n`, BEMA's noise
variance sigma2 and edge :math:`\lambda_+`, the singular-value edge :math:`s_+ = \sqrt{n\lambda_+}`, the
spike count, the bulk fraction and the MP-fit error (``theory.fit_spectrum``; DESIGN.md conventions).

Which matrices (``views``):

* ``nn.Linear`` (and a factorised layer's product): the weight;
* ``nn.Conv2d``: the im2col view C_out x (C_in kh kw) (``conv_view="im2col"``, the default), or
  WeightWatcher's per-slice view, one C_out x C_in matrix per kernel position (``conv_view="slices"``);
* fused attention projections: a Linear whose name ends in ``qkv`` with out = 3 x in (timm), and
  ``nn.MultiheadAttention``'s ``in_proj_weight``: the whole matrix and, with ``split_qkv=True``,
  its q, k and v blocks (with kdim / vdim != embed_dim: its three separate projection matrices);
* embeddings (``nn.Embedding``, and 2-D+ parameters whose name contains ``embed``, squeezed);
* any other layer with a 2-D+ ``weight`` (Conv1d, Conv3d, ConvTranspose, GPT-2's Conv1D, ...): its
  first axis against the rest (view ``reshape``); pruning functions do not handle these.

A matrix too small for BEMA (fewer than 8 rows or columns), or one BEMA cannot fit (a zero central
window: rank-deficient), gets a row with ``note`` saying so and NaN fit fields, never a silent
omission. A factorised layer of rank k < p is fitted on its exact spectrum (p - k zeros, not the
rounding noise of the product), and its ``note`` says so.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from theory import esd, fit_eigenvalues, fit_spectrum

from .defaults import BEMA_ALPHA, BEMA_BETA
from .layers import PRUNABLE_TYPES, FactorizedConv2d, FactorizedLinear, prunable_layers, weight_matrix

__all__ = ["LayerRow", "LayerTable", "analyze", "layer_matrices"]

MIN_DIM = 8


@dataclass
class LayerRow:
    """One analysed weight matrix (field meanings in DESIGN.md and ``theory.SpectrumReport``)."""

    name: str
    type: str
    view: str
    N: int
    M: int
    p: int
    n: int
    sigma2: float
    lambda_plus: float
    sv_edge: float
    n_spikes: int
    bulk_fraction: float
    mp_fit_error: float
    params: int
    largest_sv: float
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class LayerTable:
    """Rows of :class:`LayerRow`: iterate, index, sort, filter, save as CSV / JSON, convert to pandas."""

    columns = tuple(f.name for f in fields(LayerRow))

    def __init__(self, rows: Iterable[LayerRow], eigenvalues: dict[str, np.ndarray] | None = None) -> None:
        self.rows = list(rows)
        self.eigenvalues = eigenvalues or {}

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LayerRow]:
        return iter(self.rows)

    def __getitem__(self, i):
        if isinstance(i, str):
            for r in self.rows:
                if f"{r.name}" == i or f"{r.name}[{r.view}]" == i:
                    return r
            raise KeyError(i)
        return self.rows[i]

    def column(self, name: str) -> list:
        if name not in self.columns:
            raise ValueError(f"column must be one of {self.columns}, got {name!r}")
        return [getattr(r, name) for r in self.rows]

    def sort_by(self, column: str, descending: bool = False) -> "LayerTable":
        """A new table sorted by ``column`` (NaN last)."""
        vals = self.column(column)
        key = lambda i: (isinstance(vals[i], float) and math.isnan(vals[i]), vals[i])  # noqa: E731
        order = sorted(range(len(vals)), key=key, reverse=False)
        if descending:
            nan = [i for i in order if isinstance(vals[i], float) and math.isnan(vals[i])]
            order = [i for i in order if i not in set(nan)][::-1] + nan
        return LayerTable([self.rows[i] for i in order], self.eigenvalues)

    def filter(self, predicate) -> "LayerTable":
        return LayerTable([r for r in self.rows if predicate(r)], self.eigenvalues)

    def to_records(self) -> list[dict]:
        return [r.as_dict() for r in self.rows]

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns)
            w.writeheader()
            w.writerows(self.to_records())
        return path

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        recs = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in self.to_records()]
        path.write_text(json.dumps(recs, indent=1))
        return path

    def to_pandas(self):
        import pandas as pd  # optional

        return pd.DataFrame(self.to_records(), columns=list(self.columns))

    def __repr__(self) -> str:
        head = ("name", "view", "N", "M", "sv_edge", "n_spikes", "bulk_fraction", "mp_fit_error")
        lines = ["  ".join(head)]
        for r in self.rows:
            lines.append(f"{r.name}  {r.view}  {r.N}  {r.M}  {r.sv_edge:.4g}  {r.n_spikes}  "
                         f"{r.bulk_fraction:.3f}  {r.mp_fit_error:.3f}")
        return "\n".join(lines)


def _is_fused_qkv(name: str, module: nn.Module) -> bool:
    return (isinstance(module, nn.Linear) and name.split(".")[-1].endswith("qkv")
            and module.out_features == 3 * module.in_features)


def layer_matrices(model: nn.Module, conv_view: str = "im2col", split_qkv: bool = True,
                   embeddings: bool = True) -> list[tuple[str, str, str, torch.Tensor, int]]:
    """(name, type, view, matrix, stored params) for every weight matrix the analysis covers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if conv_view not in ("im2col", "slices"):
        raise ValueError(f'conv_view must be "im2col" or "slices", got {conv_view!r}')
    out = []
    with torch.no_grad():
        for name, m in prunable_layers(model):
            kind = type(m).__name__
            if isinstance(m, nn.Conv2d) and conv_view == "slices":
                w = m.weight.detach()
                for i in range(w.shape[2]):
                    for j in range(w.shape[3]):
                        out.append((name, kind, f"slice[{i},{j}]", w[:, :, i, j], w[:, :, i, j].numel()))
                continue
            W = weight_matrix(m).detach()
            params = (m.first.weight.numel() + m.second.weight.numel()
                      if isinstance(m, (FactorizedLinear, FactorizedConv2d)) else m.weight.numel())
            view = "im2col" if isinstance(m, (nn.Conv2d, FactorizedConv2d)) else "matrix"
            out.append((name, kind, view, W, params))
            if split_qkv and _is_fused_qkv(name, m):
                for part, block in zip("qkv", W.chunk(3, dim=0)):
                    out.append((name, kind, part, block, block.numel()))
        for name, m in model.named_modules():
            if isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
                W = m.in_proj_weight.detach()
                out.append((f"{name}.in_proj", "MultiheadAttention", "matrix", W, W.numel()))
                if split_qkv:
                    for part, block in zip("qkv", W.chunk(3, dim=0)):
                        out.append((f"{name}.in_proj", "MultiheadAttention", part, block, block.numel()))
            elif isinstance(m, nn.MultiheadAttention):  # kdim or vdim != embed_dim: three separate projections
                for part in "qkv":
                    W = getattr(m, f"{part}_proj_weight").detach()
                    out.append((f"{name}.{part}_proj", "MultiheadAttention", "matrix", W, W.numel()))
            elif embeddings and isinstance(m, nn.Embedding):
                out.append((name, "Embedding", "matrix", m.weight.detach(), m.weight.numel()))
            elif (not isinstance(m, PRUNABLE_TYPES + (nn.Embedding,))
                  and isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() >= 2):
                # Other weight-bearing layers (Conv1d / Conv3d / ConvTranspose, GPT-2's Conv1D, ...):
                # analysed as their first axis against the rest (same singular values as the map's
                # matrix up to a transpose); pruning does not handle them.
                W = m.weight.detach()
                out.append((name, type(m).__name__, "reshape", W.reshape(W.shape[0], -1), W.numel()))
        if embeddings:
            for pname, prm in model.named_parameters():
                short = pname.split(".")[-1].lower()
                if "embed" in short and prm.dim() >= 2 and "weight" not in short:
                    W = prm.detach().reshape(-1, prm.shape[-1])
                    out.append((pname, "Parameter", "matrix", W, prm.numel()))
    return out


def analyze(model: nn.Module, alpha: float = BEMA_ALPHA, beta: float = BEMA_BETA, conv_view: str = "im2col",
            split_qkv: bool = True, embeddings: bool = True, keep_eigenvalues: bool = False,
            progress: bool = False) -> LayerTable:
    """Spectral analysis of every weight matrix of ``model`` (see the module docstring); the model is not changed.

    Parameters
    ----------
    model : nn.Module
    alpha, beta : float
        BEMA trimming in (0, 1/2) and Tracy-Widom level in (0, 1); default :data:`prune.defaults.BEMA_ALPHA` /
        ``BEMA_BETA``, the same as :func:`prune.methods.svd.mp_truncate`'s, so ``n_spikes`` is the rank it keeps.
    conv_view : "im2col" or "slices"
    split_qkv : bool
        Also analyse the q, k, v blocks of fused attention projections.
    embeddings : bool
        Include embedding matrices.
    keep_eigenvalues : bool
        Keep each matrix's ESD in ``table.eigenvalues[f"{name}[{view}]"]`` (for plotting; also for the
        rows without a fit).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    LayerTable

    Raises
    ------
    ValueError
        The model has no weight matrix to analyse, or a bad option.
    """
    for arg, value in (("alpha", alpha), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{arg} must be a real number, got {type(value).__name__} {value!r}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 1/2), got {alpha}")
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must lie in (0, 1), got {beta}")
    mats = layer_matrices(model, conv_view=conv_view, split_qkv=split_qkv, embeddings=embeddings)
    if not mats:
        raise ValueError(f"model ({type(model).__name__}) has no Linear, Conv2d, attention or embedding weight "
                         "matrix to analyse")
    it = mats
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(mats, desc="analysing", unit="matrix")
    rows, eigs = [], {}
    for name, kind, view, W, params in it:
        N, M = int(W.shape[0]), int(W.shape[1])
        p, n = min(N, M), max(N, M)
        if p < MIN_DIM:
            if not bool(torch.isfinite(W).all()):
                raise ValueError(f"{name}[{view}]: W contains non-finite value(s) (NaN or Inf)")
            s_max = float(torch.linalg.matrix_norm(W.double(), ord=2)) if W.numel() else math.nan
            rows.append(LayerRow(name, kind, view, N, M, p, n, math.nan, math.nan, math.nan, -1, math.nan, math.nan,
                                 params, s_max, note=f"too small for BEMA (min dimension {p} < {MIN_DIM})"))
            if keep_eigenvalues and W.numel():
                eigs[f"{name}[{view}]"] = esd(W).cpu().numpy()
            continue
        note, exact = "", None
        try:
            if kind.startswith("Factorized") and params // (N + M) < p:
                # rank <= k = params / (N + M): the p - k smallest singular values of the product are
                # rounding noise, which BEMA would fit as a bulk (calling rounding noise "spikes"); they are 0
                k = params // (N + M)
                exact = np.zeros(p)
                exact[p - k:] = np.sort(torch.linalg.svdvals(W.double())[:k].cpu().numpy() ** 2 / n)
                note = f"factorised at rank {k} < p: {p - k} zero eigenvalues"
                rep = fit_eigenvalues(exact, p=p, n=n, alpha=alpha, beta=beta)
            else:
                rep = fit_spectrum(W, alpha=alpha, beta=beta)
        except ValueError as err:
            if not bool(torch.isfinite(W).all()):
                raise ValueError(f"{name}[{view}]: {err}") from err
            # finite, alpha and beta valid: BEMA's central window is zero (a rank-deficient matrix)
            s_max = float(torch.linalg.matrix_norm(W.double(), ord=2))
            rows.append(LayerRow(name, kind, view, N, M, p, n, math.nan, math.nan, math.nan, -1, math.nan, math.nan,
                                 params, s_max, note=(note + "; " if note else "") + f"no MP fit: {err}"))
            if keep_eigenvalues:
                eigs[f"{name}[{view}]"] = exact if exact is not None else esd(W).cpu().numpy()
            continue
        lam = rep.eigenvalues
        rows.append(LayerRow(name, kind, view, N, M, p, n, rep.sigma2, rep.lambda_plus, rep.sv_edge, rep.n_spikes,
                             rep.bulk_fraction, rep.mp_fit_error, params, float(math.sqrt(max(lam[-1], 0.0) * n)),
                             note=note))
        if keep_eigenvalues:
            eigs[f"{name}[{view}]"] = lam
    return LayerTable(rows, eigs)
