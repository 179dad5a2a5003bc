r"""The spiked (deformed) rectangular model and optimal singular-value thresholds.

Model and units
---------------
W = S + R is an N x M matrix, p = min(N, M), n = max(N, M), ratio c = p / n in (0, 1]. R has
i.i.d. entries of mean 0 and variance :math:`\sigma^2`; S has a singular value t. Every quantity
in this module is in units of :math:`\sigma\sqrt n`:

* the signal strength is :math:`\theta = t / (\sigma\sqrt n)`,
* an observed singular value s of W enters as :math:`s / (\sigma\sqrt n)`,
* the noise bulk of the singular values of W then ends at :math:`1 + \sqrt c` (the square root of
  the Marchenko-Pastur upper edge :math:`(1 + \sqrt c)^2`, see ``theory.marchenko_pastur``).

This is the normalisation of Benaych-Georges and Nadakuditi (2012), who take R with entries of
variance 1/M (M = n), and of Gavish and Donoho (2014, 2017), who write Y = X + sigma Z / sqrt(n)
with aspect ratio beta = m/n <= 1 (their beta is our c).

Results (Benaych-Georges and Nadakuditi 2012, J. Multivariate Anal. 111:120)
--------------------------------------------------------------------------
For a rank-one S = theta u v^T with theta fixed as n -> infinity and c held fixed:

* phase transition at :math:`\theta_c = c^{1/4}` (``bbp_threshold``);
* top singular value -> :math:`\sqrt{(1+\theta^2)(c+\theta^2)}/\theta` above it, and
  -> :math:`1 + \sqrt c` at or below it (``outlier_singular_value``);
* squared overlaps of the top singular vectors with u and v -> (``singular_vector_overlaps``)

  .. math:: 1 - \frac{c(1+\theta^2)}{\theta^2(\theta^2+c)} = \frac{\theta^4 - c}{\theta^2(\theta^2 + c)}
            \quad\text{(p-dimensional side)},\qquad
            1 - \frac{c+\theta^2}{\theta^2(\theta^2+1)} = \frac{\theta^4 - c}{\theta^2(\theta^2 + 1)}
            \quad\text{(n-dimensional side)},

  and 0 at or below the threshold.

Inverting the outlier map gives the signal from an observed outlier (``signal_from_outlier``).
Gavish and Donoho's optimal hard threshold (IEEE TIT 2014, 60:5040) and optimal Frobenius
shrinker (IEEE TIT 2017, 63:2137) are ``optimal_hard_threshold`` and
``optimal_shrinker_frobenius``. The shrinker is exactly
:math:`\eta(y) = \theta(y)\sqrt{\ell(\theta(y))\, r(\theta(y))}`, where :math:`\theta(y)` is the inverted
outlier map and :math:`\ell, r` the two squared overlaps: the estimate keeps the part of the
signal that the noisy singular vectors still see (``tests/test_spiked.py`` checks this identity).

Numerics
--------
The formulas are evaluated in forms free of cancellation near the threshold and of overflow for
large arguments: :math:`\theta^4 - c` is written as a product of factors that vanish at the
threshold, and the discriminant :math:`(s^2 - 1 - c)^2 - 4c` as
:math:`(s - e_+)(s + e_+)(s - e_-)(s + e_-)` with :math:`e_\pm = 1 \pm \sqrt c`.
"""
from __future__ import annotations

import numpy as np

from ._validate import finite_array, positive_finite

__all__ = [
    "bbp_threshold",
    "outlier_singular_value",
    "singular_vector_overlaps",
    "signal_from_outlier",
    "optimal_hard_threshold",
    "optimal_shrinker_frobenius",
]


# ---------------------------------------------------------------------------- validation
def _ratio(value) -> float:
    """Validate the aspect ratio c = p/n: a real number in (0, 1]."""
    c = positive_finite("ratio", value)
    if c > 1.0:
        raise ValueError(
            f"ratio must lie in (0, 1] (ratio = p/n with p = min(N, M), n = max(N, M)), got {value!r}"
        )
    return c


