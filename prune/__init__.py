"""prune: everything that touches an ``nn.Module`` (DESIGN.md).

Per-layer spectral analysis (``analysis``), the weight-matrix views and factorised layers (``layers``),
SVD truncation at the BEMA edge and its baselines (``svd``), honest parameter counts (``params``),
dataset loaders (``data``).
"""
from .analysis import LayerRow, LayerTable, analyze
from .layers import FactorizedConv2d, FactorizedLinear, prunable_layers, weight_matrix
from .params import count_nonzero, count_parameters
from .plots import plot_esd, save_esd_plots
from .sparsify import (apply_masks, freeze_masks, magnitude_prune, masks_from_model, mp_magnitude_prune,
                       rmt_cycle_prune, sparsify_singular_vectors, sparsity_report)
from .spectral_sparsify import spectral_sparsify
from .svd import LayerCut, energy_truncate, mp_truncate, rank_truncate, svd_truncate

__all__ = [
    "analyze", "LayerTable", "LayerRow",
    "FactorizedLinear", "FactorizedConv2d", "prunable_layers", "weight_matrix",
    "count_parameters", "count_nonzero",
    "plot_esd", "save_esd_plots",
    "mp_truncate", "rank_truncate", "energy_truncate", "svd_truncate", "LayerCut",
    "magnitude_prune", "apply_masks", "masks_from_model", "freeze_masks", "sparsity_report",
    "sparsify_singular_vectors", "mp_magnitude_prune", "rmt_cycle_prune", "spectral_sparsify",
]
