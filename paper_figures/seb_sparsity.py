r"""RMT-guided layer budgets against magnitude pruning: the successor's ViT-B/16 table beside our matched-budget runs.

Left: the successor paper's ViT-B/16 numbers (``reference/seb_vitb.json``, transcribed). Right: ours, read from
``benchmarks/results/sparsity.csv`` (``benchmarks/sparsity.py``; every method at exactly the same number of zeros,
mean and min..max over seeds).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import style  # noqa: F401  (the project's matplotlib style)
from .registry import Comparison, FigureContext, FigureResult, ref_source, reference

NAME = "seb_sparsity"
TITLE = "Spectral layer budgets (SEB/SER/Hybrid) vs magnitude pruning at matched sparsity"
CAPTION = ("The successor's ViT-B/16 gains of SEB over global magnitude pruning without fine-tuning are set beside "
           "our matched-budget measurements, where the same rules are applied to our own small ViT and ResNet-56.")
SOURCE = "successor paper (arXiv 2606.02608) ESM_2 SEB tables; benchmarks/sparsity.py"
COLUMNS = ("source", "model", "method", "sparsity", "finetuned", "accuracy_pct", "min_pct", "max_pct", "n")
CSV = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "sparsity.csv"


def _ours() -> list[dict]:
    if not CSV.exists():
        return []
    groups: dict = {}
    with open(CSV) as f:
        for r in csv.DictReader(f):
            key = (r["model"], r["method"], float(r["sparsity"]), r["finetuned"] == "True")
            groups.setdefault(key, []).append(100 * float(r["accuracy"]))
    return [dict(source="ours", model=m, method=meth, sparsity=s, finetuned=ft, accuracy_pct=float(np.mean(a)),
                 min_pct=float(np.min(a)), max_pct=float(np.max(a)), n=len(a))
            for (m, meth, s, ft), a in sorted(groups.items())]


def make(ctx: FigureContext) -> FigureResult:
    import matplotlib.pyplot as plt

    ref = reference("seb_vitb")
    rows = []
    for ft_key, ft in (("no_ft", False), ("ft", True)):
        for meth, vals in ref[ft_key].items():
            rows += [dict(source="successor", model="vit-b16", method=meth, sparsity=s, finetuned=ft, accuracy_pct=v,
                          min_pct=v, max_pct=v, n=1) for s, v in zip(ref["sparsity"], vals)]
    ours = _ours()
    rows += ours
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    for meth, vals in ref["no_ft"].items():
        ax.plot(ref["sparsity"], vals, marker="o", label=f"{meth} (no FT)")
    for meth, vals in ref["ft"].items():
        ax.plot(ref["sparsity"], vals, marker=".", ls=":", label=f"{meth} (FT)")
    ax.set_title("successor: ViT-B/16, ImageNet")
    for ax, model in zip(axes[1:], ("vit-mnist", "resnet56")):
        for meth in sorted({r["method"] for r in ours if r["model"] == model}):
            pts = sorted((r["sparsity"], r["accuracy_pct"], r["min_pct"], r["max_pct"]) for r in ours
                         if r["model"] == model and r["method"] == meth and not r["finetuned"])
            if pts:
                x, y, lo, hi = map(np.array, zip(*pts))
                ax.errorbar(x, y, yerr=[y - lo, hi - y], marker="o", ms=3, capsize=2,
                            ls="--" if meth.startswith("magnitude") else "-", label=meth)
        ax.set_title(f"ours: {model}, no fine-tune")
    for ax in axes:
        ax.set_xlabel("sparsity")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    comps = [Comparison(NAME, "ViT-B/16 SEB - magnitude at s=0.60, no FT (points)", 61.57 - 46.42,
                        _gain(ours, "vit-mnist", 0.6), ref_source(ref),
                        "ours: our ViT on MNIST, best RMT-guided method minus the better magnitude")]
    notes = [] if ours else ["benchmarks/results/sparsity.csv missing: run benchmarks/sparsity.py"]
    return FigureResult(rows=rows, figure=fig, comparisons=comps, notes=notes,
                        data_source=str(CSV) if ours else "reference only")


def _gain(ours, model, s) -> float:
    acc = {r["method"]: r["accuracy_pct"] for r in ours if r["model"] == model and r["sparsity"] == s
           and not r["finetuned"]}
    mag = max([acc[m] for m in ("magnitude-global", "magnitude-layer") if m in acc], default=float("nan"))
    rmt = max([v for m, v in acc.items() if not m.startswith("magnitude")], default=float("nan"))
    return rmt - mag
