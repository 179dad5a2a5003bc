r"""The pruning theorems on real trained networks: each hypothesis on the layers, each conclusion on real data.

For every weight matrix (``nn.Linear``, ``nn.Conv2d`` as its im2col matrix C_out x C_in k k) of a trained model:

Hypotheses (:mod:`theory.hypotheses`)
    split W = S + R at the BEMA edge; test R's spectrum against MP (Kolmogorov distance), its largest bulk
    eigenvalue against Tracy-Widom, its entries' variance homogeneity across rows / columns and kurtosis, the
    delocalisation of its bulk singular vectors, and its independence from the data path
    (:func:`theory.hypotheses.datapath_test` on the layer's real inputs nu(s), collected with forward hooks;
    for a convolution nu is an input patch, for a token model one token). One record per test, with
    ``measured`` = p-value, ``bound`` = the level (default 0.01), ``held`` = p >= level.

Conclusions, on the model's real test inputs (the logits X(s) are the output of the last weight layer)
    * removing one layer's R (W -> S), :math:`\Delta(s) = \|X_S(s) - X_W(s)\|_\infty` against

      - the key lemma's :math:`\tau_N(s) = 2 L_{after}\sqrt{2\hat\sigma^2\log(2N)}\,\|\nu(s)\|` (papers.md 1.5;
        for the three-layer model :math:`L_{after} = \|W_3\|_\infty`, :math:`\hat\sigma^2 = g/N` and this is the
        paper's :math:`2\sqrt2\|W_3\|_\infty\|\nu\|\sqrt{g\log(2N)/N}`); N = the number of output entries of the
        layer (C_out H W for a convolution, out x tokens for a token model) and :math:`\|\nu\|` the largest norm
        of an input vector / patch;
      - the deterministic data-path bound :math:`L_{after}\,\|R \circledast \nu(s)\|_\infty` (1-Lipschitz
        activations, max-pool, average pool in the sup norm; Linear / Conv2d by their sup-norm operator bound,
        the max absolute row sum; BatchNorm in eval mode by max |gamma| / sqrt(var + eps); a residual block
        by 1 + Lip(branch));

      with ``measured`` = max over inputs of :math:`\Delta(s)/\text{bound}(s)` and ``bound`` = 1;
    * removing every layer's R at once against the telescoping sum
      :math:`\sum_\ell L^W_{after}(\ell)\,\|R_\ell \circledast \nu^S_\ell(s)\|_\infty` (deterministic;
      :math:`\nu^S_\ell` = the input of layer l when the layers before it are S) and the sum of the layers'
      :math:`\tau_N(s)` on the same inputs;
    * the accuracy corollary: :math:`|acc_W - acc_S| \le \#\{s : |\delta X(s)| \le 2\,\text{bound}(s)\}/|T|`
      with :math:`\delta X` the top-two logit margin.

    Where the architecture has a module with no sup-norm Lipschitz bound (attention, LayerNorm, GELU: the
    theorem's setting does not cover them) the change is measured and the record says that no bound is defined.

Entry points: :func:`run_model` (records and a per-layer table), :func:`plot_model` (one figure per model),
:func:`randomness_decay` (item 4 of issue 17: FC training on Fashion-MNIST / MNIST with and without L2), and
``python -m simulations.real_checks decay|fc`` for the committed results.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from theory.hypotheses import STATISTICS, datapath_test, split_at_edge, check_hypotheses
from theory.selfcheck import CheckRecord

__all__ = ["LEVEL", "LayerInfo", "ModelReport", "weight_layers", "lipschitz_after", "run_model", "plot_model",
           "write_report", "randomness_decay", "records_table"]

#: significance level of every hypothesis test (a record "held" when p >= LEVEL)
LEVEL = 0.01
#: relative slack on "measured ratio <= 1" for float32 logits (the head's data-path bound is an equality)
RTOL = 1e-4
HYPOTHESES = tuple(STATISTICS) + ("datapath",)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "model"


# --------------------------------------------------------------------------- the layers and the data path
def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every ``nn.Linear`` / ``nn.Conv2d`` (groups = 1), in registration order."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)]


def _matrix(m: nn.Module) -> torch.Tensor:
    w = m.weight.detach()
    return w.reshape(w.shape[0], -1)


@dataclass
class _Residual:
    branch: list
    shortcut: float


def _chain(model: nn.Module):
    """The model as a list of stages along the data path, or None when its structure is not known."""
    from prune.models.cifar_resnet import BasicBlock, CifarResNet
    from prune.models.fc import FCNet
    from prune.models.mnist_cnn import MnistCNN

    if isinstance(model, FCNet):
        out = []
        for layer in model.layers[:-1]:
            out += [layer, nn.ReLU()]
        return out + [model.layers[-1]]
    if isinstance(model, MnistCNN):
        return list(model.features) + [nn.Flatten()] + list(model.classifier)
    if isinstance(model, CifarResNet):
        out = [model.conv1, model.bn1, nn.ReLU()]
        for stage in (model.layer1, model.layer2, model.layer3):
            for blk in stage:
                if not isinstance(blk, BasicBlock):
                    return None
                out.append(_Residual([blk.conv1, blk.bn1, nn.ReLU(), blk.conv2, blk.bn2], 1.0))
                out.append(nn.ReLU())
        return out + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), model.linear]
    if isinstance(model, nn.Sequential):
        out = []
        for m in model:
            sub = _chain(m) if isinstance(m, nn.Sequential) else [m]
            if sub is None:
                return None
            out += sub
        return out
    return None


_ONE_LIP = (nn.ReLU, nn.MaxPool2d, nn.MaxPool1d, nn.Flatten, nn.Dropout, nn.Identity, nn.AdaptiveAvgPool2d,
            nn.AvgPool2d, nn.AdaptiveMaxPool2d)


def _lip(m) -> float | None:
    """Sup-norm (l_inf -> l_inf) Lipschitz constant of one stage; None when none is known."""
    if isinstance(m, _Residual):
        b = _lip_product(m.branch)
        return None if b is None else m.shortcut + b
    if isinstance(m, _ONE_LIP):
        return 1.0
    if isinstance(m, nn.LeakyReLU):
        return max(1.0, abs(m.negative_slope))
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        return float(_matrix(m).abs().sum(dim=1).max())
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and not m.training and m.running_var is not None:
        g = m.weight.detach() if m.weight is not None else torch.ones_like(m.running_var)
        return float((g.abs() / torch.sqrt(m.running_var + m.eps)).max())
    return None


def _lip_product(stages) -> float | None:
    out = 1.0
    for s in stages:
        v = _lip(s)
        if v is None:
            return None
        out *= v
    return out


def lipschitz_after(model: nn.Module) -> tuple[dict[int, float], str]:
    r"""{id(layer): :math:`L_{after}`}, the sup-norm Lipschitz constant from a weight layer's output to the logits.

    Returns ({}, reason) when the architecture has a stage with no such bound (attention, LayerNorm, GELU) or an
    unknown structure.
    """
    chain = _chain(model)
    if chain is None:
        kinds = sorted({type(m).__name__ for m in model.modules()
                        if type(m).__name__ in ("LayerNorm", "Attention", "MultiheadAttention", "GELU")})
        return {}, ("no bound defined: the theorem's Lipschitz argument does not cover "
                    + (", ".join(kinds) if kinds else f"the structure of {type(model).__name__}"))
    out: dict[int, float] = {}

    def walk(stages, tail: float) -> bool:
        suffix = tail
        for s in reversed(stages):
            if isinstance(s, (nn.Linear, nn.Conv2d)):
                out[id(s)] = suffix
            if isinstance(s, _Residual) and not walk(s.branch, suffix):
                return False
            v = _lip(s)
            if v is None:
                return False
            suffix *= v
        return True

    if not walk(chain, 1.0):
        bad = sorted({type(s).__name__ for s in chain if _lip(s) is None})
        return {}, f"no bound defined: no sup-norm Lipschitz constant for {', '.join(bad)}"
    return out, ""


# --------------------------------------------------------------------------- per-layer data-path quantities
def _output_entries(m: nn.Module, x: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """R applied to the layer input x (no bias), flattened per sample: (B, entries)."""
    if isinstance(m, nn.Conv2d):
        y = F.conv2d(x, R.reshape(m.weight.shape), None, m.stride, m.padding, m.dilation, m.groups)
    else:
        y = x @ R.T
    return y.reshape(x.shape[0], -1)


def _max_input_norm(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Largest norm of an input vector (token) or patch, per sample: (B,)."""
    if isinstance(m, nn.Conv2d):
        ones = torch.ones((1,) + tuple(m.weight.shape[1:]), dtype=x.dtype)
        sq = F.conv2d(x * x, ones, None, m.stride, m.padding, m.dilation)
        return sq.reshape(x.shape[0], -1).amax(dim=1).clamp_min(0).sqrt()
    return x.reshape(x.shape[0], -1, x.shape[-1]).norm(dim=-1).amax(dim=1)


