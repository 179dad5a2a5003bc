"""Pruning methods, one module per method family (see PROVENANCE.md for the successor's constants).

* :mod:`.seb`: Spectral Edge Budgeting (SEB) and our spectrum-guided layer budgets;
* :mod:`.ser`: Spectral Edge Reallocation (SER) and Hybrid Magnitude-SER.
"""
from .seb import SEB_BANDS, input_feature_norms, layer_spectra, seb_prune, seb_weights, spectral_budget_prune
from .ser import hybrid_prune, ser_prune

__all__ = ["SEB_BANDS", "layer_spectra", "seb_weights", "seb_prune", "spectral_budget_prune", "input_feature_norms",
           "ser_prune", "hybrid_prune"]
