"""prune: everything that touches an ``nn.Module`` (DESIGN.md).

Per-layer spectral analysis (``analysis``), the weight-matrix views and factorised layers (``layers``),
honest parameter counts (``params``), dataset loaders (``data``), the masks every element-wise method returns
and their freezing in training (``masks``), and the pruning methods, one module per method family
(``methods``: ``svd`` SVD truncation at the BEMA edge and its baselines, ``magnitude``, ``singular_vectors``,
``mp_cycles``, ``spectral_sparsify``, ``seb``, ``ser``). ``sparsify``, ``svd`` and ``spectral_sparsify`` at the
top level are kept for compatibility and re-export the same objects from their new homes.
"""
# The compatibility modules are loaded here, as before the split: ``prune.sparsify`` and ``prune.svd`` stay
# attributes of the package, and ``prune.spectral_sparsify`` stays the function (importing its module later
# would otherwise rebind the name to the module).
from . import sparsify, svd  # noqa: F401
from .analysis import LayerRow, LayerTable, analyze
from .layers import FactorizedConv2d, FactorizedLinear, prunable_layers, weight_matrix
from .masks import apply_masks, freeze_masks, masks_from_model, sparsity_report
from .methods.magnitude import magnitude_prune
from .methods.mp_cycles import mp_magnitude_prune, rmt_cycle_prune
from .methods.singular_vectors import sparsify_singular_vectors
from .methods.svd import LayerCut, energy_truncate, mp_truncate, rank_truncate, svd_truncate
from .params import count_nonzero, count_parameters
from .plots import plot_esd, save_esd_plots
from .spectral_sparsify import spectral_sparsify

__all__ = [
    "analyze", "LayerTable", "LayerRow",
    "FactorizedLinear", "FactorizedConv2d", "prunable_layers", "weight_matrix",
    "count_parameters", "count_nonzero",
    "plot_esd", "save_esd_plots",
    "mp_truncate", "rank_truncate", "energy_truncate", "svd_truncate", "LayerCut",
    "magnitude_prune", "apply_masks", "masks_from_model", "freeze_masks", "sparsity_report",
    "sparsify_singular_vectors", "mp_magnitude_prune", "rmt_cycle_prune", "spectral_sparsify",
]
