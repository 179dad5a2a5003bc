"""Pruning methods, one module per method family (see PROVENANCE.md for the successor's constants).

* :mod:`.svd`: SVD truncation of each layer, at the BEMA edge (MP pruning, seed paper 1), at a fixed rank or by
  energy (``mp_truncate``, ``rank_truncate``, ``energy_truncate``, ``svd_truncate``);
* :mod:`.magnitude`: magnitude pruning, global or per layer, by amount or threshold (``magnitude_prune``);
* :mod:`.singular_vectors`: seed paper 2's Algorithm C, sparsified singular vectors
  (``sparsify_singular_vectors``, ``paper_theta``);
* :mod:`.mp_cycles`: seed paper 2's MP-weighted budget (Algorithm D: ``mp_budget``, ``mp_magnitude_prune``) and
  its pruning cycles with the data-free regularisation phase (``rmt_cycle_prune``);
* :mod:`.spectral_sparsify`: spectrum-preserving element-wise sampling (seed paper 3's framing); its entry point
  ``spectral_sparsify`` is exported by :mod:`prune`, not here, so that the name keeps meaning the module;
* :mod:`.seb`: Spectral Edge Budgeting (SEB) and our spectrum-guided layer budgets;
* :mod:`.ser`: Spectral Edge Reallocation (SER) and Hybrid Magnitude-SER.

The masks these methods return, and the helpers they share, are in :mod:`prune.masks`.
"""
from .magnitude import magnitude_prune
from .mp_cycles import mp_budget, mp_magnitude_prune, rmt_cycle_prune
from .seb import SEB_BANDS, input_feature_norms, layer_spectra, seb_prune, seb_weights, spectral_budget_prune
from .ser import hybrid_prune, ser_prune
from .singular_vectors import paper_theta, sparsify_singular_vectors
from .svd import LayerCut, energy_truncate, mp_truncate, rank_truncate, svd_truncate

__all__ = ["mp_truncate", "rank_truncate", "energy_truncate", "svd_truncate", "LayerCut",
           "magnitude_prune",
           "paper_theta", "sparsify_singular_vectors",
           "mp_budget", "mp_magnitude_prune", "rmt_cycle_prune",
           "SEB_BANDS", "layer_spectra", "seb_weights", "seb_prune", "spectral_budget_prune", "input_feature_norms",
           "ser_prune", "hybrid_prune"]
