r"""The BBP transition: outlier location and singular-vector overlaps of a rank-one signal plus noise.

W = theta u v^T + R (R of variance sigma^2 = 1/N, Haar u, v; ``simulations.spectral_checks.bbp_samples``),
theta in units sigma sqrt(n). Below the threshold theta_c = c^{1/4} (c = p/n) the top singular value sticks
to the bulk edge 1 + sqrt(c) (shifted at finite n by the Tracy-Widom mean) and the top singular vectors are
uncorrelated with u, v; above it the outlier sits at sqrt((1+theta^2)(c+theta^2))/theta and the squared
overlaps are (theta^4 - c)/(theta^2(theta^2 + c)) and (theta^4 - c)/(theta^2(theta^2 + 1))
(Benaych-Georges and Nadakuditi 2012; ``theory.outlier_singular_value``, ``theory.singular_vector_overlaps``).
This is why singular values below the MP edge carry no recoverable signal (papers.md 1.5).
"""
from __future__ import annotations

import math

import numpy as np

from simulations.spectral_checks import bbp_predictions, bbp_samples
from theory import bbp_threshold, outlier_singular_value, singular_vector_overlaps

from . import style
from .registry import FigureContext, FigureResult

NAME = "bbp_transition"
TITLE = "BBP transition: outlier location and vector overlap"
CAPTION = ("A planted rank-one signal leaves the noise bulk and its singular vectors become visible only above the "
           "BBP threshold c^(1/4), and the simulated outlier and overlaps follow the closed-form limits on both "
           "sides of it.")
SOURCE = "papers.md 1.5 (spectral corollaries); Benaych-Georges and Nadakuditi 2012"
COLUMNS = ("theta_over_theta_c", "theta", "s_mean", "s_sd", "s_theory", "overlap_p_mean", "overlap_p_sd",
           "overlap_p_theory", "overlap_n_mean", "overlap_n_sd", "overlap_n_theory", "N", "M", "trials")


def make(ctx: FigureContext) -> FigureResult:
    if ctx.quick:
        N, M, T = 200, 400, 16
        grid = [0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0]
    else:
        N, M, T = 1000, 2000, 32
        grid = [0.25, 0.5, 0.75, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0]
    p, n = min(N, M), max(N, M)
    c = p / n
    tc = bbp_threshold(c)
    rows = []
    for k, x in enumerate(grid):
        d = bbp_samples(N, M, (x,), "gaussian", 1.0, T, ctx.seed + 7919 * k, ctx.device)
        (s_pred, op_pred, on_pred), _ = bbp_predictions(x, p, n, d["sigma2"])
        s, op, on = d["s"][:, 0], d["overlap_p"][:, 0], d["overlap_n"][:, 0]
        rows.append(dict(theta_over_theta_c=x, theta=x * tc, s_mean=float(s.mean()), s_sd=float(s.std(ddof=1)),
                         s_theory=float(s_pred), overlap_p_mean=float(op.mean()), overlap_p_sd=float(op.std(ddof=1)),
                         overlap_p_theory=float(op_pred), overlap_n_mean=float(on.mean()),
                         overlap_n_sd=float(on.std(ddof=1)), overlap_n_theory=float(on_pred), N=N, M=M, trials=T))
    xs = np.array(grid)
    fine = np.linspace(min(grid), max(grid), 400)
    fig, axes = style.figure(ncols=2, width=4.8, height=3.6)
    ax = axes[0]
    ax.plot(fine, outlier_singular_value(fine * tc, c), color=style.COLORS[1],
            label=r"limit $\sqrt{(1+\theta^2)(c+\theta^2)}/\theta$")
    ax.axhline(1 + math.sqrt(c), color="k", linestyle=":", label=r"bulk edge $1+\sqrt{c}$")
    below = xs <= 1.0
    ax.plot(xs[below], [r["s_theory"] for r, b in zip(rows, below) if b], linestyle="none", marker="x",
            color=style.COLORS[2], label="edge + TW mean (finite n)")
    ax.errorbar(xs, [r["s_mean"] for r in rows], yerr=[r["s_sd"] for r in rows], fmt="o", color=style.COLORS[0],
                capsize=2, ms=4, label=f"simulated (mean $\\pm$ sd, {T} draws)")
    ax.axvline(1.0, color="0.5", linewidth=1, linestyle="--")
    ax.set_xlabel(r"signal strength $\theta / \theta_c$  ($\theta_c = c^{1/4}$)")
    ax.set_ylabel(r"top singular value of $W$ / $(\sigma\sqrt{n})$")
    ax.set_title(f"outlier location, {N} x {M} (c = {c:g})")
    ax.legend(fontsize=7.5)
    ax = axes[1]
    ou, ov = singular_vector_overlaps(fine * tc, c)
    ax.plot(fine, ou, color=style.COLORS[1], label=r"limit, $p$ side $|\langle u,\hat u\rangle|^2$")
    ax.plot(fine, ov, color=style.COLORS[3], label=r"limit, $n$ side $|\langle v,\hat v\rangle|^2$")
    ax.errorbar(xs, [r["overlap_p_mean"] for r in rows], yerr=[r["overlap_p_sd"] for r in rows], fmt="o",
                color=style.COLORS[1], mfc="white", capsize=2, ms=4, label="simulated, p side")
    ax.errorbar(xs, [r["overlap_n_mean"] for r in rows], yerr=[r["overlap_n_sd"] for r in rows], fmt="s",
                color=style.COLORS[3], mfc="white", capsize=2, ms=4, label="simulated, n side")
    ax.axvline(1.0, color="0.5", linewidth=1, linestyle="--", label="BBP threshold")
    ax.set_xlabel(r"signal strength $\theta / \theta_c$")
    ax.set_ylabel("squared overlap with the planted vector")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("singular-vector overlaps")
    ax.legend(fontsize=7.5, loc="lower right")
    fig.suptitle(r"Rank-one signal $\theta\, u v^T$ plus noise: the BBP phase transition")
    above = [r for r in rows if r["theta_over_theta_c"] > 1.0]
    err = max(abs(r["s_mean"] - r["s_theory"]) for r in above)
    notes = [f"{N}x{M}, {T} draws per strength; above the threshold the largest |mean - limit| of the outlier is "
             f"{err:.4f} sigma sqrt(n) (finite-size bias O(1/n) and sampling error)"]
    return FigureResult(rows, fig, [], notes)
