r"""ESD plots of analysed layers: histogram of :math:`\lambda_i = s_i^2 / n`, the fitted MP density, the BEMA edge.

For one row of :func:`prune.analysis.analyze` (run with ``keep_eigenvalues=True``):

* the empirical spectral density (histogram, normalised to a density in :math:`\lambda`);
* the Marchenko-Pastur density :math:`MP(\gamma = p/n, \hat\sigma^2)` with BEMA's :math:`\hat\sigma^2`
  (``theory.MarchenkoPastur.pdf``; Marchenko and Pastur 1967);
* BEMA's edge :math:`\hat\lambda_+` (MP edge plus the Tracy-Widom margin; Ke, Ma and Lin 2023) as a
  vertical line; eigenvalues above it are the spikes (signal), marked one by one under the axis so
  that a single far outlier stays visible. When the spikes lie far beyond the bulk the x axis is
  logarithmic (with logarithmic bins), so bulk and outliers share one panel.

matplotlib is imported only inside the functions, and figures are drawn on ``matplotlib.figure.Figure``
with the Agg canvas: nothing global (backend, rcParams) is changed.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from theory import MarchenkoPastur

from .analysis import LayerRow, LayerTable

__all__ = ["plot_esd", "save_esd_plots"]

# Okabe-Ito colours (colour-blind safe), as in paper_figures.style
_HIST, _MP, _EDGE, _SPIKE = "#56B4E9", "#D55E00", "#000000", "#CC79A7"
# log x when the largest eigenvalue is this many times the edge: on a linear axis the bulk would fill
# less than a tenth of the panel
_LOG_X_FACTOR = 10.0
# fewer eigenvalues than this are marked one by one instead of binned
_MIN_HIST = 8


def _key(row: LayerRow) -> str:
    return f"{row.name}[{row.view}]"


def _fitted(row: LayerRow) -> bool:
    return math.isfinite(row.sigma2) and row.sigma2 > 0 and math.isfinite(row.lambda_plus)


def plot_esd(ax, eigenvalues, row: LayerRow, *, bins: int | None = None, log_x: bool | None = None,
             legend: bool = True, compact: bool = False):
    r"""Draw one layer's ESD with its fitted MP density and BEMA edge on the matplotlib Axes ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    eigenvalues : array_like, shape (p,)
        The p values :math:`\lambda_i = s_i^2 / n` (``table.eigenvalues[f"{row.name}[{row.view}]"]``).
    row : LayerRow
        The analysis row: ``sigma2``, ``lambda_plus``, ``n_spikes``, ``mp_fit_error``, shape.
        A row without a fit (``note``) gets the histogram only, with the note in the title.
    bins : int, optional
        Histogram bins; default :math:`\min(80, \max(10, 2\sqrt{p}))`.
    log_x : bool, optional
        Logarithmic x axis; default: when the largest eigenvalue exceeds 10 :math:`\hat\lambda_+`.
    legend : bool
        Draw the legend.
    compact : bool
        Shorter title and labels (for grids).

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.

    Notes
    -----
    The histogram is a density over all p values (counts / (p * bin width)): in :math:`\lambda` on a
    linear axis, in :math:`\log_{10}\lambda` on a log axis (where the MP curve is drawn as
    :math:`\lambda \ln(10) f(\lambda)`), so that its area is always the fraction of the spectrum, to
    compare with the MP density

    .. math:: f(\lambda) = \frac{\sqrt{(\lambda_+ - \lambda)(\lambda - \lambda_-)}}{2\pi\sigma^2\gamma\lambda},
              \quad \lambda_\pm = \sigma^2(1 \pm \sqrt\gamma)^2.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    if lam.size != row.p:
        raise ValueError(f"eigenvalues must hold the row's p = {row.p} values, got {lam.size}")
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues must be finite")
    if bins is not None and (not isinstance(bins, (int, np.integer)) or bins < 1):
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    fitted = _fitted(row)
    lam_plus = row.lambda_plus if fitted else math.nan
    top = float(lam[-1])
    if log_x is None:
        log_x = fitted and top > _LOG_X_FACTOR * lam_plus
    # rounding can leave tiny negative eigenvalues (zero in exact arithmetic); they are drawn at 0
    lam_plot = np.maximum(lam, 0.0)
    positive = lam_plot[lam_plot > 0]
    n_zero = int(lam.size - positive.size)
    log_x = bool(log_x) and positive.size > 0
    few = lam.size < _MIN_HIST
    if few:
        # a histogram of a handful of values says nothing: mark each value on the axis
        ax.plot(lam_plot, np.zeros(lam.size), ls="none", marker="|", ms=14, mew=2, color=_HIST,
                label=f"eigenvalues, p = {row.p}")
        ax.set_yticks([])
        ymax = 1.0
    elif log_x:
        nb = int(bins) if bins is not None else int(min(80, max(10, round(2 * math.sqrt(lam.size)))))
        lo, hi = float(positive[0]), float(positive[-1])
        edges = np.geomspace(lo, hi * (1 + 1e-9), nb + 1) if hi > lo else np.array([lo * 0.9, lo * 1.1])
        data = positive
    else:
        hi = max(top, lam_plus if fitted else 0.0)
        hi = hi * 1.02 if hi > 0 else 1.0
        if bins is None and fitted:
            # about 2 sqrt(#bulk) bins across the bulk [0, lambda_+], the same width beyond it, so that
            # lambda_+ is a bin edge (no bar straddles the edge)
            n_bulk = int(np.count_nonzero(lam <= lam_plus))
            width = lam_plus / max(5, round(2 * math.sqrt(max(n_bulk, 1))))
            if hi / width > 200:  # far outliers on a linear axis (log_x=False): cap the bin count
                width = hi / 200
            edges = width * np.arange(math.ceil(hi / width) + 1)
        else:
            nb = int(bins) if bins is not None else int(min(80, max(10, round(2 * math.sqrt(lam.size)))))
            edges = np.linspace(0.0, hi, nb + 1)
        data = lam_plot
    if not few:
        # density over all p values (so the bars' area is the fraction of the spectrum they hold); on a log
        # axis a density in log10(lambda): per unit lambda, the narrow low bins would look huge
        counts, edges = np.histogram(data, bins=edges)
        dens = counts / (lam.size * np.diff(np.log10(edges) if log_x else edges))
        ax.bar(edges[:-1], dens, width=np.diff(edges), align="edge", color=_HIST, edgecolor="white",
               linewidth=0.3, label=f"ESD, p = {row.p}" + ("" if not n_zero else f" ({n_zero} zero, not shown)"
                                                             if log_x else f" (incl. {n_zero} at 0)"))
        ymax = float(dens.max()) if dens.size else 1.0
    if fitted:
        mp = MarchenkoPastur(ratio=row.p / row.n, sigma2=row.sigma2)
        a, b = mp.edges
        if log_x:
            xs = np.geomspace(max(a, b * 1e-6), b, 600)
        else:
            xs = np.linspace(a, b, 600)
        ys = mp.pdf(xs) * (xs * math.log(10.0) if log_x else 1.0)  # density of log10(lambda) on a log axis
        finite = np.isfinite(ys)
        ax.plot(xs[finite], ys[finite], color=_MP, lw=1.8,
                label=rf"MP($\gamma$={row.p / row.n:.3g}, $\sigma^2$={row.sigma2:.3g})")
        if not few and finite.any():
            # a density diverging at 0 (gamma = 1) must not flatten the histogram
            ymax = max(ymax, float(np.quantile(ys[finite], 0.9) if a == 0.0 else ys[finite].max()))
        ax.axvline(lam_plus, color=_EDGE, ls="--", lw=1.2, label=rf"BEMA edge $\lambda_+$={lam_plus:.3g}")
        spikes = lam[lam > lam_plus]
        if spikes.size:
            # one tick per spike just below the axis: a lone outlier has a bar of height 1/(p width)
            ax.plot(spikes, np.full(spikes.size, -0.04 * ymax), ls="none", marker="^", ms=5, alpha=0.8,
                    color=_SPIKE, clip_on=False, label=f"spikes ($\\lambda > \\lambda_+$): {spikes.size}")
    ax.set_ylim(-0.08 * ymax, 1.15 * ymax if ymax > 0 else 1.0)
    if log_x:
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0.0)
    ax.set_xlabel(r"eigenvalue $\lambda = s^2/n$" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("" if few else r"density of $\log_{10}\lambda$" if log_x else "density")
    shape = f"{row.N}×{row.M}"
    def short(text: str) -> str:
        return text if len(text) <= 60 else text[:57] + "..."

    if fitted:
        stats = f"{row.n_spikes} spike{'' if row.n_spikes == 1 else 's'}, MP-fit error {row.mp_fit_error:.3f}"
        if row.note:  # e.g. a factorised layer's zero eigenvalues
            stats += "\n" + short(row.note)
    else:
        stats = short(row.note or "no MP fit")
    view = "" if row.view == "matrix" else f" [{row.view}]"
    title = f"{row.name}{view} {shape}\n{stats}" if compact else f"{row.name}{view}  ({row.type}, {shape})\n{stats}"
    ax.set_title(title, fontsize=9 if compact else 10.5)
    if legend:
        ax.legend(fontsize=6.5 if compact else 8.5, loc="best", framealpha=0.85)
    return ax


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "layer"


def save_esd_plots(table: LayerTable, out_dir: str | Path, grid: bool = False, max_per_grid: int = 16,
                   *, dpi: int = 130) -> list[Path]:
    """Write ESD plots (:func:`plot_esd`) of every row of ``table`` as PNG files under ``out_dir``.

    Parameters
    ----------
    table : LayerTable
        From ``prune.analyze(model, keep_eigenvalues=True)``.
    out_dir : str or Path
        Created if missing.
    grid : bool
        False: one PNG per row, ``{index:03d}_{name}_{view}.png``. True: grids of up to
        ``max_per_grid`` panels, ``esd_grid_{k:02d}.png``.
    max_per_grid : int >= 1
    dpi : int

    Returns
    -------
    list of Path
        The files written, in table order.

    Raises
    ------
    ValueError
        The table has no eigenvalues (``keep_eigenvalues`` was not set), or one of its rows has none.
    TypeError
        ``table`` is not a LayerTable.
    """
    if not isinstance(table, LayerTable):
        raise TypeError(f"table must be a prune.analysis.LayerTable, got {type(table).__name__}")
    if isinstance(max_per_grid, bool) or not isinstance(max_per_grid, (int, np.integer)) or max_per_grid < 1:
        raise ValueError(f"max_per_grid must be an integer >= 1, got {max_per_grid!r}")
    if not table.eigenvalues:
        raise ValueError("table holds no eigenvalues: run prune.analyze(model, keep_eigenvalues=True) to plot ESDs")
    missing = [_key(r) for r in table if _key(r) not in table.eigenvalues]
    if missing:
        raise ValueError(f"table has no eigenvalues for {missing}: run prune.analyze(model, keep_eigenvalues=True)")
    from matplotlib.figure import Figure  # Agg canvas; pyplot and the global backend are not touched

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(table)
    written: list[Path] = []
    if not grid:
        for i, row in enumerate(rows):
            fig = Figure(figsize=(6.4, 4.2), layout="constrained")
            plot_esd(fig.add_subplot(), table.eigenvalues[_key(row)], row)
            path = out / f"{i:03d}_{_slug(row.name)}_{_slug(row.view)}.png"
            fig.savefig(path, dpi=dpi)
            written.append(path)
        return written
    for k, start in enumerate(range(0, len(rows), max_per_grid)):
        chunk = rows[start:start + max_per_grid]
        ncol = math.ceil(math.sqrt(len(chunk)))
        nrow = math.ceil(len(chunk) / ncol)
        fig = Figure(figsize=(4.3 * ncol, 3.4 * nrow), layout="constrained")
        axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
        for ax, row in zip(axes, chunk):
            plot_esd(ax, table.eigenvalues[_key(row)], row, compact=True)
        for ax in axes[len(chunk):]:
            ax.set_visible(False)
        path = out / f"esd_grid_{k:02d}.png"
        fig.savefig(path, dpi=dpi)
        written.append(path)
    return written
