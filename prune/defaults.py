"""The defaults that analysis and pruning share, so that the table a user reads is what gets cut.

``BEMA_ALPHA`` / ``BEMA_BETA``: BEMA's trimming and Tracy-Widom level for :func:`prune.analysis.analyze` and
:func:`prune.methods.svd.mp_truncate` alike (seed paper 1's values, papers.md 1.3): a layer's ``n_spikes`` in the
analysis table is exactly the rank ``mp_truncate(model, bulk_keep=0, min_rank=1)`` keeps.
"""
from __future__ import annotations

__all__ = ["BEMA_ALPHA", "BEMA_BETA"]

BEMA_ALPHA = 0.25
BEMA_BETA = 0.1
