r"""Edge scaling of the largest eigenvalue and the Tracy-Widom spike test.

For W of shape (N, M) with i.i.d. N(0, sigma^2) entries (real, beta = 1) or standard complex
Gaussian entries scaled by sigma (E|w|^2 = sigma^2, beta = 2), p = min(N, M), n = max(N, M), the
largest eigenvalue :math:`\ell_1` of the unnormalised Gram matrix W W^* / sigma^2 satisfies

.. math:: \frac{\ell_1 - \mu_{np}}{\sigma_{np}} \to TW_\beta,

with (Johnstone 2001, Ann. Statist. 29:295, real case)

.. math:: \mu_{np} = (\sqrt{n-1} + \sqrt p)^2, \quad
          \sigma_{np} = (\sqrt{n-1} + \sqrt p)\Big(\frac{1}{\sqrt{n-1}} + \frac{1}{\sqrt p}\Big)^{1/3},

and n in place of n - 1 in the complex case (Johansson 2000, Comm. Math. Phys. 209:437).
In the project's units (DESIGN.md) the eigenvalue is :math:`\lambda_1 = s_1^2 / n`, so the centre
and scale become :math:`\sigma^2\mu_{np}/n` and :math:`\sigma^2\sigma_{np}/n`; the scale is
:math:`\sigma^2 n^{-2/3}\gamma^{-1/6}(1+\sqrt\gamma)^{4/3}` to leading order, the factor BEMA uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import dims, finite_array, positive_finite, real_values
from .tracy_widom import TracyWidom


@dataclass(frozen=True)
class EdgeScaling:
    """Centre and scale of the largest eigenvalue lambda_1 = s_1^2 / n under the null."""

    center: float
    scale: float
    beta: int
    p: int
    n: int
    sigma2: float

    def standardize(self, lam):
        """(lambda - center) / scale: approximately TW_beta under the null.

        Computed in units of sigma2, (lambda / sigma2 - mu_np / n) / (sigma_np / n), so that a sigma2
        anywhere in the float range (down to subnormals, where center and scale themselves underflow)
        gives the same standardised value; +-inf where it is beyond the float range."""
        lam, scalar = real_values("lam", lam)
        mu_n, sig_n = _unit_centre_scale(self.p, self.n, self.beta)
        with np.errstate(over="ignore", under="ignore"):
            out = (lam / self.sigma2 - mu_n) / sig_n
        return out[()] if scalar else out

    def quantile(self, level):
        """The eigenvalue below which lambda_1 falls with probability ``level`` under the null."""
        level, scalar = real_values("level", level)
        bad = (level < 0.0) | (level > 1.0)
        if bad.any():
            raise ValueError(f"level must lie in [0, 1], got {level[bad].ravel()[0]!r}")
        t = np.asarray(TracyWidom(self.beta).ppf(level), dtype=np.float64)
        mu_n, sig_n = _unit_centre_scale(self.p, self.n, self.beta)
        with np.errstate(over="ignore", under="ignore"):
            out = self.sigma2 * (mu_n + sig_n * t)  # sigma2 last: no 0 * inf when scale underflows
        return out[()] if scalar else out


def edge_scaling(p: int, n: int, beta: int = 1, sigma2: float = 1.0) -> EdgeScaling:
    """Johnstone (beta = 1) or Johansson (beta = 2) centring and scaling, in units lambda = s^2/n.

    Parameters
    ----------
    p, n : int
        p = min(N, M) <= n = max(N, M).
    beta : {1, 2}
        1 for real, 2 for complex entries.
    sigma2 : float
        Variance of the entries (E|w|^2 for complex entries).
    """
    p, n = dims(p, n)
    sigma2 = positive_finite("sigma2", sigma2)
    if isinstance(beta, bool) or beta not in (1, 2):
        raise ValueError(f"beta must be 1 (real) or 2 (complex), got {beta!r}")
    if beta == 1 and n < 2:
        raise ValueError(f"n must be >= 2 for the real (beta=1) edge scaling, got n={n}")
    mu_n, sig_n = _unit_centre_scale(p, n, int(beta))
    return EdgeScaling(center=sigma2 * mu_n, scale=sigma2 * sig_n, beta=int(beta), p=p, n=n, sigma2=sigma2)


def _unit_centre_scale(p: int, n: int, beta: int) -> tuple[float, float]:
    """(mu_np / n, sigma_np / n): the centre and scale for sigma2 = 1."""
    nn = n - 1 if beta == 1 else n
    root = math.sqrt(nn) + math.sqrt(p)
    mu = root**2
    sig = root * (1.0 / math.sqrt(nn) + 1.0 / math.sqrt(p)) ** (1.0 / 3.0)
    return mu / n, sig / n


def spike_pvalue(lambda_max, p: int, n: int, sigma2: float = 1.0, beta: int = 1):
    """P-value of "the largest eigenvalue is a spike" against the pure-noise null.

    ``TW_beta.sf((lambda_max - center) / scale)`` with the centring of :func:`edge_scaling`;
    computed with the survival function directly, so tiny p-values keep their relative accuracy.
    ``sigma2`` is the noise variance (known, or estimated, e.g. by :func:`theory.bema`).
    Vectorised over ``lambda_max``.
    """
    lam = finite_array("lambda_max", lambda_max)
    scaling = edge_scaling(p, n, beta=beta, sigma2=sigma2)
    out = np.asarray(TracyWidom(scaling.beta).sf(scaling.standardize(lam.ravel())), dtype=np.float64)
    return out.reshape(lam.shape)[()] if lam.ndim == 0 else out.reshape(lam.shape)
