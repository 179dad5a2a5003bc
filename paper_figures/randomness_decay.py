r"""Randomness decay over training: the BEMA noise level of each layer while a three-layer net trains.

The theorem of papers.md 2.3 ("randomness vanishes at the training limit") says that with L2
regularisation the random part R_2 of a trained layer shrinks, ||R_2*||_F^2 <= (a_N + eps_N)/(2 lambda)
+ o_P(1), so the MP bulk scale sigma^2 falls. The runs are
:func:`simulations.network_checks.randomness_decay_table` (SGD on CE + lambda sum ||W_i||_F^2, spectra by
``theory.fit_spectrum`` each epoch): a teacher network's data with lambda = 1e-3 and, outside the theorem's
hypotheses, lambda = 0; and MNIST.
"""
from __future__ import annotations

import os


from simulations.network_checks import randomness_decay_table

from . import style
from .registry import FigureContext, FigureResult

NAME = "randomness_decay"
TITLE = "Randomness decay over training"
CAPTION = ("With L2 regularisation the noise level sigma^2 that BEMA fits to the hidden layers falls steadily "
           "during training (randomness decays) while signal singular values leave the bulk; without "
           "regularisation sigma^2 grows instead, as the randomness-decay theorem's hypothesis lambda > 0 suggests.")
SOURCE = "papers.md 2.3 (randomness vanishes at the training limit), simulations check 6"
COLUMNS = ("run", "dataset", "lam", "epoch", "layer", "sigma2", "sigma2_ratio", "bulk_fraction", "n_spikes",
           "mp_fit_error", "frobenius", "test_acc")


def make(ctx: FigureContext) -> FigureResult:
    kw = dict(quick=ctx.quick, seed=ctx.seed, device=ctx.device, progress=ctx.progress)
    ep = {"epochs": 8} if ctx.quick else {}
    runs = [("synthetic, lambda=1e-3", randomness_decay_table("synthetic", **kw, **ep)),
            ("synthetic, lambda=0", randomness_decay_table("synthetic", **kw, lam=0.0, **ep))]
    notes = []
    try:
        runs.append(("MNIST, lambda=1e-3", randomness_decay_table("mnist", **kw, **({"epochs": 5} if ctx.quick else {}))))
    except (OSError, ValueError) as exc:
        if os.environ.get("RMT_REQUIRE_DATA"):
            raise
        notes.append(f"MNIST run left out: {type(exc).__name__}: {exc}")
    rows = []
    for run, table in runs:
        for r in table:
            rows.append(dict(run=run, dataset=r["dataset"], lam=r["lam"], epoch=r["epoch"], layer=r["layer"],
                             sigma2=r["sigma2"], sigma2_ratio=r["sigma2_ratio"], bulk_fraction=r["bulk_fraction"],
                             n_spikes=r["n_spikes"], mp_fit_error=r["mp_fit_error"], frobenius=r["frobenius"],
                             test_acc=r["test_acc"], train_loss=r["train_loss"], steps=r["steps"],
                             shape="x".join(str(v) for v in r["shape"])))
    fig, axes = style.figure(ncols=3, width=4.0, height=3.4)
    layer_color = {"W1": style.COLORS[0], "W2": style.COLORS[1], "W3": style.COLORS[2]}
    ax = axes[0]
    for run, ls in (("synthetic, lambda=1e-3", "-"), ("synthetic, lambda=0", "--")):
        for layer in ("W1", "W2"):
            rs = [r for r in rows if r["run"] == run and r["layer"] == layer]
            lam = run.split("lambda=")[1]
            ax.plot([r["epoch"] for r in rs], [r["sigma2_ratio"] for r in rs], linestyle=ls, marker="o", ms=3,
                    color=layer_color[layer], label=rf"{layer}, $\lambda$ = {lam}")
    ax.set_title("teacher-network data")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"BEMA $\hat\sigma^2$ / value at initialisation")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    mn = [r for r in rows if r["run"].startswith("MNIST")]
    if mn:
        for layer in ("W1", "W2"):
            rs = [r for r in mn if r["layer"] == layer]
            ax.plot([r["epoch"] for r in rs], [r["sigma2_ratio"] for r in rs], marker="o", ms=3,
                    color=layer_color[layer], label=f"{layer} ({rs[0]['shape']})")
        ax.set_title(r"MNIST, $\lambda$ = 1e-3")
        ax.legend(fontsize=7.5)
    else:
        ax.text(0.5, 0.5, "MNIST not available", ha="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"BEMA $\hat\sigma^2$ / value at initialisation")
    ax = axes[2]
    for run, ls in (("synthetic, lambda=1e-3", "-"), ("synthetic, lambda=0", "--"), ("MNIST, lambda=1e-3", ":")):
        rs = [r for r in rows if r["run"] == run and r["layer"] == "W2"]
        if rs:
            ax.plot([r["epoch"] for r in rs], [r["bulk_fraction"] for r in rs], linestyle=ls, marker="o", ms=3,
                    label=run.replace("lambda", r"$\lambda$"))
    ax.set_xlabel("epoch")
    ax.set_ylabel("bulk fraction of W2")
    ax.set_title("W2: share of singular values in the bulk")
    ax.legend(fontsize=7.5)
    fig.suptitle("Randomness decay: the MP noise scale of the hidden layers during training (three-layer ReLU net)")
    notes.append("the output layer W3 (10 x 256: p = 10 eigenvalues) is in the CSV but not drawn: ten eigenvalues do "
                 "not determine an MP fit")
    for run, _ in runs:
        w2 = [r for r in rows if r["run"] == run and r["layer"] == "W2"]
        notes.append(f"{run}: sigma2(W2) last/initial = {w2[-1]['sigma2_ratio']:.4f} after {w2[-1]['epoch']} epochs "
                     f"({w2[-1]['steps']} SGD steps), test accuracy {w2[-1]['test_acc']:.3f}")
    return FigureResult(rows, fig, [], notes)