def _input_vectors(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every input vector the matrix multiplies: patches (conv) or tokens / rows: (count, M)."""
    if isinstance(m, nn.Conv2d):
        cols = F.unfold(x, m.kernel_size, m.dilation, m.padding, m.stride)        # (B, M, L)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


@dataclass
class LayerInfo:
    """One weight layer: its split, hypothesis p-values, data-path test and conclusion numbers."""

    name: str
    kind: str
    shape: tuple
    k: int
    sigma2: float
    n_out: int = 0
    L_after: float | None = None
    pvalues: dict = field(default_factory=dict)
    statistics: dict = field(default_factory=dict)
    null_means: dict = field(default_factory=dict)
    datapath: dict = field(default_factory=dict)
    conclusions: dict = field(default_factory=dict)


@dataclass
class ModelReport:
    """Records (the ``rmt verify`` schema) and the per-layer table of one model."""

    model: str
    dataset: str
    records: list
    layers: list
    summary: dict
    seconds: float

    def as_dict(self) -> dict:
        return dict(model=self.model, dataset=self.dataset, seconds=self.seconds, summary=self.summary,
                    layers=[vars(x) for x in self.layers], records=[r.as_dict() for r in self.records])


def _record(name, statement, bound, measured, held, trials, seed, details) -> CheckRecord:
    return CheckRecord(name=name, statement=statement, bound=float(bound), measured=float(measured), held=bool(held),
                       trials=int(trials), seed=seed, details=details, regime="real")


def _margin(logits: torch.Tensor) -> torch.Tensor:
    top2 = logits.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def _forward_logits(model: nn.Module, head: nn.Module, x: torch.Tensor, batch: int, hooks=()) -> torch.Tensor:
    """Outputs of ``head`` (the last weight layer) over x, with extra forward hooks attached."""
    outs = []
    handles = [head.register_forward_hook(lambda m, i, o: outs.append(o.detach().reshape(o.shape[0], -1)))]
    handles += [m.register_forward_hook(h) for m, h in hooks]
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                model(x[i:i + batch])
    finally:
        for h in handles:
            h.remove()
    return torch.cat(outs)


class _swap:
    """Context manager: layers' weights replaced by given matrices, restored afterwards."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __enter__(self):
        self.saved = [(m, m.weight.detach().clone()) for m, _ in self.pairs]
        with torch.no_grad():
            for m, W in self.pairs:
                m.weight.copy_(W.reshape(m.weight.shape))

    def __exit__(self, *exc):
        with torch.no_grad():
            for m, w in self.saved:
                m.weight.copy_(w)


def run_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, name: str = "model", dataset: str = "",
              draws: int = 200, path_inputs: int = 256, level: float = LEVEL, alpha: float = 0.2, beta: float = 0.1,
              seed: int = 0, batch: int = 250, progress: bool = False) -> ModelReport:
    """Every hypothesis test and conclusion check of the module docstring on ``model`` and the inputs (x, y).

    The model is not changed (weights swapped in place are restored; it is put in eval mode and back).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"x and y must hold the same number (>= 2) of inputs, got {len(x)} and {len(y)}")
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        return _run(model, x.float(), y, name, dataset, draws, path_inputs, level, alpha, beta, seed, batch,
                    progress, t0)
    finally:
        model.train(was_training)


def _run(model, x, y, name, dataset, draws, path_inputs, level, alpha, beta, seed, batch, progress, t0):
    layers = weight_layers(model)
    if not layers:
        raise ValueError(f"model {name!r} has no nn.Linear / nn.Conv2d weight layer")
    head = layers[-1][1]
    lips, no_bound = lipschitz_after(model)
    infos, splits, records = [], {}, []
    it = layers
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(layers, desc=f"{name}: hypotheses", leave=False)
    dtype = next(model.parameters()).dtype
    for lname, m in it:
        W = _matrix(m).double()
        info = LayerInfo(name=lname, kind=type(m).__name__, shape=tuple(W.shape), k=-1, sigma2=float("nan"),
                         L_after=lips.get(id(m)))
        try:
            sp = split_at_edge(W.numpy(), alpha, beta)
            hr = check_hypotheses(W.numpy(), alpha, beta, draws=draws, seed=seed, split=sp)
        except ValueError as exc:   # too small a matrix, or no bulk left
            info.conclusions["skipped"] = str(exc)
            infos.append(info)
            continue
        info.k, info.sigma2 = sp.k, sp.sigma2
        info.pvalues, info.statistics, info.null_means = dict(hr.pvalues), dict(hr.statistics), dict(hr.null_means)
        splits[lname] = (m, torch.from_numpy(sp.S).to(dtype), torch.from_numpy(sp.R).to(dtype), sp)
        infos.append(info)
    by_name = {i.name: i for i in infos}

    # base pass: logits, per-layer ||R nu||_inf, max input norm, output size, sampled input vectors
    gen = torch.Generator().manual_seed(seed)
    acc = {ln: dict(rnu=[], nrm=[], vecs=[]) for ln in splits}

    def hook_for(ln, store_vecs: bool, key_rnu="rnu", key_nrm="nrm"):
        m, S, R, sp = splits[ln]

        def hook(mod, inp, out):
            xin = inp[0].detach()
            ent = _output_entries(mod, xin, R)
            acc[ln][key_rnu].append(ent.abs().amax(dim=1))
            acc[ln][key_nrm].append(_max_input_norm(mod, xin))
            acc[ln]["n_out"] = ent.shape[1]
            if store_vecs and sum(len(v) for v in acc[ln]["vecs"]) < path_inputs:
                v = _input_vectors(mod, xin)
                v = v[v.norm(dim=1) > 0]
                take = torch.randperm(len(v), generator=gen)[:path_inputs]
                acc[ln]["vecs"].append(v[take])
        return hook

    logits_W = _forward_logits(model, head, x, batch, [(splits[ln][0], hook_for(ln, True)) for ln in splits])
    pred_W = logits_W.argmax(1)
    acc_W = float((pred_W == y).float().mean())
    margin = _margin(logits_W)
    n = len(x)
    for ln, (m, S, R, sp) in splits.items():
        info = by_name[ln]
        rnu, nrm = torch.cat(acc[ln]["rnu"]), torch.cat(acc[ln]["nrm"])
        info.n_out = int(acc[ln]["n_out"])
        vecs = torch.cat(acc[ln]["vecs"])[:path_inputs].double().numpy()
        if len(vecs) >= 2:
            dp = datapath_test(sp.R, vecs, sp.sigma2, draws=draws, seed=seed)
            info.datapath = dict(statistic=dp.statistic, pvalue=dp.pvalue, null_mean=dp.null_mean,
                                 prediction=dp.prediction, frac_above=dp.frac_above, max_ratio=dp.max_ratio,
                                 inputs=dp.inputs)
            info.pvalues["datapath"] = dp.pvalue
        # one layer's R removed
        with _swap([(m, S)]):
            logits_S = _forward_logits(model, head, x, batch)
        delta = (logits_S - logits_W).abs().amax(dim=1)
        acc_S = float((logits_S.argmax(1) == y).float().mean())
        c = dict(delta_max=float(delta.max()), delta_median=float(delta.median()), acc_W=acc_W, acc_S=acc_S,
                 acc_change=abs(acc_W - acc_S), flips=int((logits_S.argmax(1) != pred_W).sum()))
        tau_scale = 2.0 * math.sqrt(2.0 * sp.sigma2 * math.log(2 * info.n_out))
        if info.L_after is not None:
            tau = info.L_after * tau_scale * nrm
            det = info.L_after * rnu
            c.update(tau_median=float(tau.median()), det_median=float(det.median()),
                     ratio_tau=float((delta / tau).max()), ratio_det=float((delta / det.clamp_min(1e-30)).max()),
                     count_tau=float((margin.abs() <= 2 * tau).float().mean()),
                     count_det=float((margin.abs() <= 2 * det).float().mean()))
        c["rnu_over_pred"] = float((rnu / (0.5 * tau_scale * nrm)).max())
        info.conclusions.update(c)

    # every layer's R removed at once; the telescoping bound's inputs nu^S come from the same pass
    all_pairs = [(m, S) for (m, S, R, sp) in splits.values()]
    for ln in splits:
        acc[ln]["rnuS"], acc[ln]["nrmS"] = [], []
    with _swap(all_pairs):
        logits_all = _forward_logits(model, head, x, batch,
                                     [(splits[ln][0], hook_for(ln, False, "rnuS", "nrmS")) for ln in splits])
    delta_all = (logits_all - logits_W).abs().amax(dim=1)
    acc_all = float((logits_all.argmax(1) == y).float().mean())
    summary = dict(model=name, dataset=dataset, inputs=n, acc_W=acc_W, acc_all_S=acc_all,
                   delta_all_max=float(delta_all.max()), delta_all_median=float(delta_all.median()),
                   no_bound=no_bound, draws=draws, level=level, seed=seed)
    if lips:
        det_all = sum(by_name[ln].L_after * torch.cat(acc[ln]["rnuS"]) for ln in splits)
        tau_all = sum(by_name[ln].L_after * 2.0 * math.sqrt(2.0 * splits[ln][3].sigma2 * math.log(
            2 * by_name[ln].n_out)) * torch.cat(acc[ln]["nrmS"]) for ln in splits)
        summary.update(ratio_det_all=float((delta_all / det_all.clamp_min(1e-30)).max()),
                       ratio_tau_all=float((delta_all / tau_all).max()),
                       det_all_median=float(det_all.median()), tau_all_median=float(tau_all.median()),
                       count_det_all=float((margin.abs() <= 2 * det_all).float().mean()),
                       count_tau_all=float((margin.abs() <= 2 * tau_all).float().mean()))

    # records
    for info in infos:
        pre = f"{name}:{info.name}"
        if "skipped" in info.conclusions:
            records.append(_record(f"{pre}:skipped", "layer not tested", float("nan"), float("nan"), False, 0, seed,
                                   info.conclusions["skipped"]))
            continue
        base = f"{info.kind} {info.shape[0]}x{info.shape[1]}, k={info.k} spikes, sigma2={info.sigma2:.3g}"
        for stat, desc in STATISTICS.items():
            p = info.pvalues[stat]
            tw = " (TW closed form)" if stat == "tw_edge" else f" (null mean {info.null_means[stat]:.4g}, {draws} draws)"
            records.append(_record(f"{pre}:hyp:{stat}", f"R hypothesis: {desc}; p-value >= {level}", level, p,
                                   p >= level, draws, seed, f"stat {info.statistics[stat]:.4g}{tw}; {base}"))
        if info.datapath:
            d = info.datapath
            records.append(_record(
                f"{pre}:hyp:datapath", "R independent of the data path: mean over real inputs nu of "
                f"||R nu||_inf/(sigma ||nu||) vs its Gaussian null; p-value >= {level}", level, d["pvalue"],
                d["pvalue"] >= level, draws, seed,
                f"stat {d['statistic']:.3f} (null mean {d['null_mean']:.3f}; sqrt(2 log 2N) = {d['prediction']:.3f}); "
                f"{100 * d['frac_above']:.1f}% of {d['inputs']} inputs above sqrt(2 sigma^2 log 2N)||nu||, "
                f"max ratio {d['max_ratio']:.2f}; {base}"))
        c = info.conclusions
        meas = f"max Delta {c['delta_max']:.3g} (median {c['delta_median']:.3g}) over {n} test inputs"
        if info.L_after is None:
            records.append(_record(f"{pre}:logit", "logit change when R is removed (measured only)", float("nan"),
                                   c["delta_max"], False, n, seed, f"{no_bound}; {meas}; acc {acc_W:.4f} -> "
                                   f"{c['acc_S']:.4f}"))
            continue
        records.append(_record(f"{pre}:logit_tau", "key lemma: ||X_S(s) - X_W(s)||_inf <= tau_N(s) = 2 L_after "
                               "sqrt(2 sigma^2 log 2N) ||nu(s)|| for every test input; measured = max ratio", 1.0,
                               c["ratio_tau"], c["ratio_tau"] <= 1.0 + RTOL, n, seed,
                               f"{meas}; median tau {c['tau_median']:.3g}; L_after {info.L_after:.3g}, N {info.n_out}"))
        records.append(_record(f"{pre}:logit_det", "data-path bound: ||X_S(s) - X_W(s)||_inf <= L_after ||R nu(s)||_inf;"
                               " measured = max ratio", 1.0, c["ratio_det"], c["ratio_det"] <= 1.0 + RTOL, n, seed,
                               f"{meas}; median bound {c['det_median']:.3g}"))
        records.append(_record(f"{pre}:accuracy", "accuracy corollary: |acc_W - acc_S| <= #{s: |margin| <= 2 tau_N(s)}"
                               "/|T|", c["count_tau"], c["acc_change"], c["acc_change"] <= c["count_tau"], n, seed,
                               f"acc {acc_W:.4f} -> {c['acc_S']:.4f}, {c['flips']} predictions changed; with the "
                               f"data-path bound the count is {c['count_det']:.4f}"))
    s = summary
    meas = f"max Delta {s['delta_all_max']:.3g} (median {s['delta_all_median']:.3g}); acc {acc_W:.4f} -> {acc_all:.4f}"
    if lips:
        records.append(_record(f"{name}:all:logit_det", "every layer's R removed: ||X_S - X_W||_inf <= sum_l L_after(l)"
                               " ||R_l nu_l^S(s)||_inf (telescoping); measured = max ratio", 1.0, s["ratio_det_all"],
                               s["ratio_det_all"] <= 1.0 + RTOL, n, seed, f"{meas}; median bound {s['det_all_median']:.3g}"))
        records.append(_record(f"{name}:all:logit_tau", "every layer's R removed: ||X_S - X_W||_inf <= sum_l tau_N,l(s)"
                               " on the inputs nu_l^S; measured = max ratio", 1.0, s["ratio_tau_all"],
                               s["ratio_tau_all"] <= 1.0 + RTOL, n, seed, f"{meas}; median bound {s['tau_all_median']:.3g}"))
        records.append(_record(f"{name}:all:accuracy", "accuracy corollary, every R removed: |acc_W - acc_S| <= "
                               "#{s: |margin| <= 2 sum_l tau_N,l(s)}/|T|", s["count_tau_all"], abs(acc_W - acc_all),
                               abs(acc_W - acc_all) <= s["count_tau_all"], n, seed,
                               f"acc {acc_W:.4f} -> {acc_all:.4f}; with the data-path bound the count is "
                               f"{s['count_det_all']:.4f}"))
    else:
        records.append(_record(f"{name}:all:logit", "every layer's R removed: logit change (measured only)",
                               float("nan"), s["delta_all_max"], False, n, seed, f"{no_bound}; {meas}"))
    return ModelReport(model=name, dataset=dataset, records=records, layers=infos, summary=summary,
                       seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- output
def records_table(records) -> str:
    """The records as the text table of ``rmt verify`` (p-values for hypotheses, ratios for conclusions)."""
    rows = [("check", "bound", "measured", "held", "details")]
    for r in records:
        rows.append((r.name, f"{r.bound:.3g}", f"{r.measured:.3g}", "yes" if r.held else "no", r.details))
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(wi) for c, wi in zip(row[:4], w)) + "  " + row[4] for row in rows]
    lines.insert(1, "-" * (sum(w) + 8 + len("details")))
    return "\n".join(lines)


def plot_model(report: ModelReport, path: str | Path) -> Path:
    """One figure per model: hypothesis p-values per layer (left) and the logit change against its bounds (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    layers = [i for i in report.layers if i.pvalues]
    names = [f"{i.name} ({i.shape[0]}x{i.shape[1]}, k={i.k})" for i in layers]
    P = np.array([[i.pvalues.get(h, np.nan) for h in HYPOTHESES] for i in layers])
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(layers) + 2.6),
                             gridspec_kw=dict(width_ratios=[1.25, 1]))
    ax = axes[0]
    floor = 1.0 / (report.summary["draws"] + 1)            # the smallest Monte-Carlo p-value
    im = ax.imshow(np.clip(P, floor, 1), cmap="RdYlGn", norm=LogNorm(floor, 1), aspect="auto")
    for (r, c), v in np.ndenumerate(P):
        if np.isfinite(v):
            ax.text(c, r, f"{v:.2g}" if v > floor * 1.001 else f"<={floor:.2g}", ha="center", va="center", fontsize=7,
                    fontweight="bold" if v < report.summary["level"] else "normal")
    ax.set_xticks(range(len(HYPOTHESES)), HYPOTHESES, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(layers)), names, fontsize=7)
    ax.set_title(f"{report.model}: p-values of R's hypotheses (bold: rejected at {report.summary['level']})",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="p-value")
    ax = axes[1]
    y = np.arange(len(layers))
    delta = [i.conclusions.get("delta_max", np.nan) for i in layers]
    ax.scatter(delta, y, marker="o", color="k", label="measured max ||X_S - X_W||_inf", zorder=3)
    if any(i.L_after is not None for i in layers):
        tau = [i.conclusions.get("tau_median", np.nan) for i in layers]
        det = [i.conclusions.get("det_median", np.nan) for i in layers]
        dmed = [i.conclusions.get("delta_median", np.nan) for i in layers]
        ax.scatter(dmed, y, marker="|", s=120, color="0.4", label="measured median", zorder=3)
        ax.scatter(tau, y, marker=">", color="tab:red", label="tau_N(s), median")
        ax.scatter(det, y, marker="s", color="tab:blue", label="data-path bound, median")
    else:
        ax.text(0.5, 0.02, report.summary.get("no_bound", ""), transform=ax.transAxes, ha="center", fontsize=7,
                wrap=True)
    ax.set_xscale("log")
    ax.set_yticks(y, [i.name for i in layers], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("logit change (sup norm) when the layer's R is removed")
    s = report.summary
    ax.set_title(f"{report.dataset}, {s['inputs']} test inputs; all R removed: acc {s['acc_W']:.4f} -> "
                 f"{s['acc_all_S']:.4f}", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def write_report(report: ModelReport, out: str | Path) -> list[Path]:
    """<out>/<model>.json (records, layers, summary), <model>_records.csv, <model>.png."""
    import csv

    from prune.io import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = _slug(report.model)
    js = atomic_write_text(json.dumps(report.as_dict(), indent=1, default=float), out / f"{stem}.json")
    cp = out / f"{stem}_records.csv"
    with open(cp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CheckRecord.__dataclass_fields__))
        w.writeheader()
        for r in report.records:
            w.writerow(r.as_dict())
    return [js, cp, plot_model(report, out / f"{stem}.png")]


# --------------------------------------------------------------------------- randomness decay (issue 17 item 4)
def _a_bar(W1: torch.Tensor, W3: torch.Tensor, x: torch.Tensor) -> float:
    r""":math:`\bar a_N = (4\sqrt2/|T|)\sum_s \|W_3\|_\infty \|W_1 s\|_2 \sqrt{\log(2N)/N}` (papers.md 2.3)."""
    N = W1.shape[0]
    a = W3.abs().sum(dim=1).max() * (x @ W1.T).norm(dim=1) * math.sqrt(math.log(2 * N) / N)
    return float(4 * math.sqrt(2) * a.mean())


def _stationarity(model, x, y, l2: float, R2: torch.Tensor) -> float:
    r""":math:`\varepsilon_N = \max(0, \langle\nabla_{W_2} L, R_2\rangle)`, the one-sided slack of L along
    :math:`W_2(1-h) = S_2 + (1-h) R_2`, L = NLL + l2 sum ||W||^2 on (x, y)."""
    W2 = model.layers[1].weight
    model.zero_grad(set_to_none=True)
    loss = F.nll_loss(model(x), y) + l2 * (W2 ** 2).sum()
    (g,) = torch.autograd.grad(loss, [W2])
    return max(0.0, float((g.double() * R2).sum()))


def randomness_decay(dataset: str = "fashion-mnist", sizes=(784, 256, 256, 10), l2_values=(0.0, 5e-4),
                     epochs: int = 6, n_train: int = 6000, n_test: int = 2000, draws: int = 100, seed: int = 0,
                     lr: float = 0.01, progress: bool = False) -> tuple[list[dict], dict]:
    r"""Train FC nets (:func:`prune.training.train`, SGD + L2 ``l2``) and track the middle layer's R over epochs.

    Per epoch and run: BEMA's :math:`\hat\sigma^2` of :math:`W_2`, :math:`\|R_2\|_F^2`, the hypothesis
    p-values of R_2 (and of W_1, W_3), against the randomness-decay theorem's bound
    :math:`\|R_2^*\|_F^2 \le (\bar a_N + \varepsilon_N)/(2\lambda)` (papers.md 2.3; no bound for lambda = 0).
    Returns (rows, trained models by l2).
    """
    import tempfile

    from prune.data import load_idx_dataset
    from prune.models.fc import FCNet
    from prune.training import TrainConfig, image_tensors, train

    xi, yi = load_idx_dataset(dataset, "train")
    xt, yt = load_idx_dataset(dataset, "test")
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.choice(len(yi), n_train, replace=False))
    te = np.sort(rng.choice(len(yt), n_test, replace=False))
    train_data, test_data = image_tensors(xi[tr], yi[tr]), image_tensors(xt[te], yt[te])
    rows, models = [], {}
    for l2 in l2_values:
        cfg = TrainConfig(epochs=epochs, lr=lr, l2=l2, seed=seed, prune="none", lr_decay_every=4)
        net = FCNet(list(sizes), seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            ck = Path(tmp) / "run.pt"
            for epoch in range(0, epochs + 1):
                if epoch > 0:
                    res = train(net, train_data, test_data, cfg, checkpoint=ck, resume=True, stop_after=epoch,
                                progress=False)
                    model, hist = res.model, res.history[-1]
                else:
                    model, hist = net, dict(test_acc=float("nan"), train_loss=float("nan"))
                W1, W2, W3 = (model.layers[i].weight.detach().double() for i in range(3))
                sp = split_at_edge(W2.numpy())
                R2 = torch.from_numpy(sp.R)
                a_bar = _a_bar(W1.float(), W3.float(), train_data[0][:2000]).__float__()
                eps = _stationarity(model, train_data[0][:2000], train_data[1][:2000], l2, R2)
                bound = (a_bar + eps) / (2 * l2) if l2 > 0 else float("inf")
                row = dict(dataset=dataset, l2=l2, epoch=epoch, test_acc=hist["test_acc"],
                           train_loss=hist["train_loss"], sigma2=sp.sigma2, k=sp.k,
                           R_frob2=float((R2 ** 2).sum()), a_bar=a_bar, eps=eps, bound=bound)
                for lname, W in (("W1", W1), ("W2", W2), ("W3", W3)):
                    try:
                        hr = check_hypotheses(W.numpy(), draws=draws, seed=seed)
                        for stat, p in hr.pvalues.items():
                            row[f"{lname}_{stat}"] = p
                        row[f"{lname}_sigma2"], row[f"{lname}_k"] = hr.sigma2, hr.k
                    except ValueError:
                        pass
                rows.append(row)
                if progress:
                    print(f"  {dataset} l2={l2} epoch {epoch}: acc {row['test_acc']:.4f} sigma2 {sp.sigma2:.3g} "
                          f"||R||_F^2 {row['R_frob2']:.3g} bound {bound:.3g}", flush=True)
            models[l2] = model
    return rows, models


def decay_records(rows: list[dict], seed: int = 0) -> list[CheckRecord]:
    """One record per run (last epoch): ||R_2||_F^2 <= (a_N + eps_N)/(2 lambda); lambda = 0 reports no bound."""
    out = []
    for l2 in sorted({r["l2"] for r in rows}):
        rs = [r for r in rows if r["l2"] == l2]
        last, first = rs[-1], rs[0]
        trend = (f"sigma2 {first['sigma2']:.3g} -> {last['sigma2']:.3g}, ||R||_F^2 {first['R_frob2']:.3g} -> "
                 f"{last['R_frob2']:.3g} over {last['epoch']} epochs; a_N {last['a_bar']:.3g}, eps_N {last['eps']:.3g}")
        if l2 > 0:
            out.append(_record(f"{last['dataset']}-fc:decay:l2={l2:g}", "randomness decay: ||R_2*||_F^2 <= "
                               "(a_N + eps_N)/(2 lambda) at the end of training", last["bound"], last["R_frob2"],
                               last["R_frob2"] <= last["bound"], len(rs), seed, trend))
        else:
            out.append(_record(f"{last['dataset']}-fc:decay:l2=0", "randomness decay without L2: no bound (lambda = 0)",
                               float("inf"), last["R_frob2"], False, len(rs), seed, trend))
    return out


def _decay_plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for l2 in sorted({r["l2"] for r in rows}):
        rs = [r for r in rows if r["l2"] == l2]
        e = [r["epoch"] for r in rs]
        axes[0].plot(e, [r["sigma2"] for r in rs], "o-", label=f"lambda={l2:g}")
        axes[1].plot(e, [r["R_frob2"] for r in rs], "o-", label=f"||R2||_F^2, lambda={l2:g}")
        if l2 > 0:
            axes[1].plot(e, [r["bound"] for r in rs], "--", label=f"bound (a_N+eps_N)/(2 lambda), lambda={l2:g}")
        for stat, mk in (("mp_ks", "o"), ("row_var", "s"), ("kurtosis", "^"), ("deloc_in", "v")):
            axes[2].plot(e, [max(r.get(f"W2_{stat}", np.nan), 1e-3) for r in rs], marker=mk, ls="-" if l2 else ":",
                         label=f"{stat}, lambda={l2:g}")
    axes[0].set_ylabel("BEMA sigma^2 of W2")
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[2].axhline(LEVEL, color="k", lw=0.8)
    axes[2].set_ylabel("p-value (W2's R)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6.5)
        ax.grid(alpha=0.3)
    fig.suptitle(f"randomness decay on {rows[0]['dataset']}, FC {rows[0].get('sizes', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m simulations.real_checks decay [--out DIR]``: the FC training runs of item 4 and the checks of
    their trained nets (written as ``fc-<dataset>-l2=<l2>`` reports)."""
    ap = argparse.ArgumentParser(prog="python -m simulations.real_checks")
    ap.add_argument("what", choices=("decay",))
    ap.add_argument("--out", default="results/real_checks")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--limit", type=int, default=1000, help="test inputs of the conclusion checks")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, models = randomness_decay(args.dataset, epochs=args.epochs, n_train=args.n_train, seed=args.seed,
                                    progress=True)
    from paper_figures.registry import write_csv

    write_csv(out / f"decay_{args.dataset}.csv", rows)
    _decay_plot(rows, out / f"decay_{args.dataset}.png")
    recs = decay_records(rows, args.seed)
    from prune.evaluate import load_inputs

    x, y = load_inputs(args.dataset, "test", ((0.5,), (0.5,)), limit=args.limit, seed=args.seed)
    for l2, model in models.items():
        rep = run_model(model, x, y, name=f"fc-{args.dataset}-l2={l2:g}", dataset=args.dataset, seed=args.seed)
        write_report(rep, out)
        print(records_table(rep.records))
    (out / f"decay_{args.dataset}.json").write_text(json.dumps([r.as_dict() for r in recs], indent=1))
    print(records_table(recs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def _load(spec: str) -> tuple[nn.Module, str | None, tuple | str | None]:
    """(model, data set, normalisation) for any MODEL form the CLI accepts (:func:`prune.models.resolve.resolve_model`)."""
    from prune.models.resolve import resolve_model

    model, inputs = resolve_model(spec)
    return model, inputs.dataset, inputs.normalization


def verify_model(spec: str, *, limit: int | None = 1000, draws: int = 200, seed: int = 0, out: str | None = None,
                 progress: bool = True) -> ModelReport:
    """``rmt verify --model SPEC``: load the model, its real test inputs (``eval_spec``), run :func:`run_model`."""
    from prune.evaluate import load_inputs

    model, dataset, norm = _load(spec)
    norm = None if norm == "none" else norm
    if dataset is None:
        raise ValueError(f"--model {spec!r}: no data set is recorded for this model, so its conclusions cannot be "
                         "checked on real inputs")
    x, y = load_inputs(dataset, "test", norm, limit=limit, seed=seed)
    name = Path(spec).stem if (Path(spec).suffix and Path(spec).exists()) else str(spec)
    rep = run_model(model, x, y, name=_slug(name), dataset=dataset, draws=draws, seed=seed, progress=progress)
    if out is not None:
        write_report(rep, out)
    return rep
