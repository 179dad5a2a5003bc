"""Fuzz of the public API: random shapes, dtypes, NaN/Inf, zero and rank-one matrices, huge aspect ratios,
empty models, out-of-range options. A call may succeed or raise a clean ``ValueError`` / ``TypeError``
(DESIGN.md "Errors"); any other exception (IndexError, ZeroDivisionError, RuntimeError from LAPACK, ...)
is a crash and fails the test. A success must not hand back NaN where the input was finite and valid.

Also here: pruning never changes the input model unless ``inplace=True`` (every pruning function of
``prune``), and a guard that a new public pruning function with an ``inplace`` flag gets that check.

``benchmarks/fuzz.py`` runs the same targets (``TARGETS``) with many more examples and reports the crash
count per function.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import math
import pkgutil
import warnings
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import prune
import theory
from prune.methods.svd import energy_truncate, mp_truncate, rank_truncate
from prune.params import count_parameters

CLEAN = (ValueError, TypeError)

# ----------------------------------------------------------------------------------------------- matrices
SIZES = [0, 1, 2, 3, 7, 8, 9, 16, 31, 64]
ASPECTS = [(1, 3000), (3000, 1), (8, 2500), (2500, 8), (9, 1200), (1200, 9), (4000, 2)]
KINDS = ["gauss", "zeros", "rank1", "const", "nan", "inf", "huge", "tiny", "ones_col", "int", "bool"]
DTYPES = ["float64", "float32", "float16", "int64", "bool", "complex64", "object"]


@st.composite
def matrices(draw, allow_batch: bool = False):
    """A 'matrix' as a user might pass it: numpy, torch or nested list; any shape, dtype and content."""
    if draw(st.booleans()):
        shape = (draw(st.sampled_from(SIZES)), draw(st.sampled_from(SIZES)))
    else:
        shape = draw(st.sampled_from(ASPECTS))
    nd = draw(st.sampled_from([2, 2, 2, 1, 0, 3] if allow_batch else [2, 2, 2, 2, 1, 0, 3]))
    if nd == 1:
        shape = shape[:1]
    elif nd == 0:
        shape = ()
    elif nd == 3:
        shape = (2,) + tuple(min(s, 64) for s in shape)
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    A = rng.standard_normal(shape)
    if kind == "zeros":
        A = np.zeros(shape)
    elif kind == "rank1" and len(shape) >= 2:
        A = np.multiply.outer(rng.standard_normal(shape[:-1]), rng.standard_normal(shape[-1]))
    elif kind == "const":
        A = np.full(shape, 0.37)
    elif kind in ("nan", "inf") and A.size:
        A.flat[rng.integers(A.size)] = np.nan if kind == "nan" else -np.inf
    elif kind == "huge":
        A = A * 1e200
    elif kind == "tiny":
        A = A * 1e-310
    elif kind == "ones_col" and len(shape) >= 2 and shape[-1] > 0:
        A = np.zeros(shape)
        A[..., 0] = 1.0
    elif kind == "int":
        A = rng.integers(-3, 4, size=shape)
    elif kind == "bool":
        A = rng.random(shape) < 0.5
    dtype = draw(st.sampled_from(DTYPES))
    if dtype == "object":
        A = A.tolist() if draw(st.booleans()) else np.array(A, dtype=object)
    elif dtype == "complex64":
        with np.errstate(all="ignore"):
            A = np.asarray(A).astype(np.complex64)
    else:
        with np.errstate(all="ignore"):
            A = np.asarray(A).astype(dtype)
    if draw(st.booleans()) and isinstance(A, np.ndarray) and A.dtype != object:
        A = torch.from_numpy(np.ascontiguousarray(A))
    return A


def vectors(min_size: int = 0, max_size: int = 80):
    """An eigenvalue vector: random non-negative, with possible zeros, NaN, Inf, negatives, a wrong length."""
    return st.lists(st.one_of(st.floats(0, 10), st.just(0.0), st.floats(allow_nan=True, allow_infinity=True),
                              st.floats(-1e-3, 0)), min_size=min_size, max_size=max_size)


INTS = st.one_of(st.integers(-3, 4000), st.sampled_from([0, 1, 2, 10**9]), st.floats(-5, 5), st.none(),
                 st.just(True), st.just("10"))
BAD_LEVELS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0, -0.1]),
                       st.none(), st.just("0.2"))
# mostly valid trimming / levels (so that the fitting code itself is exercised), sometimes anything
LEVELS = st.one_of(st.floats(0.01, 0.45), st.floats(0.01, 0.45), st.sampled_from([0.1, 0.2, 0.25]), BAD_LEVELS)


@st.composite
def spectra(draw):
    """(eigenvalues, p, n): mostly a consistent spectrum (p = its length, n >= p), sometimes anything."""
    if draw(st.integers(0, 3)) > 0:
        lam = draw(vectors(min_size=5))
        p = len(lam)
        n = p * draw(st.sampled_from([1, 2, 10, 1000])) if p else draw(INTS)
        if draw(st.booleans()):
            lam = [abs(x) if math.isfinite(x) else 1.0 for x in lam]
    else:
        lam, p, n = draw(vectors()), draw(INTS), draw(INTS)
    return lam, p, n
ARRAYS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=6),
    st.lists(st.floats(-12, 12), min_size=1, max_size=6).map(np.array),
    st.sampled_from([[], "x", None, [[0.1, 0.2]], np.array([], dtype=float), np.array([1e308, -1e308])]),
)


# ------------------------------------------------------------------------------------------------- models
@st.composite
def models(draw):
    """Small nn.Modules: Linear/Conv2d stacks of random sizes, empty models, non-prunable ones, NaN weights."""
    kind = draw(st.sampled_from(["mlp", "mlp", "conv", "empty", "norm_only", "nan", "zeros", "rank1", "factor"]))
    torch.manual_seed(draw(st.integers(0, 2**16)))
    dims = draw(st.lists(st.sampled_from([1, 2, 5, 8, 9, 16, 40]), min_size=2, max_size=4))
    if kind == "empty":
        return nn.Sequential()
    if kind == "norm_only":
        return nn.Sequential(nn.LayerNorm(8), nn.ReLU())
    if kind == "conv":
        c = dims[:3] if len(dims) >= 3 else dims + [4]
        k = draw(st.sampled_from([1, 3]))
        return nn.Sequential(nn.Conv2d(c[0], c[1], k), nn.ReLU(), nn.Conv2d(c[1], c[2], k, groups=1))
    layers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        if kind == "nan":
            layers[0].weight.view(-1)[0] = float("nan")
        elif kind == "zeros":
            layers[-1].weight.zero_()
        elif kind == "rank1":
            w = layers[0].weight
            w.copy_(torch.outer(torch.randn(w.shape[0]), torch.randn(w.shape[1])))
    if kind == "factor":
        model, _ = rank_truncate(model, 1, factorize="always")
    return model


# ------------------------------------------------------------------------------------------------ targets
def _mp_method(ratio, sigma2, method, x):
    law = theory.MarchenkoPastur(ratio=ratio, sigma2=sigma2)
    return getattr(law, method)(x)


def _tw_method(beta, method, x):
    return getattr(theory.TracyWidom(beta), method)(x)


TARGETS = {
    "MarchenkoPastur": (
        st.tuples(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e-12, 1.0, 1e12, 0])),
                  st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1.0, 1e-300])),
                  st.sampled_from(["pdf", "cdf", "sf", "ppf", "isf"]), ARRAYS),
        lambda a: _mp_method(*a)),
    "TracyWidom": (
        st.tuples(st.sampled_from([1, 2, 4, 3, 0, True, 1.0, "1"]),
                  st.sampled_from(["cdf", "sf", "pdf", "logcdf", "logsf", "ppf", "isf"]), ARRAYS),
        lambda a: _tw_method(*a)),
    "bema": (st.tuples(spectra(), LEVELS, LEVELS),
             lambda a: theory.bema(a[0][0], p=a[0][1], n=a[0][2], alpha=a[1], beta=a[2])),
    "mp_fit_error": (st.tuples(spectra(), st.one_of(st.floats(1e-3, 10), BAD_LEVELS), LEVELS,
                               st.sampled_from(["central", "full", "x"])),
                     lambda a: theory.mp_fit_error(a[0][0], p=a[0][1], n=a[0][2], sigma2=a[1], alpha=a[2],
                                                   window=a[3])),
    "esd": (matrices(allow_batch=True), lambda W: theory.esd(W)),
    "fit_spectrum": (st.tuples(matrices(), LEVELS, LEVELS),
                     lambda a: theory.fit_spectrum(a[0], alpha=a[1], beta=a[2])),
    "analyze": (st.tuples(models(), st.sampled_from(["im2col", "slices", "x"]), LEVELS),
                lambda a: prune.analyze(a[0], conv_view=a[1], beta=a[2] if a[2] is not None else 0.1)),
    "mp_truncate": (st.tuples(models(), st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))),
                              st.sampled_from(["auto", "always", "never", "x"])),
                    lambda a: mp_truncate(a[0], bulk_keep=a[1], factorize=a[2])),
    "rank_truncate": (st.tuples(models(), st.one_of(st.integers(-2, 50), st.floats(0, 5), st.just(True))),
                      lambda a: rank_truncate(a[0], a[1])),
    "energy_truncate": (st.tuples(models(), st.one_of(st.floats(-0.5, 1.5), st.just(float("nan")))),
                        lambda a: energy_truncate(a[0], a[1])),
    "count_parameters": (st.one_of(models(), st.sampled_from([None, 3, "model", torch.zeros(3)])),
                         lambda m: count_parameters(m)),
}


def outcome(call, arg) -> str:
    """"ok", "clean" (ValueError/TypeError) or "crash: <exception>" for one call."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            call(arg)
    except CLEAN:
        return "clean"
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a crash
        return f"crash: {type(exc).__name__}: {exc}"[:300]
    return "ok"


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
FUZZ_SLOW = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------ the public theory API with odd input kinds
# Scalars across the float range (subnormals, +-0, +-inf, NaN, the largest double), complex numbers, strings,
# bools, None, huge ints, Fractions, numpy float16/longdouble (also beyond the double range), lists, 0-d and
# empty arrays, masked arrays, timedeltas, and torch tensors of odd kinds (requiring grad, non-leaf, meta,
# sparse COO/CSR, quantized, bfloat16, complex, 0-d, empty). A call may succeed or raise ValueError/TypeError;
# a success must not return NaN anywhere (NaN input is always refused, so NaN out is a bug).
def pick(*strategies):
    """Each strategy with equal probability (st.one_of flattens nested one_of, so a strategy made of many
    alternatives would otherwise crowd out the plausible values)."""
    return st.integers(0, len(strategies) - 1).flatmap(lambda i: strategies[i])


