r"""Rank-k truncation of the first layer of an MNIST [784, 1000, 10] net: test accuracy against k (papers.md 1.4).

Layer 1's matrix is replaced by its best rank-k approximation U_k S_k V_k^T; BEMA (alpha 0.25, beta 0.1)
predicts the rank that matters (the number of singular values above the MP edge). The data are
``simulations.experiments.rank_truncation``'s results (``results/rank_truncation/``; a quick run when none
are cached); the paper's table is the precursor notebook's (papers.md 1.4, [CODE]).
"""
from __future__ import annotations

import numpy as np

from . import style
from .registry import (Comparison, FigureContext, FigureResult, experiment_results, read_csv, ref_source,
                       reference)

NAME = "rank_truncation_accuracy"
TITLE = "Rank-k truncation accuracy curve (MNIST FC, layer 1)"
CAPTION = ("Test accuracy after keeping only the k largest singular values of the first layer, against k, with the "
           "rank that BEMA predicts from the spectrum alone marked, next to the precursor notebook's table.")
SOURCE = "papers.md 1.4; simulations.experiments.rank_truncation"
COLUMNS = ("k", "test_acc_mean_pct", "test_acc_std_pct", "seeds", "paper_test_acc_pct")
EXPERIMENT = "rank_truncation"


def make(ctx: FigureContext) -> FigureResult:
    ref = reference("rank_truncation_mnist")
    folder, where, meta = experiment_results(ctx, EXPERIMENT, ("table.csv", "bema.csv"))
    table = read_csv(folder / "table.csv")
    fits = read_csv(folder / "bema.csv")
    paper = {r["k"]: r["test_acc"] for r in ref["rows"]}
    curve = [r for r in table if r["k"] != "dense"]
    dense = next(r for r in table if r["k"] == "dense")
    rows = [dict(k=int(r["k"]), test_acc_mean_pct=100 * r["test_acc_mean"], test_acc_std_pct=100 * r["test_acc_std"],
                 seeds=int(r["seeds"]), paper_test_acc_pct=paper.get(int(r["k"]), "")) for r in curve]
    rows.append(dict(k="dense", test_acc_mean_pct=100 * dense["test_acc_mean"], test_acc_std_pct=100 * dense["test_acc_std"],
                     seeds=int(dense["seeds"]), paper_test_acc_pct=ref["dense_test_accuracy"]))
    ranks = [int(f["bema_rank"]) for f in fits]
    k = np.array([r["k"] for r in rows[:-1]], dtype=float)
    m = np.array([r["test_acc_mean_pct"] for r in rows[:-1]])
    sd = np.array([r["test_acc_std_pct"] for r in rows[:-1]])
    pk = np.array(sorted(paper), dtype=float)
    pv = np.array([paper[int(x)] for x in pk])
    fig, axes = style.figure(ncols=2, width=4.8, height=3.6)
    label_ours = f"ours (mean $\\pm$ sd, {len(fits)} seed{'s' if len(fits) > 1 else ''})"
    for ax, full in zip(axes, (False, True)):
        sel = k >= 5 if full else k <= 100
        ax.errorbar(k[sel], m[sel], yerr=sd[sel], marker="o", ms=4, capsize=2, color=style.COLORS[0], label=label_ours)
        style.paper_marker(ax, pk[pk >= 5] if full else pk, pv[pk >= 5] if full else pv,
                           label="paper (precursor notebook)")
        for i, r_ in enumerate(ranks):
            ax.axvline(r_, color=style.COLORS[1], alpha=0.7, lw=1.2,
                       label=f"our BEMA rank ({', '.join(map(str, ranks))})" if i == 0 else None)
        ax.axvline(ref["bema_rank_layer1"], color="k", linestyle=":", label=f"paper's BEMA rank {ref['bema_rank_layer1']}")
        ax.axhline(100 * dense["test_acc_mean"], color=style.COLORS[0], linestyle="--", lw=1,
                   label=f"ours dense: {100 * dense['test_acc_mean']:.2f} %")
        ax.axhline(ref["dense_test_accuracy"], color="k", linestyle="--", lw=0.8,
                   label=f"paper dense: {ref['dense_test_accuracy']:.2f} %")
        ax.set_xlabel("rank k kept in layer 1 (784 x 1000)" + (" (log scale)" if full else ""))
        ax.set_ylabel("MNIST test accuracy (%)")
        if full:
            ax.set_xscale("log")
            style.log_ticks(ax, [v for v in (5, 10, 20, 50, 100, 200, 500, 784) if v <= k.max()])
            lo = min(m[sel].min(), pv[pk >= 5].min())
            ax.set_ylim(lo - 2.0, 100)
            ax.set_title("every k measured, k >= 5")
        else:
            ax.set_ylim(0, 100)
            ax.set_xlim(-3, 103)
            ax.set_title("k <= 100 (the paper's range)")
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("MNIST [784, 1000, 10]: accuracy after keeping k singular values of layer 1")
    src = ref_source(ref)
    scale = meta.get("scale", {}).get("name", "?")
    note = f"ours: {scale} scale, mean over {len(fits)} seed(s)"
    # Seeds whose output ReLU killed a class (the notebook's architecture allows it) are not the regime the
    # notebook's single seed shows; the accuracy verdicts use the seeds that predict all ten classes, with
    # their spread (2 sd, at least 0.3 point: the notebook's own CPU-vs-GPU rerun differs by ~0.1) as the noise.
    live = [f for f in fits if int(f.get("classes_never_predicted", 0) or 0) == 0]
    curve_rows = read_csv(folder / "curve.csv") if (folder / "curve.csv").is_file() else []
    live_seeds = {int(f["seed"]) for f in live}
    by_k: dict = {}
    for r in curve_rows:
        if int(r["seed"]) in live_seeds:
            by_k.setdefault(int(r["k"]), []).append(100 * r["test_acc"])
    dead = len(fits) - len(live)
    lnote = (f"ours: mean over the {len(live)} of {len(fits)} seeds predicting all 10 classes"
             + (f" ({dead} seed(s) with a dead output unit excluded)" if dead else ""))

    def acc_cmp(quantity, p_val, k_key, fallback):
        vals = by_k.get(k_key, [])
        if len(vals) >= 2:
            tol = max(0.3, 2 * float(np.std(vals, ddof=1)))
            mu = float(np.mean(vals))
            return Comparison(NAME, quantity, p_val, mu, src, lnote, tolerance=tol,
                              trend=f"same scale as the notebook; ours {'below' if mu < p_val else 'above'} it, "
                                    f"seeds range {min(vals):.2f}-{max(vals):.2f}")
        return Comparison(NAME, quantity, p_val, fallback, src, note)

    comps = [acc_cmp(f"test accuracy % at k = {int(x)}", paper[int(x)], int(x), float(m[k == x][0]))
             for x in pk if np.any(k == x)]
    dvals = [100 * f["dense_test_acc"] for f in live]
    comps.append(Comparison(NAME, "dense test accuracy %", ref["dense_test_accuracy"],
                            float(np.mean(dvals)) if dvals else 100 * dense["test_acc_mean"], src, lnote,
                            tolerance=max(0.3, 2 * float(np.std(dvals, ddof=1))) if len(dvals) >= 2 else float("nan")))
    comps.append(Comparison(NAME, "BEMA rank of layer 1 (alpha 0.25, beta 0.1)", ref["bema_rank_layer1"],
                            float(np.mean(ranks)), src, f"ours: each seed {ranks}", tolerance=5.0,
                            trend="issue 12 asks for 'within a few of 56'"))
    fit_err = [f["mp_fit_error"] for f in fits]
    comps.append(Comparison(NAME, "MP-fit error of layer 1", ref["mp_fit_error_layer1"], float(np.mean(fit_err)), src,
                            note, tolerance=max(0.002, 2 * float(np.std(fit_err, ddof=1))) if len(fit_err) >= 2
                            else float("nan")))
    notes = [f"data: {where}"]
    return FigureResult(rows, fig, comps, notes, data_source=where)
