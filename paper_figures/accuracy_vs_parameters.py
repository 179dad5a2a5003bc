r"""Accuracy against remaining parameters for the real CNNs and the ViT, every pruning method.

The data are ``benchmarks/prune_models.py``'s results (``benchmarks/results/prune_models.csv``): the shared
MNIST CNN, the shared CIFAR ResNet-20/56 and our ViT trained on MNIST, pruned by MP-SVD truncation (with and
without the MP-fit cutoff), seed paper 2's Algorithm 3 (``rmt-cycles``), fixed-rank and energy SVD,
magnitude and spectral sparsification, before and after a short fine-tune. The paper's ViT curves on
ImageNet (papers.md 2.4f, read off figures) and its README claims (ViT-B -30 % parameters for -0.6 % top-1,
ViT-L -50 % for -1.4 %) are drawn as accuracy drops beside ours; the models and data differ (ours: small
models on MNIST / CIFAR-10), so the comparison is of the shape of the trade-off, not of the numbers.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from . import style
from .registry import (Comparison, FigureContext, FigureResult, read_csv, ref_source, reference, repo_root,
                       run_main)

NAME = "accuracy_vs_parameters"
TITLE = "Accuracy against parameters: MNIST CNN, CIFAR ResNets, ViT"
CAPTION = ("On real trained models every pruning method trades parameters for accuracy, and the figure shows where "
           "MP-based pruning (SVD at the BEMA edge, and the paper's Algorithm 3) stands against fixed-rank, energy, "
           "magnitude and spectral pruning, beside the paper's ImageNet ViT curves.")
SOURCE = "papers.md 2.4f, 2.1 (README claims); benchmarks/prune_models.py"
COLUMNS = ("model", "method", "setting", "finetuned", "params_remaining", "reduction_pct", "accuracy_pct",
           "accuracy_dense_pct", "drop_points")
CSV_NAME = "prune_models.csv"
#: the methods drawn, in legend order, with their marker
METHODS = {"mp-svd": "o", "mp-svd-fit": "P", "rmt-cycles": "D", "rank": "s", "energy": "^", "magnitude": "v",
           "spectral": "x"}
#: the accuracy axes show this many points below the dense accuracy (collapsed points fall under the axis)
CUT = 20.0
MODEL_TITLES = {"mnist-cnn": "MNIST CNN", "resnet20": "CIFAR-10 ResNet-20", "resnet56": "CIFAR-10 ResNet-56",
                "vit-mnist": "ViT (ours) on MNIST"}


def _truthy(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def _benchmark_csv(ctx: FigureContext) -> tuple[Path, str]:
    """The cached benchmark table, or (quick mode) a reduced run of the benchmark on the MNIST CNN only."""
    cached = repo_root() / "benchmarks" / "results" / CSV_NAME
    if cached.is_file() and not ctx.recompute:
        return cached, "benchmarks/results/prune_models.csv"
    own = Path(ctx.out) / "cache" / "prune_models"
    if ctx.quick and not ctx.recompute and (own / CSV_NAME).is_file():
        return own / CSV_NAME, f"a reduced quick run kept in {own}"
    script = repo_root() / "benchmarks" / "prune_models.py"
    if not script.is_file():
        raise FileNotFoundError(f"no cached {cached} and no benchmark script {script} to run")
    spec = importlib.util.spec_from_file_location("_rmt_prune_models_benchmark", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if ctx.quick:   # the benchmark has no quick mode: the MNIST CNN alone, a coarse sweep, no fine-tune
        argv = ["--models", "mnist-cnn", "--no-finetune", "--reg-steps", "10", "--out", str(own)]
        target, where = own / CSV_NAME, f"computed now: a reduced quick run (MNIST CNN only) into {own}"
    else:
        argv, target, where = [], cached, "computed now: benchmarks/prune_models.py (full)"
    run_main(mod.main, argv, "benchmarks/prune_models.py")
    if not target.is_file():
        raise RuntimeError(f"benchmarks/prune_models.py {' '.join(argv)} did not write {target}")
    return target, where


def _drop_at(rows: list[dict], reduction_pct: float) -> float:
    """Accuracy drop (points) at ``reduction_pct`` by linear interpolation along a method's sweep; NaN outside it."""
    xs = np.array([r["reduction_pct"] for r in rows])
    ys = np.array([r["drop_points"] for r in rows])
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if xs.size == 0 or not xs[0] <= reduction_pct <= xs[-1]:
        return float("nan")
    return float(np.interp(reduction_pct, xs, ys))


