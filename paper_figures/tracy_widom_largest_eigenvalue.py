r"""Tracy-Widom densities against simulated largest eigenvalues (beta = 1 real, beta = 2 complex).

For a p x n matrix with i.i.d. real N(0, sigma^2) entries (beta = 1) or complex Gaussian entries with
E|w|^2 = sigma^2 (beta = 2), the largest eigenvalue lambda_1 = s_1^2 / n, centred and scaled as in
Johnstone (2001) / Johansson (2000) (``theory.edge_scaling``), converges to TW_beta
(``theory.TracyWidom``). BEMA's edge adds the TW_1 quantile t_{1-beta} (papers.md 0.2); its values are
compared with the ones papers.md 0.2 lists ([RUN], TracyWidom==0.3.0).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from simulations.generators import make_generator, noise, resolve_device
from theory import TracyWidom, edge_scaling, esd, tw_quantile

from . import style
from .registry import Comparison, FigureContext, FigureResult, ref_source, reference

NAME = "tracy_widom_largest_eigenvalue"
TITLE = "Tracy-Widom laws of the largest eigenvalue"
CAPTION = ("The largest eigenvalue of a noise matrix, centred and scaled at the Marchenko-Pastur edge, follows "
           "the Tracy-Widom law (beta = 1 for real, beta = 2 for complex entries), whose quantile sets BEMA's "
           "margin above the bulk.")
SOURCE = "papers.md 0.2 (TW_1 quantiles); Johnstone 2001, Johansson 2000"
COLUMNS = ("beta", "bin_left", "bin_right", "density", "tw_pdf", "p", "n", "trials")


def _largest(beta: int, p: int, n: int, trials: int, seed: int, device: str) -> np.ndarray:
    """Largest eigenvalue s_1^2 / n of ``trials`` p x n matrices with entries of variance 1/p, in chunks."""
    dev = resolve_device(device)
    out = []
    chunk = max(1, 2**22 // (p * n))
    gen = make_generator(seed, dev)
    for start in range(0, trials, chunk):
        b = min(chunk, trials - start)
        if beta == 1:
            X = noise((p, n), "gaussian", 1.0, batch=(b,), seed=gen, device=dev)
            out.append(esd(X)[..., -1].cpu().numpy())
        else:  # complex Gaussian, E|w|^2 = 1/p
            X = torch.randn((b, p, n), generator=gen, device=dev, dtype=torch.complex128) / math.sqrt(p)
            ev = torch.linalg.eigvalsh(X @ X.conj().transpose(-2, -1))[..., -1] / n
            out.append(ev.cpu().numpy())
    return np.concatenate(out)


def make(ctx: FigureContext) -> FigureResult:
    p, n, trials = (100, 200, 1000) if ctx.quick else (1000, 2000, 4000)
    threads = torch.get_num_threads()
    if resolve_device(ctx.device).type == "cpu" and ctx.quick:
        torch.set_num_threads(1)   # small batched eigensolvers: one thread is fastest on a shared CPU
    try:
        samples = {b: _largest(b, p, n, trials, ctx.seed + b, ctx.device) for b in (1, 2)}
    finally:
        torch.set_num_threads(threads)
    rows, notes = [], []
    fig, axes = style.figure(ncols=2, width=4.8, height=3.5)
    for ax, beta in zip(axes, (1, 2)):
        tw = TracyWidom(beta)
        es = edge_scaling(p, n, beta=beta, sigma2=1.0 / p)
        z = es.standardize(samples[beta])
        edges = np.linspace(-6.0, 4.0, 51)
        dens, _ = np.histogram(z, bins=edges, density=False)
        dens = dens / (z.size * np.diff(edges))        # density over all draws (a few fall outside [-6, 4])
        mid = 0.5 * (edges[1:] + edges[:-1])
        pdf_mid = tw.pdf(mid)
        for a, b, d, f in zip(edges[:-1], edges[1:], dens, pdf_mid):
            rows.append(dict(beta=beta, bin_left=a, bin_right=b, density=d, tw_pdf=float(f), p=p, n=n, trials=trials))
        x = np.linspace(-6.0, 4.0, 400)
        ax.bar(edges[:-1], dens, width=np.diff(edges), align="edge", color=style.COLORS[5], alpha=0.6,
               label=f"simulated, {trials} draws of {p} x {n}")
        ax.plot(x, tw.pdf(x), color=style.COLORS[1], label=rf"TW$_{beta}$ density")
        ks = float(np.max(np.abs(np.arange(1, z.size + 1) / z.size - tw.cdf(np.sort(z)))))
        ax.set_title(rf"$\beta = {beta}$ ({'real' if beta == 1 else 'complex'} Gaussian entries)")
        ax.set_xlabel(r"$(\lambda_1 - \mu_{np}) / \sigma_{np}$")
        ax.set_ylabel("density")
        ax.text(0.98, 0.60, f"sample mean {z.mean():.3f} (TW {tw.mean():.3f})\nsample sd {z.std(ddof=1):.3f} "
                f"(TW {tw.std():.3f})\nKS distance {ks:.3f}", transform=ax.transAxes, va="top", ha="right", fontsize=8)
        if beta == 1:
            for lvl, ls in ((0.1, "--"), (0.5, ":")):
                t = tw_quantile(lvl)
                ax.axvline(t, color=style.COLORS[2], linestyle=ls, linewidth=1.2,
                           label=rf"$t_{{1-\beta}}$ = {t:.3f} (BEMA, $\beta$ = {lvl:g})")
        ax.legend(loc="upper right", fontsize=7.5)
        ax.set_ylim(0, 1.9 * max(dens.max(), tw.pdf(x).max()))
        notes.append(f"beta={beta}: {trials} draws of {p}x{n}; standardized largest eigenvalue mean {z.mean():.4f} "
                     f"(TW {tw.mean():.4f}), sd {z.std(ddof=1):.4f} (TW {tw.std():.4f}), KS distance to TW {ks:.4f} "
                     f"(finite-size bias is O(n^-2/3))")
    ref = reference("tw1_quantiles")
    comps = [Comparison(NAME, f"TW1 quantile t_(1-beta), beta = {r['beta']:g}", r["t"], tw_quantile(r["beta"]),
                        ref_source(ref), "theory.tw_quantile (Bornemann's Fredholm determinant)",
                        tolerance=5e-4)  # 4 decimals + the TracyWidom package's interpolation error (<= 1.8e-4)
             for r in ref["rows"]]
    fig.suptitle("Largest eigenvalue of noise matrices against the Tracy-Widom laws")
    return FigureResult(rows, fig, comps, notes)
