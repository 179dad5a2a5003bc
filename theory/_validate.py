"""Input checks shared by the ``theory`` package.

Every public function validates its arguments here so that bad input gets one kind of
error message: a ``ValueError`` or ``TypeError`` naming the argument and the value.
Nothing is silently clipped.
"""
from __future__ import annotations

import numbers

import numpy as np


def positive_finite(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not np.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def in_open_interval(name: str, value, lo: float, hi: float) -> float:
    """Return ``value`` as a float, or raise if it is not in the open interval (lo, hi)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (lo < v < hi):
        raise ValueError(f"{name} must lie in the open interval ({lo:g}, {hi:g}), got {value!r}")
    return v


def positive_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def finite_array(name: str, value, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a float64 array, or raise if it is empty, not real or not finite."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy raises for ragged input
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), arr.shape)
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or Inf); first at index "
            f"{tuple(int(i) for i in first)}: {arr[first]!r}"
        )
    return arr


def dims(p, n) -> tuple[int, int]:
    """Validate the matrix dimensions ``p = min(N, M) <= n = max(N, M)``."""
    p = positive_int("p", p)
    n = positive_int("n", n)
    if p > n:
        raise ValueError(
            f"p must be <= n (p = min(N, M), n = max(N, M) as in DESIGN.md), got p={p}, n={n}"
        )
    return p, n


def eigenvalue_vector(eigenvalues, p: int) -> np.ndarray:
    """Validate a vector of the ``p`` eigenvalues of the smaller Gram matrix; return it sorted."""
    lam = finite_array("eigenvalues", eigenvalues, ndim=1)
    if lam.shape[0] != p:
        raise ValueError(f"eigenvalues must hold p={p} values (one per singular value), got {lam.shape[0]}")
    return np.sort(lam)