def _nonneg(name: str, value) -> tuple[np.ndarray, bool]:
    """Validate a finite, non-negative array-like; return it as float64 and whether it was 0-d."""
    arr = finite_array(name, value)
    neg = arr < 0.0
    if neg.any():
        first = np.unravel_index(int(np.argmax(neg)), arr.shape)
        raise ValueError(
            f"{name} must be >= 0, got {int(neg.sum())} negative value(s); first at index "
            f"{tuple(int(i) for i in first)}: {arr[first]!r}"
        )
    return arr, arr.ndim == 0


def _out(arr: np.ndarray, scalar: bool):
    """A python float for 0-d input, else the array."""
    return float(arr) if scalar else arr


def _edge_ratio_product(x: np.ndarray, c: float) -> np.ndarray:
    r""":math:`((x^2 - 1 - c)^2 - 4c) / x^4` for x > 1 + sqrt(c), without cancellation or overflow.

    The numerator factors as :math:`(x - e_+)(x + e_+)(x - e_-)(x + e_-)`, :math:`e_\pm = 1 \pm \sqrt c`.
    """
    rc = np.sqrt(c)
    e_plus, e_minus = 1.0 + rc, 1.0 - rc
    return ((x - e_plus) / x) * ((x + e_plus) / x) * ((x - e_minus) / x) * ((x + e_minus) / x)


# ---------------------------------------------------------------------------- BBP transition
def bbp_threshold(ratio: float) -> float:
    r"""Signal strength at the phase transition, :math:`\theta_c = c^{1/4}`.

    A rank-one signal of strength :math:`\theta` (in units of :math:`\sigma\sqrt n`) produces a
    singular value outside the noise bulk, and singular vectors correlated with its own, if and
    only if :math:`\theta > c^{1/4}`.

    Parameters
    ----------
    ratio : float
        c = p/n in (0, 1].

    Returns
    -------
    float
        :math:`c^{1/4}`.

    References
    ----------
    Benaych-Georges, F. and Nadakuditi, R. R. (2012). The singular values and vectors of low rank
    perturbations of large rectangular random matrices. J. Multivariate Anal. 111:120-135.

    Examples
    --------
    >>> bbp_threshold(1.0)
    1.0
    >>> round(bbp_threshold(0.0625), 12)
    0.5
    """
    return float(_ratio(ratio) ** 0.25)


def outlier_singular_value(theta, ratio: float):
    r"""Almost-sure limit of the top singular value of W = theta u v^T + R.

    .. math:: s(\theta) = \frac{\sqrt{(1+\theta^2)(c+\theta^2)}}{\theta}
              \quad (\theta > c^{1/4}), \qquad s(\theta) = 1 + \sqrt c \quad (\theta \le c^{1/4}).

    The map is continuous (it equals :math:`1 + \sqrt c` at :math:`\theta = c^{1/4}`) and strictly
    increasing above the threshold, with :math:`s(\theta) = \theta + O(1/\theta)` for large
    :math:`\theta`. It is evaluated as ``hypot(1, theta) * (hypot(sqrt(c), theta) / theta)``, which
    does not overflow, and never returns less than the edge (a one-ulp rounding right above the
    threshold is rounded up to the edge).

    Parameters
    ----------
    theta : float or array_like
        Signal singular value(s) in units of :math:`\sigma\sqrt n`; finite and >= 0.
    ratio : float
        c = p/n in (0, 1].

    Returns
    -------
    float or numpy.ndarray
        The limiting top singular value of W in units of :math:`\sigma\sqrt n`; a float for a
        scalar ``theta``, an array of the same shape otherwise.

    References
    ----------
    Benaych-Georges and Nadakuditi (2012), J. Multivariate Anal. 111:120-135.

    Examples
    --------
    >>> round(outlier_singular_value(2.0, 1.0), 12)
    2.5
    >>> outlier_singular_value(0.5, 1.0)
    2.0
    """
    c = _ratio(ratio)
    t, scalar = _nonneg("theta", theta)
    above = t > c**0.25
    out = np.full(t.shape, 1.0 + np.sqrt(c))
    ta = t[above]
    # the exact value is >= the edge; max() only removes a rounding error of an ulp right above
    # the threshold, so that the map is monotone and never dips into the bulk
    out[above] = np.maximum(np.hypot(1.0, ta) * (np.hypot(np.sqrt(c), ta) / ta), out[above])
    return _out(out, scalar)


