r"""The theorems' hypotheses and conclusions on trained networks (issue 17): which hold, layer by layer.

Reads the reports of ``rmt verify --model MODEL --out results/real_checks`` (and the FC nets of
``python -m simulations.real_checks decay``) from ``results/real_checks/*.json``; when none is there it runs the
MNIST CNN on a small subset. Left: for every weight layer of every model, whether each hypothesis on R (W = S + R
split at the BEMA edge) is rejected at level 0.01. Right: the measured logit change when the layer's R is
removed against the key lemma's :math:`\tau_N(s)` and the deterministic data-path bound (medians over the test
inputs); a point below the diagonal is a conclusion that held.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import style
from .registry import FigureContext, FigureResult, results_root

NAME = "real_checks"
TITLE = "The pruning theorems on trained networks: hypotheses per layer, logit change against the bound"
CAPTION = ("On trained networks most hypotheses on the random part R fail (heavy tails, heteroscedastic rows, "
           "localized vectors, dependence on the data path) for the large layers, yet removing R changes the "
           "logits by less than the deterministic data-path bound, which is itself orders of magnitude loose.")
SOURCE = "papers.md 1.5 (key lemma, accuracy corollary), 2.3; issue 17"
HYPS = ("mp_ks", "tw_edge", "row_var", "col_var", "kurtosis", "deloc_out", "deloc_in", "datapath")
COLUMNS = ("model", "layer", "shape", "k", *[f"p_{h}" for h in HYPS], "delta_max", "delta_median", "tau_median",
           "det_median")


def _reports(ctx: FigureContext) -> tuple[list[dict], str]:
    folder = results_root() / "real_checks"
    found = sorted(p for p in folder.glob("*.json") if not p.name.endswith("_records.json")
                   and not p.name.startswith("decay")) if folder.is_dir() else []
    reps = [json.loads(p.read_text()) for p in found]
    reps = [r for r in reps if isinstance(r, dict) and "layers" in r]
    if reps and not ctx.recompute:
        return reps, f"results/real_checks/ ({len(reps)} models)"
    from simulations.real_checks import verify_model

    rep = verify_model("mnist-cnn", limit=300 if ctx.quick else 1000, draws=100 if ctx.quick else 200,
                       seed=ctx.seed, out=ctx.cache_dir(NAME), progress=ctx.progress)
    return [rep.as_dict()], "computed now (mnist-cnn)"


def make(ctx: FigureContext) -> FigureResult:
    reps, source = _reports(ctx)
    rows = []
    for rep in reps:
        for L in rep["layers"]:
            if not L.get("pvalues"):
                continue
            c = L.get("conclusions", {})
            rows.append(dict(model=rep["model"], layer=L["name"], shape="x".join(map(str, L["shape"])), k=L["k"],
                             **{f"p_{h}": L["pvalues"].get(h, float("nan")) for h in HYPS},
                             delta_max=c.get("delta_max", float("nan")),
                             delta_median=c.get("delta_median", float("nan")),
                             tau_median=c.get("tau_median", float("nan")),
                             det_median=c.get("det_median", float("nan"))))
    level = 0.01
    fig, axes = style.figure(ncols=2, width=6.2, height=max(3.6, 0.16 * len(rows) + 1.6))
    ax = axes[0]
    P = np.array([[r[f"p_{h}"] for h in HYPS] for r in rows])
    held = np.where(np.isnan(P), np.nan, (P >= level).astype(float))
    from matplotlib.colors import ListedColormap

    ax.imshow(held, cmap=ListedColormap(["#d7301f", "#1a9850"]), vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    ax.set_xticks(range(len(HYPS)), HYPS, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r['model']}: {r['layer']} ({r['shape']})" for r in rows], fontsize=5.5)
    ax.set_title(f"hypotheses on R: green = not rejected at {level}, red = rejected", fontsize=8)
    bounds = [r for r in rows if np.isfinite(r["tau_median"])]
    ax = axes[1]
    models = sorted({r["model"] for r in bounds})
    for i, m in enumerate(models):
        rs = [r for r in bounds if r["model"] == m]
        col = style.COLORS[i % len(style.COLORS)]
        ax.scatter([r["det_median"] for r in rs], [r["delta_median"] for r in rs], color=col, marker="s", s=14,
                   label=f"{m}: vs data-path bound")
        ax.scatter([r["tau_median"] for r in rs], [r["delta_median"] for r in rs], color=col, marker=">", s=14,
                   facecolors="none", label=f"{m}: vs tau_N")
    if bounds:
        lo = min(min(r["delta_median"] for r in bounds), 1e-2)
        hi = max(max(r["tau_median"] for r in bounds), max(r["det_median"] for r in bounds))
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, label="measured = bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bound (median over test inputs)")
    ax.set_ylabel("measured logit change, median")
    ax.set_title("one layer's R removed", fontsize=8)
    ax.legend(fontsize=5.5, loc="upper left")
    nob = sorted({rep["model"] for rep in reps if rep.get("summary", {}).get("no_bound")})
    notes = [f"data: {source}"]
    if nob:
        notes.append(f"no bound defined (attention / LayerNorm) for: {', '.join(nob)}; hypotheses only")
    rej = np.nanmean(P < level, axis=0) if len(rows) else []
    notes.append("fraction of layers rejecting each hypothesis: " +
                 ", ".join(f"{h} {v:.2f}" for h, v in zip(HYPS, rej)))
    return FigureResult(rows=rows, figure=fig, notes=notes, data_source=source)
