"""Kept for compatibility: ``prune.sparsify`` was split by method family; import from the new homes instead.

==========================================  ===========================================================
:mod:`prune.masks`                          masks (``prunable_weights``, ``apply_masks``,
                                            ``masks_from_model``, ``FrozenMasks``, ``freeze_masks``),
                                            sparsity reports (``sparsity_report``, ``global_sparsity``)
:mod:`prune.methods.magnitude`              ``magnitude_prune``
:mod:`prune.methods.singular_vectors`       seed paper 2's Algorithm C (``sparsify_singular_vectors``,
                                            ``paper_theta``)
:mod:`prune.methods.mp_cycles`              the MP-weighted budget (``mp_budget``, ``mp_magnitude_prune``)
                                            and the pruning cycles (``rmt_cycle_prune``)
==========================================  ===========================================================

Every name this module had is re-exported here as the same object (``tests/test_prune_imports.py``), including
the private helpers other code imported from it.
"""
from .masks import (  # noqa: F401
    FrozenMasks,
    Masks,
    SparsityReport,
    SparsityRow,
    _check_amount,
    _check_masks,
    _check_model,
    _join,
    _smallest_mask,
    apply_masks,
    freeze_masks,
    global_sparsity,
    masks_from_model,
    prunable_weights,
    sparsity_report,
)
from .methods.magnitude import magnitude_prune
from .methods.mp_cycles import CYCLE_SCHEDULES, BudgetRow, CycleRecord, mp_budget, mp_magnitude_prune, rmt_cycle_prune
from .methods.singular_vectors import (  # noqa: F401
    SEED_THETA_SCALE,
    SVSparsifyRow,
    _check_ab,
    _fit_or_none,
    paper_theta,
    sparsify_singular_vectors,
)

__all__ = [
    "Masks",
    "prunable_weights",
    "magnitude_prune",
    "apply_masks",
    "masks_from_model",
    "FrozenMasks",
    "freeze_masks",
    "SparsityRow",
    "SparsityReport",
    "sparsity_report",
    "global_sparsity",
    "paper_theta",
    "SVSparsifyRow",
    "sparsify_singular_vectors",
    "BudgetRow",
    "mp_budget",
    "mp_magnitude_prune",
    "CycleRecord",
    "rmt_cycle_prune",
    "CYCLE_SCHEDULES",
]