class NaNOutput(Exception):
    """A theory call accepted its input and returned NaN (counted as a crash by ``outcome``)."""


def _has_nan(obj, depth: int = 0) -> bool:
    if depth > 3 or obj is None or isinstance(obj, (str, bool, int)):
        return False
    if isinstance(obj, float):
        return math.isnan(obj)
    if isinstance(obj, torch.Tensor):
        return bool(torch.isnan(obj).any()) if obj.dtype.is_floating_point else False
    if isinstance(obj, (np.ndarray, np.generic)):
        return bool(np.isnan(obj).any()) if np.asarray(obj).dtype.kind == "f" else False
    if isinstance(obj, (tuple, list)):
        return any(_has_nan(o, depth + 1) for o in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return any(_has_nan(getattr(obj, f), depth + 1) for f in obj.__dataclass_fields__)
    return False


def _no_nan(call):
    def checked(arg):
        out = call(arg)
        if _has_nan(out):
            raise NaNOutput(f"NaN in the output {out!r:.200}")
        return out
    return checked


SPECIAL_FLOATS = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e-300, 1e300,
                  math.inf, -math.inf, math.nan, 0.5, 1.0, 2.0]
ODD_SCALARS = st.one_of(
    st.floats(),  # the whole float range: subnormals, +-0, +-inf, NaN
    st.floats(-1e-300, 1e-300),
    st.sampled_from(SPECIAL_FLOATS),
    st.complex_numbers(max_magnitude=10),
    st.text(max_size=3), st.sampled_from(["1", "0.5", "nan", b"1"]),
    st.booleans(), st.none(),
    st.integers(-10, 10**20), st.just(10**400), st.just(Fraction(1, 3)),
    st.floats(-6e4, 6e4).map(np.float16), st.floats().map(np.longdouble), st.just(np.longdouble("1e400")),
    st.just(np.timedelta64(3, "s")),
)
TENSOR_KINDS = ["plain", "grad", "nonleaf", "meta", "coo", "csr", "quantized", "bfloat16", "float16", "int",
                "bool", "complex", "zerodim", "empty"]


