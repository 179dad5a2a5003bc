r"""The empirical spectral distribution of a weight matrix and its one-call MP/BEMA analysis.

Conventions (DESIGN.md): W has shape (N, M), p = min(N, M), n = max(N, M); the spectrum is the p
eigenvalues :math:`\lambda_i = s_i^2 / n` of the smaller Gram matrix; the singular-value edge is
:math:`s_+ = \sqrt{n \lambda_+}`.

torch is never imported at module load: :func:`esd` imports it only when handed a tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import finite_array, torch_values
from .bema import BemaFit, bema
from .goodness_of_fit import mp_fit_error

__all__ = ["esd", "fit_spectrum", "fit_eigenvalues", "SpectrumReport"]


def _is_torch(W) -> bool:
    return type(W).__module__.split(".")[0] == "torch"


# Scaling by powers of two: W is divided by 2**e (e the exponent of max |W_ij| of each matrix), exactly,
# before the Gram matrix is formed, and the eigenvalues are multiplied by 4**e after. So no entry of
# the Gram matrix overflows or underflows in between, and esd(c * W) == c**2 * esd(W) bit for bit for c a
# power of two. Chunks of at most 2**1000 keep every factor representable (e ranges over -1073..1024).
_CHUNK_EXP = 1000


def _pow2_chunks(k):
    """Split integer exponent(s) k into steps of at most _CHUNK_EXP in magnitude."""
    k = np.asarray(k, dtype=np.int64)
    while np.any(k != 0):
        step = np.clip(k, -_CHUNK_EXP, _CHUNK_EXP)
        yield step
        k = k - step


def _esd_torch(W):
    import torch

    X = torch_values("W", W)
    if X.ndim < 2:
        raise ValueError(f"W must be at least 2-dimensional (N, M) or batched (..., N, M), got shape {tuple(X.shape)}")
    if X.numel() == 0:
        raise ValueError(f"W must not be empty, got shape {tuple(X.shape)}")
    X = X.to(torch.float64)
    N, M = X.shape[-2], X.shape[-1]
    n = max(N, M)
    amax = X.abs().amax(dim=(-2, -1))
    if not bool(torch.isfinite(amax).all()):
        finite = torch.isfinite(X)
        bad = int((~finite).sum())
        first = tuple(int(i) for i in torch.nonzero(~finite)[0])
        raise ValueError(
            f"W contains {bad} non-finite value(s) (NaN or Inf); first at index {first}: {X[first].item()!r}"
        )
    e = np.frexp(amax.cpu().numpy())[1]  # per matrix; 0 for a zero matrix
    for step in _pow2_chunks(-e):
        X = X * torch.from_numpy(np.asarray(np.ldexp(1.0, step))).to(X.device)[..., None, None]
    Xt = X.transpose(-2, -1)
    G = (X @ Xt) if N <= M else (Xt @ X)
    lam = torch.linalg.eigvalsh(G / n)
    for step in _pow2_chunks(2 * e):
        lam = lam * torch.from_numpy(np.asarray(np.ldexp(1.0, step))).to(lam.device)[..., None]
    if not bool(torch.isfinite(lam).all()):
        _overflow(float(amax.max()))
    return lam


def _overflow(max_abs: float) -> None:
    raise ValueError(
        f"W's eigenvalues s_i^2/n exceed the float64 range (max |W_ij| = {max_abs!r}): they are not "
        f"representable; rescale W"
    )


def esd(W):
    r"""Eigenvalues (ascending) of the smaller Gram matrix of W, divided by n.

    :math:`\mathrm{eig}(W W^T / n)` if N <= M, else :math:`\mathrm{eig}(W^T W / n)`, so the result
    holds the p = min(N, M) values :math:`s_i^2 / n`, n = max(N, M). One symmetric eigensolve of a
    p x p matrix, in float64 whatever the input dtype: much faster than a full SVD when W is
    rectangular.

    Parameters
    ----------
    W : numpy array or torch tensor, shape (N, M) or batched (..., N, M)
        Real entries (float, integer or bool). A tensor may live on any device.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (..., p), float64
        Same kind as the input: a tensor comes back on the input's device.

    Notes
    -----
    The Gram matrix is formed explicitly, so each eigenvalue carries an absolute rounding error of
    order :math:`\epsilon\,\lambda_{\max}` (not a relative one): tiny eigenvalues lose relative
    accuracy, and an eigenvalue that is zero in exact arithmetic (rank-deficient W, or N = M)
    can come out as a tiny negative number of size ~ :math:`-\epsilon\lambda_{\max}`. Such values
    are returned as computed, not clipped.

    W is divided by a power of two near its largest entry (per matrix, exactly) before the Gram
    matrix is formed, and the eigenvalues are scaled back, so nothing overflows or underflows in
    between: ``esd(c * W) == c**2 * esd(W)`` bit for bit for c a power of two, over the whole float range.
    A tensor that requires grad is read detached, a sparse one densified, a quantized one dequantized
    (``theory._validate.torch_values``).

    Raises
    ------
    ValueError
        W has fewer than 2 dimensions, is empty, contains NaN/Inf, or its eigenvalues exceed the
        float64 range (max s_i^2 / n > 1.8e308).
    TypeError
        W is not real and numeric (complex, strings, ...), or a meta or nested tensor.

    Examples
    --------
    >>> import numpy as np
    >>> esd(np.array([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]))  # s = (3, 4), n = 3
    array([3.        , 5.33333333])
    """
    if _is_torch(W):
        return _esd_torch(W)
    X = finite_array("W", W)
    if X.ndim < 2:
        raise ValueError(f"W must be at least 2-dimensional (N, M) or batched (..., N, M), got shape {X.shape}")
    N, M = X.shape[-2], X.shape[-1]
    n = max(N, M)
    amax = np.max(np.abs(X), axis=(-2, -1))
    e = np.frexp(amax)[1]  # per matrix; 0 for a zero matrix
    X = np.ldexp(X, -e[..., None, None])  # exact: a power-of-two scaling
    Xt = np.swapaxes(X, -2, -1)
    G = (X @ Xt) if N <= M else (Xt @ X)
    with np.errstate(over="ignore", under="ignore"):
        lam = np.ldexp(np.linalg.eigvalsh(G / n), 2 * e[..., None])
    if not np.isfinite(lam).all():
        _overflow(float(np.max(amax)))
    return lam


@dataclass(frozen=True, eq=False)
class SpectrumReport:
    r"""Result of :func:`fit_spectrum` (field names as in DESIGN.md).

    Attributes
    ----------
    p, n : int
        min(N, M) and max(N, M).
    sigma2 : float
        BEMA noise variance.
    lambda_plus : float
        BEMA eigenvalue edge.
    sv_edge : float
        Singular-value edge :math:`s_+ = \sqrt{n\lambda_+}`.
    n_spikes : int
        Singular values above ``sv_edge`` (eigenvalues above ``lambda_plus``).
    bulk_fraction : float
        Fraction of the p singular values not above ``sv_edge``, ``1 - n_spikes / p``
        (the papers' "% of singular values below sigma_+"; a value exactly at the edge counts as bulk).
    mp_fit_error : float
        The central-window MP-fit error with the fitted sigma2 (:func:`theory.goodness_of_fit.mp_fit_error`).
    bema : BemaFit
        The full BEMA fit (window, quantiles, TW margin, ...).
    eigenvalues : numpy.ndarray
        The p eigenvalues, ascending, float64, read-only.
    """

    p: int
    n: int
    sigma2: float
    lambda_plus: float
    sv_edge: float
    n_spikes: int
    bulk_fraction: float
    mp_fit_error: float
    bema: BemaFit = field(repr=False)
    eigenvalues: np.ndarray = field(repr=False)


def fit_spectrum(W, alpha: float = 0.2, beta: float = 0.1) -> SpectrumReport:
    r"""ESD, BEMA edge and MP-fit error of one matrix: ``esd`` -> ``bema`` -> ``mp_fit_error``.

    Parameters
    ----------
    W : numpy array or torch tensor, shape (N, M)
        One real matrix (not batched), on any device.
    alpha : float, default 0.2
        Trimming in (0, 1/2) for both the BEMA window and the central MP-fit window.
    beta : float, default 0.1
        Tracy-Widom level in (0, 1) of the BEMA edge.

    Returns
    -------
    SpectrumReport
        p, n, sigma2, lambda_plus, sv_edge, n_spikes, bulk_fraction, mp_fit_error, bema, eigenvalues.

    Raises
    ------
    ValueError, TypeError
        As :func:`esd` and :func:`theory.bema.bema`; also W not 2-dimensional.
    """
    try:
        shape = tuple(W.shape) if hasattr(W, "shape") else np.shape(W)
    except Exception as exc:  # a ragged list, or an object whose shape cannot be read
        raise TypeError(f"W must be a real matrix, got {type(W).__name__}: {exc}") from exc
    if len(shape) != 2:
        raise ValueError(f"W must be a 2-dimensional matrix (N, M) for fit_spectrum, got shape {shape}")
    lam = esd(W)
    if _is_torch(lam):
        lam = lam.cpu().numpy()
    return fit_eigenvalues(lam, p=min(shape), n=max(shape), alpha=alpha, beta=beta)


def fit_eigenvalues(eigenvalues, p: int, n: int, alpha: float = 0.2, beta: float = 0.1,
                    censored: int = 0) -> SpectrumReport:
    r""":func:`fit_spectrum` on an already computed spectrum (the p values :math:`s_i^2 / n`, any order).

    Lets a caller that has the singular values anyway (for instance to truncate the matrix) reuse
    them instead of computing the spectrum twice. Same result and errors as :func:`fit_spectrum`.
    ``censored`` smallest values are treated as unobserved (see :func:`theory.bema`).
    """
    lam = np.sort(finite_array("eigenvalues", eigenvalues, ndim=1))
    lam.setflags(write=False)
    fit = bema(lam, p=p, n=n, alpha=alpha, beta=beta, censored=censored)
    mu = mp_fit_error(lam, p=p, n=n, sigma2=fit.sigma2, alpha=alpha, window="central", censored=censored)
    return SpectrumReport(
        p=p,
        n=n,
        sigma2=fit.sigma2,
        lambda_plus=fit.lambda_plus,
        sv_edge=fit.sv_edge,
        n_spikes=fit.n_spikes,
        bulk_fraction=int(np.count_nonzero(lam <= fit.lambda_plus)) / p,
        mp_fit_error=mu,
        bema=fit,
        eigenvalues=lam,
    )