def singular_vector_overlaps(theta, ratio: float):
    r"""Limits of the squared overlaps of the top singular vectors with the planted ones.

    For W = theta u v^T + R with u on the smaller (p-dimensional) side and v on the larger
    (n-dimensional) side, and :math:`\hat u, \hat v` the top singular vectors of W:

    .. math:: |\langle u, \hat u\rangle|^2 \to 1 - \frac{c(1+\theta^2)}{\theta^2(\theta^2+c)}
              = \frac{\theta^4 - c}{\theta^2(\theta^2+c)}, \qquad
              |\langle v, \hat v\rangle|^2 \to 1 - \frac{c+\theta^2}{\theta^2(\theta^2+1)}
              = \frac{\theta^4 - c}{\theta^2(\theta^2+1)}

    for :math:`\theta > c^{1/4}`, and both limits are 0 at or below the threshold. Both lie in
    [0, 1), vanish continuously at the threshold and increase to 1 as :math:`\theta \to \infty`.
    With :math:`q = c^{1/4}/\theta` the common numerator is evaluated as
    :math:`\theta^4 (1 - q)(1 + q)(1 + q^2)`, which is accurate right above the threshold (and as
    :math:`\theta^4 (1 - q^4)` for :math:`q < 1/2`, which keeps the overlaps <= 1 in floating point).

    Parameters
    ----------
    theta : float or array_like
        Signal singular value(s) in units of :math:`\sigma\sqrt n`; finite and >= 0.
    ratio : float
        c = p/n in (0, 1].

    Returns
    -------
    (left, right) : tuple of float or numpy.ndarray
        ``left`` is the squared overlap on the p-dimensional side (the left singular vector when
        N <= M), ``right`` the one on the n-dimensional side. For N > M transpose W: the smaller
        side is then the right singular vector. For c = 1 the two coincide.

    References
    ----------
    Benaych-Georges and Nadakuditi (2012), J. Multivariate Anal. 111:120-135.

    Examples
    --------
    >>> singular_vector_overlaps(2.0, 1.0)
    (0.75, 0.75)
    >>> singular_vector_overlaps(0.9, 1.0)
    (0.0, 0.0)
    """
    c = _ratio(ratio)
    t, scalar = _nonneg("theta", theta)
    tc = c**0.25
    above = t > tc
    left = np.zeros(t.shape)
    right = np.zeros(t.shape)
    ta = t[above]
    q = tc / ta
    # (theta^4 - c) / theta^4 = 1 - q^4: factored as (1 - q)(1 + q)(1 + q^2), 1 - q = (theta - tc)/theta,
    # near the threshold (no cancellation); directly for q < 1/2, where it is then exactly <= 1
    q4 = (q * q) ** 2
    num = np.where(q < 0.5, 1.0 - q4, ((ta - tc) / ta) * (1.0 + q) * (1.0 + q * q))
    left[above] = num / (1.0 + (np.sqrt(c) / ta) ** 2)  # / (1 + c / theta^2)
    right[above] = num / (1.0 + (1.0 / ta) ** 2)  # / (1 + 1 / theta^2)
    return _out(left, scalar), _out(right, scalar)


