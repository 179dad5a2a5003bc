"""One safeguarded Newton update for many bracketed roots at once (used by the ppf solvers)."""
from __future__ import annotations

import numpy as np


def bracketed_newton_update(x: np.ndarray, f: np.ndarray, step: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                            step_tol: np.ndarray, bracket_tol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (x_next, converged) for roots bracketed by [lo, hi] (already updated with f(x)).

    The Newton point ``x - step`` is taken when it lies strictly inside the bracket, else the
    bracket's midpoint. An entry has converged when its Newton step is below ``step_tol``, f is
    exactly 0, or the bracket is narrower than ``bracket_tol``; a converged entry keeps its Newton
    point if that is inside the bracket and ``x`` otherwise -- never the midpoint, which would
    throw away a converged root (the point the bracket's end was just moved to).
    """
    newton = x - step
    converged = (np.isfinite(step) & (np.abs(step) <= step_tol)) | (f == 0.0) | (hi - lo <= bracket_tol)
    inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
    x_next = np.where(converged, np.where(inside & (f != 0.0), newton, x), np.where(inside, newton, 0.5 * (lo + hi)))
    return x_next, converged
