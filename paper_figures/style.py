"""One plotting style for every figure: sizes, fonts, colours, and saving PNG (and PDF) files.

Use :func:`figure` to open a figure inside the style and :func:`save` to write it; the style is
applied through ``matplotlib.rc_context`` so that importing this module changes nothing global.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401

__all__ = ["RC", "COLORS", "PAPER", "OURS", "THEORY", "style", "figure", "save", "paper_marker", "log_ticks"]

#: rcParams shared by every figure (readable when a PNG is shown at about 100 % in a browser).
RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
}

#: a colour-blind-safe cycle (Okabe-Ito)
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
#: the roles every figure uses the same way: the paper's numbers, ours, a theoretical curve
PAPER = {"color": "#000000", "marker": "s", "markerfacecolor": "none", "linestyle": "--", "label": "paper"}
OURS = {"color": COLORS[0], "marker": "o", "linestyle": "-", "label": "ours"}
THEORY = {"color": COLORS[1], "linestyle": "-", "linewidth": 2.0}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context in which the project's rcParams and colour cycle are active."""
    from cycler import cycler

    with plt.rc_context({**RC, "axes.prop_cycle": cycler(color=COLORS)}):
        yield


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.6, height: float = 3.6, **kwargs):
    """A new figure with ``nrows`` x ``ncols`` axes of about ``width`` x ``height`` inches each, in the style.

    Returns ``(fig, axes)``; ``axes`` is always a flat list.
    """
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                                 layout="constrained", **kwargs)
    return fig, list(axes.ravel())


def save(fig, base: Path, pdf: bool = False) -> list[Path]:
    """Write ``base``.png (and ``base``.pdf when ``pdf``), close the figure, return the paths written."""
    base = Path(base)
    paths = [base.with_suffix(".png")] + ([base.with_suffix(".pdf")] if pdf else [])
    with style():
        for path in paths:
            fig.savefig(path)
    plt.close(fig)
    return paths


def paper_marker(ax, x, y, label: str = "paper", **kwargs) -> None:
    """Plot the paper's reported numbers in the common 'paper' style (open black squares, dashed)."""
    opts = {**PAPER, "label": label, **kwargs}
    ax.plot(x, y, **opts)


def log_ticks(ax, values, axis: str = "x") -> None:
    """Label a log axis at ``values`` exactly (plain numbers), without the crowded minor-tick labels."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(list(values)))
    target.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())
