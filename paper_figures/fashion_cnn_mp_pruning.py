r"""The Fashion-MNIST CNN trained with MP pruning of its conv and FC layers (papers.md 1.3, the notebook's CNN cell).

Two rules with the same data, initialisation and schedule: L1+L2 only, and MP pruning + L1+L2 (BEMA alpha 0.2,
beta 0.9, MP-fit cutoffs 0.6 for convolutions and 0.05 for FC layers, kept rank >= 10). The data are
``simulations.experiments.fashion_cnn``'s results (``results/fashion_cnn/``; a quick run when none are cached).
papers.md reports no accuracy for this cell, so there is nothing to compare with.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from . import style
from .registry import FigureContext, FigureResult, experiment_results, read_csv

NAME = "fashion_cnn_mp_pruning"
TITLE = "Fashion-MNIST CNN with MP pruning of conv and FC layers"
CAPTION = ("MP pruning during training removes the bulk singular values of the CNN's convolution (im2col) and FC "
           "layers that fit the MP law, and the figure shows what this costs or gains in test accuracy against "
           "training with L1+L2 alone.")
SOURCE = "papers.md 1.3 (CNN cell); simulations.experiments.fashion_cnn"
COLUMNS = ("kind", "rule", "epoch", "test_acc_pct", "weights_stored", "layer", "kept_rank_fraction")
EXPERIMENT = "fashion_cnn"
LABELS = {"l1l2": "L1+L2 only", "mp_l1l2": "MP pruning + L1+L2", "mp_l1l2_seedbugs": "MP + L1+L2, seed bugs"}


def make(ctx: FigureContext) -> FigureResult:
    folder, where, meta = experiment_results(ctx, EXPERIMENT, ("table.csv", "history.csv", "layers.csv"))
    history = read_csv(folder / "history.csv")
    layers = read_csv(folder / "layers.csv")
    scale = meta.get("scale", {})
    rows = []
    acc, par = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
    for h in history:
        acc[h["rule"]][int(h["epoch"])].append(100 * h["test_acc"])
        par[h["rule"]][int(h["epoch"])].append(h["weights_stored"])
    for rule in acc:
        for e in sorted(acc[rule]):
            rows.append(dict(kind="history", rule=rule, epoch=e, test_acc_pct=float(np.mean(acc[rule][e])),
                             test_acc_std_pct=float(np.std(acc[rule][e])), weights_stored=float(np.mean(par[rule][e])),
                             layer="", kept_rank_fraction=""))
    mp = [r for r in layers if r["rule"] == "mp_l1l2"]
    seed0 = min((r["seed"] for r in mp), default=None)
    s0 = [r for r in mp if r["seed"] == seed0]
    last_epoch = max((r["epoch"] for r in s0), default=None)
    names = list(dict.fromkeys(r["name"] for r in s0))
    for r in s0:
        rows.append(dict(kind="layer", rule="mp_l1l2", epoch=r["epoch"], test_acc_pct="", weights_stored=r["params_after"],
                         layer=r["name"], kept_rank_fraction=r["rank_after"] / min(r["N"], r["M"]), action=r["action"],
                         mp_fit_error=r["mp_fit_error"], n_spikes=r["n_spikes"], shape=f"{r['N']}x{r['M']}"))
    fig, axes = style.figure(ncols=3, width=4.2, height=3.5)
    for rule, label in LABELS.items():
        rs = [r for r in rows if r["kind"] == "history" and r["rule"] == rule]
        if not rs:
            continue
        e = [r["epoch"] for r in rs]
        m = np.array([r["test_acc_pct"] for r in rs])
        sd = np.array([r["test_acc_std_pct"] for r in rs])
        (line,) = axes[0].plot(e, m, marker="o", ms=3, label=label)
        axes[0].fill_between(e, m - sd, m + sd, color=line.get_color(), alpha=0.2, lw=0)
        axes[1].plot(e, [r["weights_stored"] for r in rs], marker="o", ms=3, label=label, color=line.get_color())
    from matplotlib.ticker import MaxNLocator

    for ax in axes[:2]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7.5)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_title("test accuracy (mean $\\pm$ sd over seeds)")
    axes[1].set_ylabel("stored weights of conv + FC layers")
    axes[1].set_title("weights stored")
    ax = axes[2]
    epochs = sorted({r["epoch"] for r in s0})
    width = 0.8 / max(1, len(epochs))
    x = np.arange(len(names))
    for j, e in enumerate(epochs):
        vals = [next((r["rank_after"] / min(r["N"], r["M"]) for r in s0 if r["name"] == n and r["epoch"] == e), np.nan)
                for n in names]
        ax.bar(x + j * width, vals, width, label=f"after epoch {e}")
    ax.set_xticks(x + width * (len(epochs) - 1) / 2, [n.replace("features.", "conv ").replace(".0", "")
                                                        .replace("classifier.", "fc ") for n in names],
                  rotation=30, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("kept rank / min(N, M)")
    ax.set_title(f"MP pruning per layer (seed {seed0})")
    ax.legend(fontsize=7)
    fig.suptitle(f"Fashion-MNIST CNN, channels {scale.get('channels', '?')}, hidden {scale.get('hidden', '?')}, "
                 f"{scale.get('epochs', '?')} epochs ({scale.get('name', '?')} scale)")
    notes = [f"data: {where}"]
    table = read_csv(folder / "table.csv")
    for r in table:
        notes.append(f"{LABELS.get(r['rule'], r['rule'])}: test {100 * r['test_acc_mean']:.2f} +- "
                     f"{100 * r['test_acc_std']:.2f} %, {r['params_mean']:.0f} parameters ({int(r['seeds'])} seeds)")
    if last_epoch is not None:
        acts = defaultdict(int)
        for r in s0:
            if r["epoch"] == last_epoch:
                acts[r["action"]] += 1
        notes.append(f"last pruning step (epoch {last_epoch}), layer actions: {dict(acts)}")
    return FigureResult(rows, fig, [], notes, data_source=where)
