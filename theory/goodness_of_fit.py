r"""How well a spectrum follows the Marchenko-Pastur law: the seed papers' MP-fit error and the KS distance.

Conventions (DESIGN.md): p = min(N, M) <= n = max(N, M), ratio :math:`\gamma = p/n`, eigenvalues
:math:`\lambda_i = s_i^2/n` of the smaller Gram matrix. F denotes the MP(gamma, sigma2) CDF of
``theory.marchenko_pastur``, which is exactly 1 above the upper edge (the seed papers' closed form
returned 0 there, so a window reaching above the edge got an error near 1; see papers.md 0.3).
"""
from __future__ import annotations

import math

import numpy as np

from ._validate import dims, eigenvalue_vector, in_open_interval, positive_finite
from .bema import _censored_count
from .marchenko_pastur import MarchenkoPastur

__all__ = ["mp_fit_error"]

_WINDOWS = ("central", "full")


def mp_fit_error(eigenvalues, p: int, n: int, sigma2: float, alpha: float = 0.2, window: str = "central",
                 censored: int = 0) -> float:
    r"""Kolmogorov-type distance between a spectrum and MP(p/n, sigma2).

    Parameters
    ----------
    eigenvalues : array_like, shape (p,)
        The p eigenvalues of the smaller Gram matrix divided by n, in any order.
    p, n : int
        p = min(N, M) <= n = max(N, M).
    sigma2 : float
        Noise variance of the MP law compared with (typically ``bema(...).sigma2``); > 0.
    alpha : float, default 0.2
        Trimming in (0, 1/2) of the central window (validated but unused for ``window="full"``).
    window : {"central", "full"}
        ``"central"``: the seed papers' error (papers.md 0.3). With the eigenvalues sorted
        ascending, :math:`\lambda_{(0)} \le \dots`, indices
        :math:`i \in [\lfloor \alpha p\rfloor, \lfloor (1-\alpha) p\rfloor)` (0-based, L of them),

        .. math:: \mu = \max_{j=0}^{L-1}\Big|F(\lambda_{(i_0 + j)})
                  - \big(\alpha + (1-2\alpha)\,j/L\big)\Big|.

        ``"full"``: the two-sided Kolmogorov-Smirnov distance between the empirical CDF of all
        p eigenvalues and F, evaluated exactly at the jumps (1-based i):

        .. math:: D = \sup_x |F_p(x) - F(x)| = \max_{i=1}^{p}
                  \max\big(i/p - F(\lambda_{(i)}),\ F(\lambda_{(i)}) - (i-1)/p\big).

    censored : int, default 0
        Number of smallest eigenvalues not observed (zeroed by an earlier truncation); the central
        window drops indices below it and keeps the other levels unchanged (as :func:`theory.bema`).
        Only for ``window="central"``.

    Returns
    -------
    float
        The error, in [0, 1].

    Raises
    ------
    ValueError
        p > n, a count other than p, NaN/Inf, sigma2 <= 0, alpha outside (0, 1/2), an unknown
        ``window``, or an empty central window.
    TypeError
        Non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> from theory.marchenko_pastur import MarchenkoPastur
    >>> lam = MarchenkoPastur(0.25).ppf((np.arange(1, 101) - 0.5) / 100)
    >>> round(mp_fit_error(lam, p=100, n=400, sigma2=1.0, window="full"), 12)
    0.005
    """
    if not isinstance(window, str) or window not in _WINDOWS:
        raise ValueError(f"window must be one of {_WINDOWS}, got {window!r}")
    p, n = dims(p, n)
    s2 = positive_finite("sigma2", sigma2)
    a = in_open_interval("alpha", alpha, 0.0, 0.5)
    lam = eigenvalue_vector(eigenvalues, p)
    law = MarchenkoPastur(ratio=p / n, sigma2=s2)
    if window == "full":
        if censored:
            raise ValueError(f'censored={censored!r} needs window="central", got window="full"')
        F = law.cdf(lam)
        i = np.arange(1, p + 1, dtype=np.float64)
        return float(max(np.max(i / p - F), np.max(F - (i - 1.0) / p)))
    lo, hi = math.floor(a * p), math.floor((1.0 - a) * p)
    length = hi - lo
    if length < 1:
        raise ValueError(
            f"the central window [floor(alpha*p), floor((1-alpha)*p)) is empty for p={p}, alpha={alpha!r}"
        )
    empirical = a + (1.0 - 2.0 * a) * np.arange(length, dtype=np.float64) / length
    c = _censored_count(censored, p)
    if c:
        skip = max(0, c - lo)
        if skip >= length:
            raise ValueError(f"censored={c} leaves nothing of the central window [{lo}, {hi}) (p={p})")
        lo, empirical = lo + skip, empirical[skip:]
    theoretical = law.cdf(lam[lo:hi])
    return float(np.max(np.abs(theoretical - empirical)))
