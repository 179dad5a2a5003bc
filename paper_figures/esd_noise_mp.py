r"""ESD of pure-noise matrices against the Marchenko-Pastur density, with BEMA's fitted edge.

For R of shape (N, M) with i.i.d. entries of variance sigma^2 = g/N (``simulations.generators.noise``),
the eigenvalues lambda_i = s_i^2 / n (``theory.esd``) follow MP(p/n, sigma^2) (papers.md 0.1), supported
on sigma^2 (1 +- sqrt(p/n))^2. Each panel shows the histogram, the MP density with the true sigma^2 and
with BEMA's sigma^2-hat (``theory.fit_spectrum``, alpha = 0.2, beta = 0.1; papers.md 0.2), and BEMA's
edge lambda_+-hat. The 1000 x 1000 panel is papers.md 0.2's worked example (sigma^2-hat = 1.0039 sigma^2,
s_+ = 2.007, largest singular value 1.998 in units sigma sqrt n; [RUN]).
"""
from __future__ import annotations

import math

import numpy as np

from simulations.generators import noise
from theory import MarchenkoPastur, fit_spectrum

from . import style
from .registry import Comparison, FigureContext, FigureResult, ref_source, reference

NAME = "esd_noise_mp"
TITLE = "ESD of pure noise against the Marchenko-Pastur law"
CAPTION = ("The eigenvalues of pure-noise matrices follow the Marchenko-Pastur density at every aspect ratio, "
           "and BEMA recovers the noise level and the bulk edge from the spectrum alone.")
SOURCE = "papers.md 0.1-0.2"
COLUMNS = ("shape", "ratio", "law", "bin_left", "bin_right", "density", "mp_pdf_true", "mp_pdf_fit",
           "sigma2_true", "sigma2_hat", "lambda_plus_true", "lambda_plus_hat", "lambda_max")


def _shapes(quick: bool) -> list[tuple[int, int, str]]:
    if quick:
        return [(1000, 1000, "gaussian"), (500, 1000, "gaussian"), (200, 2000, "gaussian"), (500, 1000, "rademacher")]
    return [(1000, 1000, "gaussian"), (2000, 4000, "gaussian"), (800, 8000, "gaussian"), (2000, 4000, "rademacher")]


def make(ctx: FigureContext) -> FigureResult:
    rows, comps = [], []
    shapes = _shapes(ctx.quick)
    fig, axes = style.figure(ncols=2, nrows=(len(shapes) + 1) // 2, width=4.8, height=3.4)
    ref = reference("bema_noise_example")
    for k, ((N, M, law), ax) in enumerate(zip(shapes, axes)):
        R = noise((N, M), law, 1.0, seed=ctx.seed + 101 * k, device=ctx.device)
        rep = fit_spectrum(R)
        lam = rep.eigenvalues
        p, n = rep.p, rep.n
        s2 = 1.0 / N                                     # entries have variance g / N with g = 1
        mp, mp_fit = MarchenkoPastur(p / n, s2), MarchenkoPastur(p / n, rep.sigma2)
        lo, hi = mp.edges
        edges = np.linspace(max(0.0, lo - 0.1 * (hi - lo)), max(hi, lam[-1]) * 1.05, int(np.clip(2 * math.sqrt(p), 20, 60)) + 1)
        dens, _ = np.histogram(lam, bins=edges, density=True)
        mid = 0.5 * (edges[1:] + edges[:-1])
        for a, b, d, m in zip(edges[:-1], edges[1:], dens, mid):
            rows.append(dict(shape=f"{N}x{M}", ratio=p / n, law=law, bin_left=a, bin_right=b, density=d,
                             mp_pdf_true=float(mp.pdf(m)), mp_pdf_fit=float(mp_fit.pdf(m)), sigma2_true=s2,
                             sigma2_hat=rep.sigma2, lambda_plus_true=hi, lambda_plus_hat=rep.lambda_plus,
                             lambda_max=float(lam[-1]), n_spikes=rep.n_spikes))
        # density curves on a fine grid inside the support (the pdf has an inverse-square-root pole at 0
        # for ratio 1, so the grid starts just above the lower edge)
        x = np.linspace(lo + 1e-4 * (hi - lo), hi * (1 - 1e-9), 400)
        # plotted in units of the true sigma^2 (lambda / sigma^2, density sigma^2 f): the axes read 0..(1+sqrt c)^2
        ax.hist(lam / s2, bins=edges / s2, density=True, color=style.COLORS[5], alpha=0.55,
                label=f"ESD ({p} eigenvalues)")
        ax.plot(x / s2, s2 * mp.pdf(x), color=style.COLORS[1], label=r"MP, true $\sigma^2$")
        xf = np.linspace(mp_fit.edges[0] + 1e-4 * (hi - lo), mp_fit.edges[1] * (1 - 1e-9), 400)
        ax.plot(xf / s2, s2 * mp_fit.pdf(xf), color="k", linestyle=":", label=r"MP, BEMA $\hat\sigma^2$")
        ax.axvline(rep.lambda_plus / s2, color=style.COLORS[2], linestyle="--",
                   label=r"BEMA edge $\hat\lambda_+$" + f" ({rep.n_spikes} above)")
        ax.set_title(f"{N} x {M} {law}, p/n = {p / n:.2g}")
        ax.set_xlabel(r"eigenvalue $\lambda / \sigma^2$  ($\lambda = s^2/n$, $\sigma^2 = 1/N$)")
        if k % 2 == 0:
            ax.set_ylabel("density")
        ymax = float(np.max(mp.pdf(x[(x > lo + 0.05 * (hi - lo))])))
        ax.set_ylim(0, 1.45 * s2 * max(ymax, float(dens[2:].max())))
        ax.legend(loc="upper right", fontsize=7.5)
        if (N, M, law) == (1000, 1000, "gaussian"):
            unit = math.sqrt(s2 * n)                      # sigma sqrt(n)
            src = ref_source(ref)
            note = "one random draw; papers.md's draw is another"
            comps += [
                # tolerances: a few standard deviations of one 1000 x 1000 draw (sigma2_hat: O(1/n);
                # the largest singular value: Tracy-Widom, sd ~ 1.27 n^(-2/3) on lambda, ~0.004 on s/(sigma sqrt n))
                Comparison(NAME, "BEMA sigma2_hat / sigma2, 1000x1000 Gaussian", ref["sigma2_hat_over_sigma2"],
                           rep.sigma2 / s2, src, note, tolerance=0.01),
                Comparison(NAME, "BEMA s_+ / (sigma sqrt n), 1000x1000 Gaussian", ref["sv_edge"], rep.sv_edge / unit,
                           src, note, tolerance=0.01),
                Comparison(NAME, "largest s / (sigma sqrt n), 1000x1000 Gaussian", ref["largest_singular_value"],
                           math.sqrt(lam[-1] * n) / unit, src, note, tolerance=0.02),
            ]
    fig.suptitle("Pure noise R (entries of variance 1/N): ESD, MP law and BEMA's fit")
    notes = [f"{N}x{M} {law}: sigma2_hat/sigma2 = {r['sigma2_hat'] / r['sigma2_true']:.4f}, "
             f"lambda_+_hat/lambda_+ = {r['lambda_plus_hat'] / r['lambda_plus_true']:.4f}, "
             f"{r['n_spikes']} eigenvalue(s) above the BEMA edge"
             for (N, M, law) in shapes for r in [next(q for q in rows if q["shape"] == f"{N}x{M}" and q["law"] == law)]]
    return FigureResult(rows, fig, comps, notes)
