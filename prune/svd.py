"""Kept for compatibility: SVD truncation moved to :mod:`prune.methods.svd`; import it from there.

Every name this module had is re-exported here as the same object (``tests/test_prune_imports.py``).
"""
from .methods.svd import (  # noqa: F401
    _EDGE_ATTR,
    LayerCut,
    LayerSVD,
    RankRule,
    _check_number,
    _spectrum_fields,
    _stays_dense,
    default_min_rank,
    energy_truncate,
    layer_svd,
    mp_keep_rank,
    mp_truncate,
    numerical_rank,
    rank_truncate,
    svd_truncate,
    truncate_layer,
)

__all__ = [
    "LayerCut",
    "default_min_rank",
    "layer_svd",
    "mp_keep_rank",
    "truncate_layer",
    "svd_truncate",
    "mp_truncate",
    "rank_truncate",
    "energy_truncate",
]