def _make_tensor(values: list[float], kind: str, two_d: bool):
    t = torch.tensor(values, dtype=torch.float64)
    if two_d and t.numel() >= 2:
        t = t.reshape(2, -1) if t.numel() % 2 == 0 else t[:-1].reshape(2, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "grad":
            return t.clone().requires_grad_(True)
        if kind == "nonleaf":
            return t.clone().requires_grad_(True) * 2.0
        if kind == "meta":
            return torch.empty(t.shape, device="meta")
        if kind == "coo":
            return t.to_sparse()
        if kind == "csr":
            return t.to_sparse_csr() if t.ndim == 2 else t.to_sparse()
        if kind == "quantized":
            return torch.quantize_per_tensor(t.float().clamp(-100, 100), 0.05, 0, torch.qint32)
        if kind in ("bfloat16", "float16"):
            return t.to(getattr(torch, kind))
        if kind == "int":
            return torch.nan_to_num(t).clamp(-1e6, 1e6).to(torch.int64)
        if kind == "bool":
            return t > 0
        if kind == "complex":
            return t.to(torch.complex128)
        if kind == "zerodim":
            return t.reshape(-1)[0] if t.numel() else torch.tensor(0.5)
        if kind == "empty":
            return t[:0]
    return t


@st.composite
def odd_tensors(draw, lo: float = -10.0, hi: float = 10.0, two_d: bool = False):
    values = draw(st.lists(st.one_of(st.floats(lo, hi), st.sampled_from(SPECIAL_FLOATS)), min_size=1, max_size=8))
    return _make_tensor(values, draw(st.sampled_from(TENSOR_KINDS)), two_d)


@st.composite
def odd_containers(draw, values: list):
    """The same values as a list, numpy array (float64/float16/longdouble/object/masked) or an odd tensor."""
    how = draw(st.sampled_from(["list", "np", "np16", "longdouble", "object", "masked", "tensor", "tensor"]))
    if how == "list":
        return list(values)
    if how == "np":
        return np.array(values, dtype=np.float64)
    if how == "np16":
        with np.errstate(all="ignore"):
            return np.array(values, dtype=np.float16)
    if how == "longdouble":
        return np.array(values, dtype=np.longdouble)
    if how == "object":
        return np.array(values, dtype=object)
    if how == "masked":
        return np.ma.array(values, mask=[draw(st.booleans()) for _ in values])
    return _make_tensor(values, draw(st.sampled_from(TENSOR_KINDS)), False)


ODD_ARGS = st.one_of(
    ODD_SCALARS,
    st.lists(st.floats(), max_size=5),
    st.lists(ODD_SCALARS, max_size=3),
    st.sampled_from([np.array(0.5), np.array([]), np.array(np.inf), np.array([[]]), np.array(["1"]),
                     np.ma.array([1.0, 2.0], mask=[0, 1]), np.array([1, 2], dtype="m8[s]")]),
    odd_tensors(), odd_tensors(two_d=True),
)
# parameters: mostly plausible (so the computation itself runs), sometimes anything
POSITIVE = pick(st.floats(1e-3, 50.0), st.floats(1e-300, 1e300), st.floats(5e-324, 1e-300), ODD_SCALARS)
LEVEL = pick(st.floats(1e-30, 0.999), st.floats(0.0, 1.0), ODD_SCALARS)
MP_METHODS = ["pdf", "cdf", "sf", "ppf", "isf", "mean", "var", "median", "edges", "atom", "rvs"]


@st.composite
def mp_calls(draw):
    ratio, sigma2 = draw(POSITIVE), draw(POSITIVE)
    method = draw(st.sampled_from(MP_METHODS))
    if draw(st.booleans()):  # a plausible argument at the law's scale: sigma2 * u (or a level)
        u = draw(st.lists(st.floats(-1.0, 60.0) if method in ("pdf", "cdf", "sf") else st.floats(0.0, 1.0),
                          min_size=0, max_size=6))
        scale = sigma2 if isinstance(sigma2, float) and method in ("pdf", "cdf", "sf") else 1.0
        with np.errstate(all="ignore"):
            arg = draw(odd_containers(list(np.asarray(u, dtype=float) * scale))) if u else draw(ODD_ARGS)
    else:
        arg = draw(ODD_ARGS)
    return ratio, sigma2, method, arg


def _mp_call(a):
    ratio, sigma2, method, arg = a
    law = theory.MarchenkoPastur(ratio, sigma2)
    attr = getattr(law, method)
    if method in ("edges", "atom"):
        return attr
    if method in ("mean", "var", "median"):
        return attr()
    if method == "rvs":
        return attr(size=3, random_state=0)
    return attr(arg)


@st.composite
def odd_spectra(draw):
    """(eigenvalues, p, n) with the eigenvalues scaled across the float range and in an odd container."""
    lam, p, n = draw(spectra())
    scale = draw(st.sampled_from([1.0, 2.0**-1000, 1e-300, 1e-150, 1e150, 1e300, 2.0**1000, 1e307]))
    with np.errstate(all="ignore"):
        lam = [x * scale for x in lam]
    return draw(odd_containers(lam)) if draw(st.booleans()) else lam, p, n


@st.composite
def odd_matrices(draw):
    W = draw(matrices())
    if isinstance(W, np.ndarray) and W.dtype.kind == "f" and draw(st.booleans()):
        with np.errstate(all="ignore"):
            W = W * draw(st.sampled_from([2.0**-500, 1e-160, 1e153, 2.0**500, 1e250]))
    if isinstance(W, np.ndarray) and W.dtype.kind in "fiub" and W.ndim >= 1 and draw(st.booleans()):
        W = _make_tensor(np.asarray(W, dtype=np.float64).ravel().tolist()[:64] or [0.5],
                         draw(st.sampled_from(TENSOR_KINDS)), True)
    return W


@st.composite
def gaussian_matrices(draw):
    """A valid Gaussian matrix scaled anywhere in the float range, as numpy or as an odd tensor kind."""
    N, M = draw(st.integers(2, 40)), draw(st.integers(2, 40))
    scale = draw(st.sampled_from([1.0, 2.0**-500, 1e-160, 1e-100, 1e100, 1e153, 2.0**500]))
    W = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal((N, M)) * scale
    if draw(st.booleans()):
        return W
    kind = draw(st.sampled_from(["plain", "grad", "nonleaf", "coo", "csr", "quantized", "float16", "meta"]))
    if kind in ("coo", "csr"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CSR support is 'beta'
            return torch.from_numpy(W).to_sparse() if kind == "coo" else torch.from_numpy(W).to_sparse_csr()
    return _make_tensor(W.ravel().tolist(), kind, False).reshape(N, M)


CENSORED = pick(st.just(0), st.just(0), st.integers(0, 3), ODD_SCALARS)
RATIO = pick(st.floats(1e-300, 1.0), st.floats(0.01, 1.0), LEVEL)
SPIKED = ["outlier_singular_value", "singular_vector_overlaps", "signal_from_outlier", "optimal_shrinker_frobenius"]
THEORY_TARGETS = {
    "theory.MarchenkoPastur": (mp_calls(), _mp_call),
    "theory.bema": (st.tuples(odd_spectra(), LEVELS, LEVEL, CENSORED),
                    lambda a: theory.bema(a[0][0], p=a[0][1], n=a[0][2], alpha=a[1], beta=a[2], censored=a[3])),
    "theory.tw_quantile": (LEVEL, lambda b: theory.tw_quantile(b)),
    "theory.bema_window": (st.tuples(INTS, LEVELS), lambda a: theory.bema_window(a[0], a[1])),
    "theory.mp_fit_error": (st.tuples(odd_spectra(), POSITIVE, LEVELS, st.sampled_from(["central", "full", 3])),
                            lambda a: theory.mp_fit_error(a[0][0], p=a[0][1], n=a[0][2], sigma2=a[1], alpha=a[2],
                                                          window=a[3])),
    "theory.fit_eigenvalues": (st.tuples(odd_spectra(), LEVELS, LEVEL),
                               lambda a: theory.fit_eigenvalues(a[0][0], p=a[0][1], n=a[0][2], alpha=a[1],
                                                                beta=a[2])),
    "theory.esd": (pick(gaussian_matrices(), odd_matrices(), ODD_ARGS), lambda W: theory.esd(W)),
    "theory.fit_spectrum": (st.tuples(pick(gaussian_matrices(), gaussian_matrices(), odd_matrices(), ODD_ARGS),
                                      LEVELS, LEVEL),
                            lambda a: theory.fit_spectrum(a[0], alpha=a[1], beta=a[2])),
    "theory.edge_scaling": (st.tuples(pick(st.integers(1, 300), INTS), pick(st.integers(300, 5000), INTS),
                                      st.sampled_from([1, 2, 1, 2, 3, True, "1"]), POSITIVE, ODD_ARGS,
                                      st.booleans()),
                            lambda a: (lambda e: e.standardize(a[4]) if a[5] else e.quantile(a[4]))(
                                theory.edge_scaling(a[0], a[1], beta=a[2], sigma2=a[3]))),
    "theory.spike_pvalue": (st.tuples(pick(POSITIVE, ODD_ARGS), pick(st.integers(1, 300), INTS),
                                      pick(st.integers(300, 5000), INTS), POSITIVE, st.sampled_from([1, 2])),
                            lambda a: theory.spike_pvalue(a[0], a[1], a[2], sigma2=a[3], beta=a[4])),
    "theory.spiked": (st.tuples(st.sampled_from(SPIKED), pick(POSITIVE, ODD_ARGS), RATIO),
                      lambda a: getattr(theory, a[0])(a[1], a[2])),
    "theory.spiked_scalars": (st.tuples(RATIO, pick(st.booleans(), st.booleans(), ODD_SCALARS)),
                              lambda a: (theory.bbp_threshold(a[0]),
                                         theory.optimal_hard_threshold(a[0], sigma_known=a[1]))),
    # TracyWidom's inputs are coerced in theory/tracy_widom.py (another owner): marked xfail below until it uses
    # theory._validate.real_values
    "theory.TracyWidom": (st.tuples(st.sampled_from([1, 2, 4]),
                                    st.sampled_from(["cdf", "sf", "pdf", "logcdf", "logsf", "ppf", "isf"]), ODD_ARGS),
                          lambda a: _tw_method(*a)),
}
CALLS: dict[str, Counter] = {}


@pytest.mark.parametrize("name", sorted(THEORY_TARGETS))
def test_fuzz_theory_odd_inputs(name):
    """Only ValueError/TypeError, never NaN out; and the fuzz reaches both outcomes (it is not vacuous)."""
    counts = CALLS.setdefault(name, Counter())
    call = _no_nan(THEORY_TARGETS[name][1])

    def one(example):
        res = outcome(call, example)
        counts[res.split(":")[0]] += 1
        assert not res.startswith("crash"), f"{name}({example!r:.300}) -> {res}"

    settings(max_examples=150, deadline=None, derandomize=True, database=None,
             suppress_health_check=list(HealthCheck))(given(THEORY_TARGETS[name][0])(one))()
    print(f"{name}: {dict(counts)}")
    assert counts["ok"] > 0 and counts["clean"] > 0, dict(counts)


def _fuzz_one(name: str, example) -> None:
    call = TARGETS[name][1]
    res = outcome(call, example)
    assert not res.startswith("crash"), f"{name}({example!r:.300}) -> {res}"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_no_crash(name):
    FUZZ(given(TARGETS[name][0])(lambda ex: _fuzz_one(name, ex)))()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_no_crash_slow(name):
    FUZZ_SLOW(given(TARGETS[name][0])(lambda ex: _fuzz_one(name, ex)))()


# ------------------------------------------------------------------------- specific edge cases (regression)
@pytest.mark.parametrize("W", [
    np.zeros((16, 32)), np.ones((16, 32)), np.outer(np.arange(1.0, 17.0), np.ones(40)),
    np.eye(9, 3000), np.full((3000, 9), 1e-300), np.random.default_rng(0).standard_normal((9, 4000)) * 1e150,
])
def test_degenerate_matrices_clean(W):
    for fn in (theory.esd, theory.fit_spectrum):
        assert not outcome(fn, W).startswith("crash"), (fn.__name__, W.shape)
        assert not outcome(fn, torch.from_numpy(W)).startswith("crash"), (fn.__name__, W.shape)


def test_finite_valid_input_gives_finite_fit():
    rng = np.random.default_rng(1)
    for N, M in [(8, 8), (9, 3000), (3000, 9), (64, 16)]:
        rep = theory.fit_spectrum(rng.standard_normal((N, M)).astype(np.float32))
        assert math.isfinite(rep.sigma2) and rep.sigma2 > 0 and math.isfinite(rep.mp_fit_error)
        assert 0 <= rep.n_spikes <= rep.p


def test_empty_model_errors_cleanly():
    for fn in (prune.analyze, mp_truncate, lambda m: rank_truncate(m, 2), energy_truncate):
        with pytest.raises(ValueError, match="model"):
            fn(nn.Sequential())
    assert count_parameters(nn.Sequential()) == 0


# -------------------------------------------------------------- pruning never changes the input model
def _snapshot(model: nn.Module):
    return (repr(model), {k: v.detach().clone() for k, v in model.state_dict().items()},
            [id(m) for m in model.modules()], model.training)


def _assert_unchanged(model, snap):
    r, state, ids, training = snap
    assert repr(model) == r, "structure changed"
    now = model.state_dict()
    assert now.keys() == state.keys()
    for k in state:
        assert torch.equal(now[k], state[k]) or (now[k].isnan() == state[k].isnan()).all() and torch.equal(
            torch.nan_to_num(now[k]), torch.nan_to_num(state[k])), f"{k} changed"
    assert [id(m) for m in model.modules()] == ids, "submodules replaced"
    assert model.training == training


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 40), nn.ReLU(),
                         nn.Linear(40, 24))


