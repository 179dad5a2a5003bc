"""Elementwise application of a scalar mpmath function (the high-precision ``dps=`` paths)."""
from __future__ import annotations

import numpy as np


def mp_map(fn, x):
    """Apply ``fn`` elementwise: a scalar in gives ``fn``'s value (an mpf), an array in gives an
    object array of the same shape."""
    arr = np.asarray(x, dtype=object)
    if arr.ndim == 0:
        return fn(arr[()])
    out = np.empty(arr.shape, dtype=object)
    for idx in np.ndindex(arr.shape):
        out[idx] = fn(arr[idx])
    return out