def signal_from_outlier(s, ratio: float):
    r"""Invert ``outlier_singular_value``: the signal strength that produces an outlier s.

    .. math:: \theta^2 = \frac{(s^2 - 1 - c) + \sqrt{(s^2 - 1 - c)^2 - 4c}}{2}
              \quad (s > 1 + \sqrt c), \qquad \theta = 0 \quad (s \le 1 + \sqrt c).

    This is the larger root of :math:`\theta^4 - (s^2 - 1 - c)\theta^2 + c = 0`; it is
    :math:`\ge c^{1/4}`, so the result is the unique signal above the threshold with
    ``outlier_singular_value(theta, c) == s``.

    A singular value at or inside the bulk edge, :math:`s \le 1 + \sqrt c`, returns **0**: such a
    singular value is what pure noise produces, and every signal at or below the threshold
    :math:`c^{1/4}` produces the same limit, so no signal is detectable there and none is
    estimated. The map therefore jumps from 0 to :math:`c^{1/4}` at the edge.

    Conditioning: the outlier map is flat at the threshold (:math:`s - (1+\sqrt c) \propto
    (\theta - c^{1/4})^2`), so the inverse amplifies a relative error :math:`\delta` in s into a
    relative error of about :math:`\delta\, s^2\theta^2/(\theta^4 - c)` in :math:`\theta^2`. Far from
    the edge the result is accurate to a few ulp; right above the edge it is limited by the
    accuracy of s itself, not by this formula (which is evaluated without cancellation).

    Parameters
    ----------
    s : float or array_like
        Observed singular value(s) in units of :math:`\sigma\sqrt n`; finite and >= 0.
    ratio : float
        c = p/n in (0, 1].

    Returns
    -------
    float or numpy.ndarray
        The signal strength :math:`\theta` in units of :math:`\sigma\sqrt n` (0 inside the bulk).

    References
    ----------
    Benaych-Georges and Nadakuditi (2012), J. Multivariate Anal. 111:120 (the map inverted
    here); the same inversion underlies Gavish and Donoho (2017), IEEE TIT 63:2137.

    Examples
    --------
    >>> signal_from_outlier(2.5, 1.0)
    2.0
    >>> signal_from_outlier(1.5, 1.0)
    0.0
    """
    c = _ratio(ratio)
    x, scalar = _nonneg("s", s)
    out = np.zeros(x.shape)
    above = x > 1.0 + np.sqrt(c)
    xa = x[above]
    # theta = s * sqrt((a + sqrt(disc)) / 2) / s^2 scaled: a / s^2 and disc / s^4 never overflow
    a_scaled = ((xa - 1.0) / xa) * ((xa + 1.0) / xa) - (np.sqrt(c) / xa) ** 2
    out[above] = xa * np.sqrt(0.5 * (a_scaled + np.sqrt(_edge_ratio_product(xa, c))))
    return _out(out, scalar)


