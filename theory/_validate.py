"""Input checks shared by the ``theory`` package.

Every public function validates its arguments here so that bad input gets one kind of
error message: a ``ValueError`` or ``TypeError`` naming the argument and the value.
Nothing is silently clipped.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


def _real_scalar(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r:.80}")
    try:
        v = float(value)
    except OverflowError:  # a Python int or Fraction beyond the float64 range
        v = math.inf
    if math.isinf(v) and not value == v:  # also a longdouble or mpf that float() rounded to inf
        raise ValueError(f"{name} = {value!r:.80} is beyond the float64 range (|x| > 1.8e308)")
    return v


def positive_finite(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    v = _real_scalar(name, value)
    if not np.isfinite(v) or v <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def in_open_interval(name: str, value, lo: float, hi: float) -> float:
    """Return ``value`` as a float, or raise if it is not in the open interval (lo, hi)."""
    v = _real_scalar(name, value)
    if not (lo < v < hi):
        raise ValueError(f"{name} must lie in the open interval ({lo:g}, {hi:g}), got {value!r}")
    return v


def positive_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def _is_torch(value) -> bool:
    return type(value).__module__.split(".")[0] == "torch"


def torch_values(name: str, t):
    """A strided, real, autograd-free tensor with the values of tensor ``t`` (same device).

    Handled, and documented as such: a tensor that requires grad is detached (only its values are
    read, nothing is differentiated); a sparse tensor (COO, CSR, CSC, BSR, BSC) is densified; a
    quantized tensor is dequantized (its real values, scale and zero point applied). Refused with a
    ``TypeError`` naming the argument: a meta tensor (it has no values), a nested tensor, a complex one.
    """
    import torch

    if t.is_meta:
        raise TypeError(f"{name} is a meta tensor (shape {tuple(t.shape)}): it has no values to analyse")
    if getattr(t, "is_nested", False):
        raise TypeError(f"{name} is a nested tensor: pass its component matrices one by one")
    if t.dtype.is_complex:
        raise TypeError(f"{name} must be real, got complex dtype {t.dtype}")
    try:
        t = t.detach()
        if t.is_quantized:
            t = t.dequantize()
        if t.layout != torch.strided:
            t = t.to_dense()
    except (RuntimeError, NotImplementedError) as exc:
        raise TypeError(f"{name}: cannot read the values of a {t.layout} {t.dtype} tensor ({exc})") from exc
    return t


def _torch_to_numpy(name: str, t) -> np.ndarray:
    import torch

    t = torch_values(name, t)
    if t.dtype != torch.bool:
        t = t.to(torch.float64)  # exact for every real torch dtype except int64 beyond 2**53 (rounded)
    return t.cpu().numpy()


def _object_to_float(name: str, arr: np.ndarray) -> np.ndarray:
    """An object array of real numbers (huge Python ints, Fractions, mpmath mpf) as float64."""
    out = np.empty(arr.shape, dtype=np.float64)
    for idx in np.ndindex(arr.shape):
        e = arr[idx]
        if isinstance(e, (bool, np.bool_)) or not isinstance(e, numbers.Real):
            raise TypeError(f"{name} must be a real numeric array, holds {type(e).__name__} {e!r:.80}")
        try:
            v = float(e)
        except OverflowError:
            v = math.inf
        if math.isinf(v) and not e == v:
            raise ValueError(f"{name} holds {e!r:.80}, which is beyond the float64 range (|x| > 1.8e308)")
        out[idx] = v
    return out


def real_array(name: str, value, *, allow_bool: bool = False) -> np.ndarray:
    """``value`` (a number, nested list, numpy array or torch tensor) as a numpy array of real numbers.

    The values are never changed: complex input, strings, bytes, None, timedeltas and other
    non-numeric data are a ``TypeError`` naming the argument (nothing is silently cast or its
    imaginary part dropped); a masked array with masked entries is a ``TypeError``; a
    finite ``longdouble`` or integer beyond the float64 range is a ``ValueError``. Tensors go
    through :func:`torch_values` (detached, densified, dequantized; meta refused). Bools are numbers
    only where ``allow_bool`` (a boolean matrix); elsewhere a ``TypeError``. The result's dtype is
    float64, or the input's integer/bool/float dtype (converted by :func:`float_array`).
    """
    if _is_torch(value):
        arr = _torch_to_numpy(name, value)
    else:
        if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
            raise TypeError(f"{name} is a masked array with masked entries: fill or drop them first")
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be a real numeric array or number, got {type(value).__name__} {value!r:.80}")
        try:
            arr = np.asarray(value)
        except Exception as exc:  # ragged lists, objects whose __array__ fails, tensors inside lists
            raise TypeError(f"{name} must be a real numeric array or number, got {type(value).__name__}: {exc}") from exc
        if arr.dtype == object:
            arr = _object_to_float(name, arr)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype} (the imaginary part is not dropped)")
    if kind == "b" and not allow_bool:
        raise TypeError(f"{name} must be real numbers, got bool dtype (pass 0 and 1 as numbers)")
    if kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype} ({type(value).__name__} {value!r:.80})")
    return arr


def float_array(name: str, value, *, allow_bool: bool = False) -> np.ndarray:
    """:func:`real_array` converted to float64; a finite value beyond the float64 range (from a
    longdouble) is a ``ValueError``, a value below it rounds to a subnormal or 0 like any rounding."""
    arr = real_array(name, value, allow_bool=allow_bool)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        with np.errstate(over="ignore"):
            out = arr.astype(np.float64)
        over = np.isinf(out) & np.isfinite(arr)
        if over.any():
            raise ValueError(f"{name} holds {arr[over].ravel()[0]!r}, which is beyond the float64 range (|x| > 1.8e308)")
        return out
    return arr.astype(np.float64, copy=False)


def real_values(name: str, value) -> tuple[np.ndarray, bool]:
    """Arguments of a distribution function (x, q, s): float64 array and whether the input was 0-d.

    +-inf are accepted (the limits are well defined); NaN is a ``ValueError``; every other check as
    :func:`real_array`.
    """
    arr = float_array(name, value)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains {int(np.isnan(arr).sum())} NaN value(s)")
    return arr, arr.ndim == 0


def finite_array(name: str, value, ndim: int | None = None, *, allow_bool: bool = True) -> np.ndarray:
    """Return ``value`` as a float64 array, or raise if it is empty, not real or not finite."""
    arr = float_array(name, value, allow_bool=allow_bool)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
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