def make(ctx: FigureContext) -> FigureResult:
    path, where = _benchmark_csv(ctx)
    raw = read_csv(path)
    rows = [dict(model=r["model"], method=r["method"], setting=r["setting"], finetuned=_truthy(r["finetuned"]),
                 params_dense=int(r["params_dense"]), params_remaining=int(r["params_remaining"]),
                 reduction_pct=100 * float(r["reduction"]), accuracy_pct=100 * float(r["accuracy"]),
                 accuracy_dense_pct=100 * float(r["accuracy_dense"]), drop_points=float(r["drop_points"]),
                 n_test=int(r["n_test"])) for r in raw]
    models = [m for m in MODEL_TITLES if any(r["model"] == m for r in rows)]
    models += sorted({r["model"] for r in rows} - set(models))
    ref = reference("vit_imagenet_curves")
    fig, axes = style.figure(ncols=min(3, len(models) + 1), nrows=(len(models) + 1 + 2) // 3, width=4.4, height=3.6)
    colors = dict(zip(METHODS, style.COLORS))
    for ax, model in zip(axes, models):
        ms = [r for r in rows if r["model"] == model]
        for method, marker in METHODS.items():
            for ft in (False, True):
                rs = sorted((r for r in ms if r["method"] == method and r["finetuned"] == ft),
                            key=lambda r: r["reduction_pct"])
                if not rs:
                    continue
                ax.plot([r["reduction_pct"] for r in rs], [r["accuracy_pct"] for r in rs], marker=marker,
                        color=colors[method], linestyle="-" if not ft else "none", mfc="white" if ft else None,
                        ms=5 if not ft else 7, label=method + (" + fine-tune" if ft else ""))
        dense = ms[0]["accuracy_dense_pct"]
        ax.axhline(dense, color="k", linestyle=":", lw=1, label=f"dense {dense:.2f} %")
        ax.set_xlim(-2, 100)
        lo = max(0.0, dense - CUT)
        ax.set_ylim(lo, dense + 0.25 * (dense - lo))
        below = sum(r["accuracy_pct"] < lo for r in ms)
        ax.set_xlabel("parameters removed (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{MODEL_TITLES.get(model, model)} ({ms[0]['params_dense']:,} params, {ms[0]['n_test']} test "
                     f"images)" + (f"\n{below} point(s) more than {CUT:g} points below dense, under the axis" if below
                                   else ""), fontsize=9)
    # the methods' legend once, below the panels (it would hide the curves inside them); each panel names its dense line
    seen = {}
    for ax in axes[:len(models)]:
        h, lab = ax.get_legend_handles_labels()
        seen.update({l_: h_ for h_, l_ in zip(h[:-1], lab[:-1]) if l_ not in seen})
        ax.legend([h[-1]], [lab[-1]], fontsize=7, loc="lower left")
    fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=7, fontsize=7)
    # the paper's curves as accuracy drops, with ours for the ViT (Algorithm 3 = rmt-cycles, as in the paper)
    ax = axes[len(models)]
    for (label, cur), ls in zip(ref["curves"].items(), ("--", "-.", ":")):
        top1 = np.array(cur["top1"])
        ax.plot(cur["reduction"], top1[0] - top1, color="k", linestyle=ls, marker="s", mfc="none", ms=4,
                label=f"paper: {label}, ImageNet")
    claims = ref["readme_claims"]
    ax.plot([claims["vit_base"]["param_reduction"], claims["vit_large"]["param_reduction"]],
            [claims["vit_base"]["top1_drop"], claims["vit_large"]["top1_drop"]], linestyle="none", marker="*",
            color="k", ms=10, label="paper README: ViT-B, ViT-L after fine-tune")
    vit = [r for r in rows if r["model"] == "vit-mnist"]
    for method in ("rmt-cycles", "mp-svd"):
        for ft in (False, True):
            rs = sorted((r for r in vit if r["method"] == method and r["finetuned"] == ft), key=lambda r: r["reduction_pct"])
            if rs:
                ax.plot([r["reduction_pct"] for r in rs], [r["drop_points"] for r in rs], marker=METHODS[method],
                        color=colors[method], linestyle="-" if not ft else "none", mfc="white" if ft else None,
                        label=f"ours: ViT on MNIST, {method}" + (" + fine-tune" if ft else ""))
    ax.set_xlabel("parameters removed (%)")
    ax.set_ylabel("top-1 accuracy drop (points)")
    ax.set_ylim(-1.5, 20)
    ax.set_xlim(-2, 100)
    ax.set_title("accuracy drop: the paper's ImageNet ViTs and our ViT", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper left")
    for extra in axes[len(models) + 1:]:
        extra.set_visible(False)
    fig.suptitle("Accuracy against parameters removed, real models (benchmarks/prune_models.py)")
    comps, notes = [], [f"data: {where}"]
    src = ref_source({"source": "papers.md 2.1", "provenance": "[CODE] README"})
    for model, what, key in (("vit-mnist", "ViT", "vit_base"), ("vit-mnist", "ViT", "vit_large")):
        target, drop = claims[key]["param_reduction"], claims[key]["top1_drop"]
        for ft in (True, False):
            rs = [r for r in rows if r["model"] == model and r["method"] == "rmt-cycles" and r["finetuned"] == ft]
            ours = _drop_at(rs, target)
            if np.isfinite(ours):
                comps.append(Comparison(NAME, f"{what} top-1 drop (points) at {target:g} % params removed "
                                              f"(Algorithm 3{', fine-tuned' if ft else ''})", drop, ours, src,
                                        f"paper: {key.replace('_', '-')} on ImageNet after fine-tune; ours: ViT on "
                                        "MNIST, interpolated along the sweep",
                                        not_comparable="ImageNet ViT-B/L (no ImageNet, no GPU here) vs a small ViT on "
                                                       "MNIST"))
                break
        else:
            notes.append(f"no ViT rmt-cycles points around {target:g} % removed: no comparison with the README's "
                         f"{key} claim")
    rn = ref["resnet"]
    for name, cur in (("ResNet-50", rn["ResNet-50"]), ("ResNet-101", rn["ResNet-101"])):
        red = 100 * (1 - cur["params_M"][1] / cur["params_M"][0])
        pdrop = cur["top1"][0] - cur["top1"][1]
        for model in ("resnet56", "resnet20"):
            rs = [r for r in rows if r["model"] == model and r["method"] == "rmt-cycles" and not r["finetuned"]]
            ours = _drop_at(rs, red)
            if np.isfinite(ours):
                comps.append(Comparison(NAME, f"{name} top-1 drop at {red:.1f} % removed vs our {model}", pdrop, ours,
                                        ref_source({"source": "papers.md 2.4f", "provenance": rn["provenance"]}),
                                        f"paper: ImageNet {name}, method unknown; ours: CIFAR-10 {model}, Algorithm 3, "
                                        "no fine-tune",
                                        not_comparable="ImageNet ResNet of unknown method vs a CIFAR-10 ResNet"))
                break
        else:
            notes.append(f"no ResNet rmt-cycles sweep spans {red:.1f} % removed: no comparison with the paper's {name} "
                         "figure")
    for model in models:
        ms = [r for r in rows if r["model"] == model]
        for ft in (False, True):
            ok = [r for r in ms if r["finetuned"] == ft and r["drop_points"] <= 1.0]
            if ok:
                b = max(ok, key=lambda r: r["reduction_pct"])
                notes.append(f"{model}{' (fine-tuned)' if ft else ''}: most parameters removed within 1 point of the "
                             f"dense accuracy: {b['reduction_pct']:.1f} % by {b['method']} ({b['setting']})")
    return FigureResult(rows, fig, comps, notes, data_source=where)