def _masks(model):
    from prune.methods.magnitude import magnitude_prune

    return magnitude_prune(model, amount=0.5)[1]


# training data of the selection phase of SER (inputs of _net's shape, 24 classes)
_TRAIN = (torch.randn(64, 3, 6, 6, generator=torch.Generator().manual_seed(0)),
          torch.randint(0, 24, (64,), generator=torch.Generator().manual_seed(1)))

# function name -> (module, extra keyword arguments); every call goes with the default inplace=False
PRUNE_CALLS = {
    "svd_truncate": ("prune.methods.svd", dict(rule=lambda name, module, svd: (2, {}))),
    "mp_truncate": ("prune.methods.svd", dict(bulk_keep=0.3)),
    "rank_truncate": ("prune.methods.svd", dict(rank=3)),
    "energy_truncate": ("prune.methods.svd", dict(energy=0.5)),
    "magnitude_prune": ("prune.methods.magnitude", dict(amount=0.5)),
    "apply_masks": ("prune.masks", dict(masks=_masks)),
    "sparsify_singular_vectors": ("prune.methods.singular_vectors", dict(theta=0.05)),
    "mp_magnitude_prune": ("prune.methods.mp_cycles", dict(reduction=0.3)),
    "rmt_cycle_prune": ("prune.methods.mp_cycles", dict(target_sparsity=0.3, max_cycles=1, reg_steps=2,
                                                        progress=False)),
    "spectral_sparsify": ("prune.methods.spectral_sparsify", dict(amount=0.3)),
    "seb_prune": ("prune.methods.seb", dict(amount=0.5)),
    "spectral_budget_prune": ("prune.methods.seb", dict(amount=0.5)),
    "ser_prune": ("prune.methods.ser", dict(amount=0.5, train=_TRAIN, select_steps=2, batch_size=16)),
    "hybrid_prune": ("prune.methods.ser", dict(amount=0.5, train=_TRAIN, select_steps=2, batch_size=16)),
    "regularize": ("prune.regularize", dict(steps=2)),
}
# public functions with an ``inplace`` flag that are not pruning steps (training loops): not covered here
NOT_PRUNING = {"train", "finetune"}


