"""paper_figures: regenerate the seed papers' figures and tables, one module per figure.

``rmt figures [NAME ...] [--quick | --full] [--out DIR] [--pdf] [--recompute] [--compare] [--list]`` runs them
(:mod:`paper_figures.registry`); each writes NAME.csv, NAME.png (NAME.pdf) and a NAME.json sidecar with the
comparison of the paper's numbers (``paper_figures/reference/*.json``, transcribed from papers.md) with ours;
``gallery.md`` shows them all. Figures built on long experiments read their cached results
(``results/<experiment>/``, ``benchmarks/results/``) unless asked to recompute.
"""
from .registry import FIGURES, FigureContext, comparison_table, run_figure, run_figures

__all__ = ["FIGURES", "FigureContext", "run_figure", "run_figures", "comparison_table"]
