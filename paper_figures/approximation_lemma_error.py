r"""The approximation lemma: the error of the pruned matrix against N.

W = S + R with S of rank 3 (singular values 4 theta_c sigma sqrt(n), Haar vectors) and R of variance 1/N;
W' = W with the singular values below BEMA's edge removed. The lemma (papers.md 1.1, App. B) says W'
approximates S: ||W' - S||_F <= ||R||_F, and in the rank-aware form ||W' - S||_F <= sqrt(2r)(s_+ + ||R||_2).
In units sigma sqrt(n), ||R||_F grows like sqrt(p) while ||W' - S||_F stays O(sqrt(r)): the relative error
||W' - S||_F / ||R||_F falls like N^{-1/2}. The runs are :func:`simulations.spectral_checks.approximation_experiment`
(which also measures the Gavish-Donoho hard threshold and optimal shrinker); this module only sweeps N.
"""
from __future__ import annotations

import re

import numpy as np

from simulations.spectral_checks import approximation_experiment

from . import style
from .registry import FigureContext, FigureResult

NAME = "approximation_lemma_error"
TITLE = "Approximation lemma: error of the pruned matrix against N"
CAPTION = ("Removing the singular values below BEMA's edge leaves an error ||W' - S|| that stays bounded while the "
           "noise ||R||_F grows like sqrt(N), so the pruned matrix approximates the signal ever better relative "
           "to the noise, about as well as the Gavish-Donoho hard threshold.")
SOURCE = "papers.md 1.1 (App. B: Approximation Lemma), simulations check 3"
COLUMNS = ("N", "M", "rank", "theta_over_theta_c", "trials", "err_bema_F", "err_bema_2", "R_F", "R_2",
           "err_gd_hard_F", "err_gd_shrink_F", "ratio_F_max", "ratio_rank_aware_max")

# the details string of approximation_experiment's first record (all in units sigma sqrt(n))
_PATTERNS = {
    "err_bema_F": r"\|\|W'-S\|\|_F mean ([-+0-9.eE]+)",
    "err_bema_2": r"\|\|W'-S\|\|_2 mean ([-+0-9.eE]+)",
    "R_F": r"\|\|R\|\|_F ([-+0-9.eE]+)",
    "R_2": r"\|\|R\|\|_2 ([-+0-9.eE]+)",
    "err_gd_hard_F": r"GD hard ([-+0-9.eE]+)",
    "err_gd_shrink_F": r"GD shrinker ([-+0-9.eE]+)",
}


def _parse(details: str) -> dict:
    """The mean errors that approximation_experiment reports in its details (4 significant digits)."""
    out = {}
    for key, pat in _PATTERNS.items():
        m = re.search(pat, details)
        if m is None:
            raise RuntimeError(f"approximation_experiment's details no longer state {key!r}: {details!r}")
        out[key] = float(m.group(1))
    return out


def make(ctx: FigureContext) -> FigureResult:
    Ns, trials = ((50, 100, 200, 400, 800), 4) if ctx.quick else ((100, 200, 400, 800, 1600, 3200), 8)
    rank, theta = 3, 4.0
    rows = []
    for N in Ns:
        recs = approximation_experiment(N, 2 * N, theta, rank, "low_rank", "gaussian", 1.0, trials, ctx.seed,
                                        ctx.device)
        frob, sharp = recs[0], recs[1]
        rows.append(dict(N=N, M=2 * N, rank=rank, theta_over_theta_c=theta, trials=trials, **_parse(frob.details),
                         ratio_F_max=float(frob.measured), ratio_rank_aware_max=float(sharp.measured),
                         held=bool(frob.held and sharp.held)))
    N = np.array(Ns, dtype=float)
    fig, axes = style.figure(ncols=2, width=4.8, height=3.6)
    ax = axes[0]
    ax.loglog(N, [r["R_F"] for r in rows], marker="s", color="k", label=r"noise $\|R\|_F$")
    ax.loglog(N, [r["err_bema_F"] for r in rows], marker="o", color=style.COLORS[0],
              label=r"$\|W'-S\|_F$, BEMA edge (ours)")
    ax.loglog(N, [r["err_gd_hard_F"] for r in rows], marker="^", linestyle="--", color=style.COLORS[2],
              label="Gavish-Donoho hard threshold")
    ax.loglog(N, [r["err_gd_shrink_F"] for r in rows], marker="v", linestyle=":", color=style.COLORS[3],
              label="Gavish-Donoho optimal shrinker")
    ax.loglog(N, [r["err_bema_2"] for r in rows], marker="o", mfc="white", color=style.COLORS[0], linestyle="-.",
              label=r"$\|W'-S\|_2$, BEMA edge")
    ax.set_xlabel("N (matrix N x 2N)")
    ax.set_ylabel(r"error in units $\sigma\sqrt{n}$")
    ax.set_title(f"rank-{rank} signal at {theta:g} x the BBP threshold, mean of {trials} draws")
    ax.legend(fontsize=7.5)
    style.log_ticks(ax, Ns)
    ax = axes[1]
    ax.loglog(N, [r["ratio_F_max"] for r in rows], marker="o", color=style.COLORS[0],
              label=r"$\max \|W'-S\|_F / \|R\|_F$")
    ax.loglog(N, [r["ratio_rank_aware_max"] for r in rows], marker="D", color=style.COLORS[1],
              label=r"$\max \|W'-S\|_F / (\sqrt{2r}(s_+ + \|R\|_2))$")
    ref = rows[0]["ratio_F_max"] * np.sqrt(N[0] / N)
    ax.loglog(N, ref, color="0.4", linestyle=":", label=r"slope $N^{-1/2}$")
    ax.axhline(1.0, color="k", linestyle="--", label="lemma's bound (ratio 1)")
    ax.set_xlabel("N (matrix N x 2N)")
    ax.set_ylabel("ratio (max over draws)")
    ax.set_title("the lemma's two bounds")
    ax.set_ylim(min(r["ratio_F_max"] for r in rows) / 2, 2.0)
    ax.legend(fontsize=7.5, loc="lower left")
    style.log_ticks(ax, Ns)
    fig.suptitle(r"Approximation lemma: $W'$ (bulk removed at BEMA's edge) against the signal $S$")
    slope = float(np.polyfit(np.log(N), np.log([r["ratio_F_max"] for r in rows]), 1)[0])
    notes = [f"log-log slope of max ||W'-S||_F/||R||_F against N: {slope:.3f} (lemma's rate: -1/2)",
             f"both bounds held at every N: {all(r['held'] for r in rows)}"]
    return FigureResult(rows, fig, [], notes, extra={"slope_ratio_F": slope})
