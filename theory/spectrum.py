r"""The empirical spectral distribution of a weight matrix and its one-call MP/BEMA analysis.

Conventions (DESIGN.md): W has shape (N, M), p = min(N, M), n = max(N, M); the spectrum is the p
eigenvalues :math:`\lambda_i = s_i^2 / n` of the smaller Gram matrix; the singular-value edge is
:math:`s_+ = \sqrt{n \lambda_+}`.

torch is never imported at module load: :func:`esd` imports it only when handed a tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import finite_array
from .bema import BemaFit, bema
from .goodness_of_fit import mp_fit_error

__all__ = ["esd", "fit_spectrum", "fit_eigenvalues", "SpectrumReport"]


def _is_torch(W) -> bool:
    return type(W).__module__.startswith("torch")


def _esd_torch(W):
    import torch

    if W.dtype.is_complex:
        raise TypeError(f"W must be real, got complex dtype {W.dtype}")
    if W.ndim < 2:
        raise ValueError(f"W must be at least 2-dimensional (N, M) or batched (..., N, M), got shape {tuple(W.shape)}")
    if W.numel() == 0:
        raise ValueError(f"W must not be empty, got shape {tuple(W.shape)}")
    X = W.detach().to(torch.float64)
    N, M = X.shape[-2], X.shape[-1]
    n = max(N, M)
    Xt = X.transpose(-2, -1)
    G = (X @ Xt) if N <= M else (Xt @ X)
    # A NaN or Inf anywhere in W makes a diagonal entry sum_k W_ik^2 of G non-finite, so the full
    # (costly) scan of W is only needed when the diagonal is not finite (a finite W can also overflow).
    if not bool(torch.isfinite(G.diagonal(dim1=-2, dim2=-1)).all()):
        finite = torch.isfinite(X)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            first = tuple(int(i) for i in torch.nonzero(~finite)[0])
            raise ValueError(
                f"W contains {bad} non-finite value(s) (NaN or Inf); first at index {first}: {X[first].item()!r}"
            )
        _overflow(float(X.abs().max()))
    return torch.linalg.eigvalsh(G / n)


def _overflow(max_abs: float) -> None:
    raise ValueError(
        f"W's Gram matrix overflows float64 (max |W_ij| = {max_abs!r}): its eigenvalues s_i^2/n are not "
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

    Raises
    ------
    ValueError
        W has fewer than 2 dimensions, is empty, contains NaN/Inf, or is so large that its Gram matrix
        overflows float64.
    TypeError
        W is not real and numeric.

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
    Xt = np.swapaxes(X, -2, -1)
    with np.errstate(over="ignore", invalid="ignore"):
        G = (X @ Xt) if N <= M else (Xt @ X)
    if not np.isfinite(np.diagonal(G, axis1=-2, axis2=-1)).all():
        _overflow(float(np.max(np.abs(X))))
    return np.linalg.eigvalsh(G / n)


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
    shape = tuple(W.shape) if hasattr(W, "shape") else np.shape(W)
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
    lam = np.sort(np.array(eigenvalues, dtype=np.float64).ravel())
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
