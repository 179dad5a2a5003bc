r"""ESD of trained layers with the fitted MP density: the pretrained MNIST CNN against its initialisation.

The layers of ``shared/models/mnist-cnn`` (``prune.models.mnist_cnn.load_pretrained``, 99.05 % on MNIST) are
analysed by ``prune.analysis.analyze`` (conv layers as C_out x (C_in k k) matrices; BEMA with alpha = 0.2,
beta = 0.1). A trained layer is a bulk that still fits an MP law (the random part R) plus singular values
above the edge (the learned signal S) (papers.md 1.2-1.5); at initialisation the same layers are pure MP.
"""
from __future__ import annotations

import numpy as np
import torch

from prune.analysis import analyze
from prune.plots import plot_esd
from theory import MarchenkoPastur

from . import style
from .registry import FigureContext, FigureResult

NAME = "esd_trained_layers"
TITLE = "ESD of trained layers with the fitted MP density (MNIST CNN)"
CAPTION = ("At initialisation the layers of a real CNN are a pure Marchenko-Pastur bulk; after training, singular "
           "values stand beyond BEMA's edge (the learned signal) next to a bulk that fits MP less well than "
           "at initialisation.")
SOURCE = "papers.md 1.2-1.5, 0.3 (MP fit); shared/models/mnist-cnn"
COLUMNS = ("state", "layer", "shape", "bin_left", "bin_right", "density", "mp_pdf_fit", "sigma2", "lambda_plus",
           "n_spikes", "bulk_fraction", "mp_fit_error")
#: the two layers drawn (the others are in the CSV summary rows)
SHOWN = ("features.3", "classifier.0")


def _models(seed: int):
    from prune.models.mnist_cnn import MnistCNN, load_pretrained

    trained = load_pretrained()
    with torch.random.fork_rng(devices=[]):        # PyTorch's default init reads the global generator
        torch.manual_seed(seed)
        init = MnistCNN().eval()
    return {"trained": trained, "initialisation": init}


def make(ctx: FigureContext) -> FigureResult:
    rows, notes = [], []
    models = _models(ctx.seed)
    tables = {k: analyze(m, alpha=0.2, beta=0.1, keep_eigenvalues=True) for k, m in models.items()}
    fig, axes = style.figure(ncols=len(SHOWN), nrows=2, width=4.8, height=3.3)
    for i, (state, table) in enumerate(tables.items()):
        for r in table:
            notes.append(f"{state} {r.name} ({r.N}x{r.M}): sigma2 {r.sigma2:.4g}, {r.n_spikes} spikes, bulk "
                         f"{100 * r.bulk_fraction:.2f} %, MP-fit error {r.mp_fit_error:.3f}")
            rows.append(dict(state=state, layer=r.name, shape=f"{r.N}x{r.M}", bin_left="", bin_right="", density="",
                             mp_pdf_fit="", sigma2=r.sigma2, lambda_plus=r.lambda_plus, n_spikes=r.n_spikes,
                             bulk_fraction=r.bulk_fraction, mp_fit_error=r.mp_fit_error, kind="summary"))
        for j, name in enumerate(SHOWN):
            r = next(q for q in table if q.name == name)
            lam = table.eigenvalues[f"{name}[{r.view}]"]
            mp = MarchenkoPastur(r.p / r.n, r.sigma2)
            top = 1.6 * r.lambda_plus
            edges = np.linspace(0.0, top, int(np.clip(2 * np.sqrt(r.p), 20, 50)) + 1)
            counts, _ = np.histogram(lam, bins=edges)
            dens = counts / (lam.size * np.diff(edges))       # density over all p eigenvalues
            mid = 0.5 * (edges[1:] + edges[:-1])
            for a, b, d, m in zip(edges[:-1], edges[1:], dens, mid):
                rows.append(dict(state=state, layer=name, shape=f"{r.N}x{r.M}", bin_left=a, bin_right=b, density=d,
                                 mp_pdf_fit=float(mp.pdf(m)), sigma2=r.sigma2, lambda_plus=r.lambda_plus,
                                 n_spikes=r.n_spikes, bulk_fraction=r.bulk_fraction, mp_fit_error=r.mp_fit_error,
                                 kind="histogram"))
            ax = axes[i * len(SHOWN) + j]
            plot_esd(ax, lam, r)                              # prune.plots: histogram, MP density, BEMA edge, spikes
            ax.set_title(f"{state}: " + ax.get_title(), fontsize=9)
            for axis, scale in (("x", ax.get_xscale()), ("y", ax.get_yscale())):
                if scale == "linear":                         # 1e-4-sized eigenvalues: an offset exponent, not long labels
                    ax.ticklabel_format(axis=axis, style="sci", scilimits=(-2, 3))
            ax.legend(fontsize=7.5, loc="best", framealpha=0.7)
    fig.suptitle("MNIST CNN (99 % test accuracy): trained layers against the same layers at initialisation")
    return FigureResult(rows, fig, [], notes, data_source="shared/models/mnist-cnn/mnist-cnn.pth")
