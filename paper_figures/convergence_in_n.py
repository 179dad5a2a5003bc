r"""Convergence in N: the theorem checks' errors against their bounds as the matrices grow.

Data: ``simulations.scaling`` (``rmt verify --scaling``), kept in ``results/scaling/scaling.csv`` with the
command in ``scaling.json``. For the key lemma, BEMA's sigma2, the BBP outlier and overlaps and the entry-wise
threshold, each panel plots the measured error (points with standard errors) and the bound ``rmt verify``
uses (line) against N on log axes, with the least-squares exponents of both in the legend. The bound holds
at every N when the points stay under the line; the exponents say whether the gap grows.
"""
from __future__ import annotations

from .registry import FigureContext, FigureResult, read_csv, results_root

NAME = "convergence_in_n"
TITLE = "Convergence in N of the theorem checks"
CAPTION = ("From N = 100 to 4096 the key-lemma change, BEMA's sigma2 error and the largest noise entry stay "
           "below the bounds rmt verify uses, at the fitted rates (sigma2 ~ 1/N, key-lemma change ~ N^-0.6 "
           "against the bound's N^-0.4); the BBP outlier and overlaps fluctuate at ~ N^-1/2 around their limits, "
           "with a bias of the mean within the check's O(1/n) allowance wherever the draws resolve it.")
SOURCE = "issue 16; papers.md 1.5, 2.3 (key lemma, thresholding); Ke, Ma and Lin 2023 (BEMA); Benaych-Georges and Nadakuditi 2012"
COLUMNS = ("quantity", "N", "draws", "measured", "measured_se", "bound", "exponent_measured", "exponent_bound")

PANELS = (
    ("key_lemma", ("key_lemma",), "mean ||X(s;S2) - X(s;W2)||_inf", "tau_N (mean over s)"),
    ("BEMA sigma2", ("bema_sigma2",), "rms |sigma2_hat/sigma2 - 1|", "5 x 1.75/sqrt(pn)"),
    ("BBP outlier location (2 theta_c)", ("bbp_location",), "rms |s1 - limit| (units sigma sqrt n)",
     "bias allowance 6/n"),
    ("BBP squared overlaps", ("bbp_overlap_p", "bbp_overlap_n"), "rms |overlap - limit|", "bias allowance 6/n"),
    ("entry-wise threshold (delta 0.05)", ("entrywise_threshold",), "mean max |R_ij|", "t = sqrt(2 log(2N^2/delta)/N)"),
)


def draw(rows: list[dict]):
    """The figure of :func:`simulations.scaling.summarise`'s rows (also used by ``rmt verify --scaling``)."""
    import numpy as np

    from . import style

    fig, axes = style.figure(ncols=3, nrows=2, width=4.4, height=3.5)
    for ax, (title, quantities, ylab, blab) in zip(axes, PANELS):
        for k, q in enumerate(quantities):
            sel = sorted((r for r in rows if r["quantity"] == q), key=lambda r: float(r["N"]))
            if not sel:
                continue
            N = np.array([float(r["N"]) for r in sel])
            m = np.array([float(r["measured"]) for r in sel])
            se = np.array([float(r["measured_se"]) for r in sel])
            b = np.array([float(r["bound"]) for r in sel])
            col = style.COLORS[2 * k]
            tag = "" if len(quantities) == 1 else f" ({q.rsplit('_', 1)[-1]} side)"
            ax.errorbar(N, m, yerr=np.where(np.isfinite(se), se, 0.0), marker="o", ms=4, linestyle="none",
                        color=col, capsize=2,
                        label=f"measured{tag}, slope {float(sel[0]['exponent_measured']):.2f}")
            if q.startswith("bbp_"):
                # the allowance bounds the bias of the mean; the rms error is dominated by O(n^-1/2) fluctuations
                bias = np.abs([float(r["bias"]) for r in sel])
                bse = np.array([float(r["bias_se"]) for r in sel])
                ax.errorbar(N * (1.03 if k else 0.97), np.maximum(bias, 1e-6), yerr=bse, marker="s", ms=4,
                            mfc="none", linestyle="none", color=col, capsize=2, alpha=0.8,
                            label=f"|bias of the mean|{tag}")
            if k == 0:
                ax.plot(N, b, color=style.COLORS[1], label=f"bound: {blab}, slope {float(sel[0]['exponent_bound']):.2f}")
            if q in ("bema_sigma2", "bbp_location", "bbp_overlap_p", "bbp_overlap_n", "key_lemma"):
                # the fitted power law through the measurements
                slope = float(sel[0]["exponent_measured"])
                c0 = float(np.exp(np.mean(np.log(m) - slope * np.log(N))))
                ax.plot(N, c0 * N**slope, color=col, linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("N")
        ax.set_ylabel(ylab, fontsize=8)
        ax.legend(fontsize=6.5, loc="best")
    ax = axes[-1]
    ax.axis("off")
    lines = ["Points: Monte-Carlo mean +- 1 s.e.;", "dotted: fitted power law.", "",
             "Shapes: BEMA and BBP N x 2N (c = 1/2),", "entry-wise N x N, key lemma N hidden units,",
             "|T| = 64 inputs, planted net.", "", "draws per N:"]
    for q in ("key_lemma", "bema_sigma2", "entrywise_threshold"):
        sel = sorted((r for r in rows if r["quantity"] == q), key=lambda r: float(r["N"]))
        lines.append(f"  {q}: " + ", ".join(str(int(float(r["draws"]))) for r in sel))
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=8, transform=ax.transAxes)
    return fig


def make(ctx: FigureContext) -> FigureResult:
    """Read ``results/scaling/scaling.csv`` (unless ``ctx.recompute``); otherwise compute: the quick grid
    (N = 100, 200, 400) in quick mode, the full grid (100 to 4096) in full mode."""
    from simulations.scaling import DEFAULT_GRID, QUICK_GRID, run_scaling

    cached = results_root() / "scaling" / "scaling.csv"
    if cached.is_file() and not ctx.recompute:
        rows = read_csv(cached)
        source = "results/scaling/scaling.csv (command in results/scaling/scaling.json)"
    else:
        grid = QUICK_GRID if ctx.quick else DEFAULT_GRID
        rows = run_scaling(ctx.seed, grid, ctx.quick, progress=ctx.progress)
        source = f"computed now (grid {list(grid)}, seed {ctx.seed})"
    keep = [{k: r[k] for k in COLUMNS} | {k: r[k] for k in r if k not in COLUMNS} for r in rows]
    notes = []
    for q in dict.fromkeys(r["quantity"] for r in keep):
        r = next(x for x in keep if x["quantity"] == q)
        notes.append(f"fitted exponent of {q}: measured {float(r['exponent_measured']):.2f}, bound "
                     f"{float(r['exponent_bound']):.2f}")
    return FigureResult(rows=keep, figure=draw(keep), notes=notes, data_source=source)