def _prune_functions():
    """(module name, function name) of every public function of prune.* and prune.methods.* with ``inplace``."""
    import prune.methods

    out = []
    names = [f"prune.{i.name}" for i in pkgutil.iter_modules(prune.__path__)]
    names += [f"prune.methods.{i.name}" for i in pkgutil.iter_modules(prune.methods.__path__)]
    for name in names:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for fname, fn in vars(mod).items():
            if (inspect.isfunction(fn) and fn.__module__ == mod.__name__ and not fname.startswith("_")
                    and "inplace" in inspect.signature(fn).parameters):
                out.append((mod.__name__, fname))
    return out


def test_every_pruning_function_is_covered():
    missing = [f"{m}.{f}" for m, f in _prune_functions() if f not in PRUNE_CALLS and f not in NOT_PRUNING]
    assert not missing, f"add these pruning functions to PRUNE_CALLS (no-mutation check): {missing}"


@pytest.mark.parametrize("fname", sorted(PRUNE_CALLS))
def test_pruning_does_not_change_input(fname):
    modname, kwargs = PRUNE_CALLS[fname]
    try:
        fn = getattr(importlib.import_module(modname), fname)
    except (ImportError, AttributeError):
        pytest.skip(f"{modname}.{fname} does not exist in this checkout")
    model = _net()
    model.train(False)
    kw = {k: (v(model) if k == "masks" else v) for k, v in kwargs.items()}
    snap = _snapshot(model)
    out = fn(model, **kw)
    result = out[0] if isinstance(out, tuple) else out
    _assert_unchanged(model, snap)
    assert result is not model
    # and the copy is a working model
    assert result(torch.randn(2, 3, 6, 6)).shape == (2, 24)


