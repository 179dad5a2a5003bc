"""theory: the random-matrix mathematics on spectra (numpy, scipy, mpmath; no torch at import).

Public names (DESIGN.md): MarchenkoPastur, TracyWidom, bema, mp_fit_error, esd, fit_spectrum,
plus the edge scaling / spike p-value and the spiked-model predictions.
"""
from .bema import BemaFit, bema, bema_window, tw_quantile
from .edge import EdgeScaling, edge_scaling, spike_pvalue
from .goodness_of_fit import mp_fit_error
from .marchenko_pastur import MarchenkoPastur
from .spectrum import SpectrumReport, esd, fit_eigenvalues, fit_spectrum
from .spiked import (
    bbp_threshold,
    optimal_hard_threshold,
    optimal_shrinker_frobenius,
    outlier_singular_value,
    signal_from_outlier,
    singular_vector_overlaps,
)
from .tracy_widom import TracyWidom

__all__ = [
    "MarchenkoPastur", "TracyWidom", "bema", "BemaFit", "bema_window", "tw_quantile", "mp_fit_error",
    "esd", "fit_spectrum", "fit_eigenvalues", "SpectrumReport", "edge_scaling", "EdgeScaling", "spike_pvalue",
    "bbp_threshold", "outlier_singular_value", "singular_vector_overlaps", "signal_from_outlier",
    "optimal_hard_threshold", "optimal_shrinker_frobenius",
]
