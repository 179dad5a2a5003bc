"""Kept for compatibility: spectrum-preserving sparsification moved to :mod:`prune.methods.spectral_sparsify`.

Every name this module had is re-exported here as the same object (``tests/test_prune_imports.py``).
"""
from .methods.spectral_sparsify import (  # noqa: F401
    _as_matrix,
    _check_matrix,
    _generator,
    keep_probabilities,
    singular_value_error,
    sparsification_curve,
    sparsify_matrix,
    spectral_error,
    spectral_sparsify,
)

__all__ = [
    "keep_probabilities",
    "sparsify_matrix",
    "spectral_sparsify",
    "spectral_error",
    "singular_value_error",
    "sparsification_curve",
]