# ---------------------------------------------------------------------------- Gavish-Donoho
def optimal_hard_threshold(ratio: float, sigma_known: bool = True) -> float:
    r"""Gavish-Donoho optimal hard threshold for singular values (asymptotic MSE).

    With known noise level (``sigma_known=True``) the threshold on the singular values of W, in
    units of :math:`\sigma\sqrt n`, is

    .. math:: \lambda^*(\beta) = \sqrt{2(\beta+1) + \frac{8\beta}{(\beta+1) + \sqrt{\beta^2 + 14\beta + 1}}},

    with :math:`\beta = c`; :math:`\lambda^*(1) = 4/\sqrt 3`. Keep the singular values
    :math:`s_i > \lambda^*(\beta)\,\sigma\sqrt n` and set the others to zero.

    With unknown noise level (``sigma_known=False``) the function returns the coefficient

    .. math:: \omega(\beta) = \lambda^*(\beta) / \sqrt{\mu_\beta},

    where :math:`\mu_\beta` is the median of the Marchenko-Pastur law with ratio :math:`\beta` and
    :math:`\sigma^2 = 1` (computed exactly by ``MarchenkoPastur(ratio=beta).ppf(0.5)``, not by the
    cubic fit :math:`0.56\beta^3 - 0.95\beta^2 + 1.82\beta + 1.43` of the paper, which agrees to
    about 0.02). The threshold is then :math:`\tau = \omega(\beta)\, s_{\mathrm{med}}`, where
    :math:`s_{\mathrm{med}}` is the median of the p observed singular values of W, in whatever units
    those singular values are given (raw, or divided by :math:`\sqrt n`): :math:`\tau` is in the
    same units and is compared with the same singular values. The reason: for noise-dominated
    W, :math:`s_{\mathrm{med}} \approx \sigma\sqrt{n\mu_\beta}` (the singular values are the square
    roots of n times the MP-distributed eigenvalues of :math:`W W^T / n`), so
    :math:`\tau \approx \lambda^*(\beta)\,\sigma\sqrt n`, the known-sigma threshold.

    Parameters
    ----------
    ratio : float
        :math:`\beta = c = p/n` in (0, 1].
    sigma_known : bool, default True
        Return :math:`\lambda^*(\beta)` (True) or :math:`\omega(\beta)` (False).

    Returns
    -------
    float
        :math:`\lambda^*(\beta)` in units of :math:`\sigma\sqrt n`, or the dimensionless
        multiplier :math:`\omega(\beta)` of the median singular value.

    References
    ----------
    Gavish, M. and Donoho, D. L. (2014). The optimal hard threshold for singular values is
    4/sqrt(3). IEEE Trans. Inf. Theory 60(8):5040-5053.

    Examples
    --------
    >>> round(optimal_hard_threshold(1.0), 12) == round(4 / 3**0.5, 12)
    True
    """
    beta = _ratio(ratio)
    if not isinstance(sigma_known, (bool, np.bool_)):
        raise TypeError(f"sigma_known must be a bool, got {type(sigma_known).__name__} {sigma_known!r}")
    lam = np.sqrt(2.0 * (beta + 1.0) + 8.0 * beta / ((beta + 1.0) + np.sqrt(beta * beta + 14.0 * beta + 1.0)))
    if sigma_known:
        return float(lam)
    from .marchenko_pastur import MarchenkoPastur

    mu = float(MarchenkoPastur(ratio=beta).ppf(0.5))
    return float(lam / np.sqrt(mu))


def optimal_shrinker_frobenius(y, ratio: float):
    r"""Gavish-Donoho optimal singular-value shrinker for Frobenius-norm loss.

    .. math:: \eta(y) = \frac{\sqrt{(y^2 - \beta - 1)^2 - 4\beta}}{y} \quad (y \ge 1 + \sqrt\beta),
              \qquad \eta(y) = 0 \quad (y < 1 + \sqrt\beta),

    for an observed singular value y in units of :math:`\sigma\sqrt n` (:math:`\beta = c`). It
    equals :math:`\theta\sqrt{\ell(\theta)\,r(\theta)}` with :math:`\theta` =
    ``signal_from_outlier(y, c)`` and :math:`(\ell, r)` = ``singular_vector_overlaps(theta, c)``,
    and is continuous (0 at the edge). The discriminant is evaluated as
    :math:`(y - e_+)(y + e_+)(y - e_-)(y + e_-)`, :math:`e_\pm = 1 \pm \sqrt\beta`.

    Parameters
    ----------
    y : float or array_like
        Observed singular value(s) in units of :math:`\sigma\sqrt n`; finite and >= 0.
    ratio : float
        :math:`\beta = c = p/n` in (0, 1].

    Returns
    -------
    float or numpy.ndarray
        The shrunken singular value(s), in the same units.

    References
    ----------
    Gavish, M. and Donoho, D. L. (2017). Optimal shrinkage of singular values. IEEE Trans. Inf.
    Theory 63(4):2137-2152 (the shrinker for Frobenius loss).

    Examples
    --------
    >>> round(optimal_shrinker_frobenius(2.5, 1.0), 12)
    1.5
    >>> optimal_shrinker_frobenius(1.9, 1.0)
    0.0
    """
    beta = _ratio(ratio)
    x, scalar = _nonneg("y", y)
    out = np.zeros(x.shape)
    above = x > 1.0 + np.sqrt(beta)  # at the edge itself the formula gives 0
    xa = x[above]
    out[above] = xa * np.sqrt(_edge_ratio_product(xa, beta))
    return _out(out, scalar)