@pytest.mark.parametrize("fname", ["mp_truncate", "rank_truncate", "magnitude_prune"])
def test_inplace_true_does_change(fname):
    """The no-mutation test can fail: with inplace=True the same calls do change the model."""
    modname, kwargs = PRUNE_CALLS[fname]
    fn = getattr(importlib.import_module(modname), fname)
    model = _net(1)
    snap = _snapshot(model)
    fn(model, inplace=True, **kwargs)
    with pytest.raises(AssertionError):
        _assert_unchanged(model, snap)


def test_deepcopy_snapshot_sanity():
    model = _net(2)
    snap = _snapshot(copy.deepcopy(model))
    _assert_unchanged(model, snap[:2] + ([id(m) for m in model.modules()], model.training))


@pytest.mark.parametrize("to_torch", [False, True])
def test_gram_overflow_is_a_clean_error(to_torch):
    """Found by this fuzz: a finite W with entries ~1e200 overflowed the Gram matrix and LAPACK failed."""
    W = np.random.default_rng(0).standard_normal((16, 40)) * 1e200
    with pytest.raises(ValueError, match="exceed the float64 range"):  # s^2/n ~ 1e400
        theory.esd(torch.from_numpy(W) if to_torch else W)


# ------------------------------------------------ saving: atomic under other failures, exact reload
# tests/test_io.py (prune.io's own tests) covers a torch.save that fails half-way and round trips of
# dense / factorised / masked / float64 / ViT / HF models. Here: the other failure points of the write
# (fsync, the final rename, an interrupt) and a round trip after every pruning rule, compared exactly.
@pytest.mark.parametrize("fail_at", ["fsync", "replace", "interrupt"])
def test_save_failure_leaves_no_partial_file(tmp_path, monkeypatch, fail_at):
    import os

    from prune import io as pio
    from prune.models import build_model

    model = build_model("mnist-cnn")
    target = tmp_path / "m.pt"
    pio.save_pruned(model, target)
    before = target.read_bytes()
    pruned, _ = rank_truncate(model, 3)
    exc = KeyboardInterrupt if fail_at == "interrupt" else OSError
    real = {"fsync": os.fsync, "replace": os.replace, "interrupt": os.fsync}[fail_at]

    def boom(*a, **k):
        raise exc("injected failure")

    monkeypatch.setattr(pio.os, "replace" if fail_at == "replace" else "fsync", boom)
    for dest in (target, tmp_path / "new.pt"):
        with pytest.raises(exc):
            pio.save_pruned(pruned, dest)
    monkeypatch.setattr(pio.os, "replace" if fail_at == "replace" else "fsync", real)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["mnist-cnn", "vit"]),
       st.sampled_from(["mp", "rank", "energy", "magnitude"]), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_reload_reproduces_outputs_and_analysis_exactly(tmp_path_factory, arch, rule, level, seed):
    from prune import io as pio
    from prune.methods.magnitude import magnitude_prune
    from prune.models import build_model

    torch.manual_seed(seed)
    model = build_model(arch, **({"dim": 32, "depth": 1, "heads": 2} if arch == "vit" else {}))
    masks = None
    if rule == "mp":
        pruned, _ = mp_truncate(model, bulk_keep=level)
    elif rule == "rank":
        pruned, _ = rank_truncate(model, 1 + int(level * 8))
    elif rule == "energy":
        pruned, _ = energy_truncate(model, max(level, 0.05))
    else:
        pruned, masks = magnitude_prune(model, amount=level)
    path = tmp_path_factory.mktemp("rt") / "model.pt"
    pio.save_pruned(pruned, path, masks=masks)
    back = pio.load_pruned(path)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        assert torch.equal(pruned.eval()(x), back.eval()(x))
    a, b = prune.analyze(pruned), prune.analyze(back)
    assert len(a) == len(b)
    assert [r.as_dict() for r in a] == [r.as_dict() for r in b] or all(  # NaN fields compare as text
        str(r.as_dict()) == str(s.as_dict()) for r, s in zip(a, b))


# benchmarks/fuzz.py runs every target of TARGETS (the theory ones with the NaN check); added here, after the
# parametrisations of test_fuzz_no_crash, which keep the original targets (test_fuzz_theory_odd_inputs runs these)
TARGETS.update({name: (strategy, _no_nan(call)) for name, (strategy, call) in THEORY_TARGETS.items()})
