r"""The Marchenko-Pastur law as a frozen distribution (scipy.stats style).

For an N x M matrix W with i.i.d. entries of mean 0 and variance :math:`\sigma^2`, with
p = min(N, M), n = max(N, M) and ratio y = p/n, the eigenvalues of the smaller Gram matrix
:math:`W W^T / n` (p x p) have the limiting density

.. math::  f(x) = \frac{\sqrt{(b - x)(x - a)}}{2\pi\sigma^2 y x}, \quad
           a = \sigma^2 (1 - \sqrt y)^2,\ b = \sigma^2 (1 + \sqrt y)^2.

For y > 1 (the larger Gram matrix) the same density has mass 1/y and a point mass
1 - 1/y sits at 0 (Bai and Silverstein 2010, ch. 3).

Closed form of the CDF
----------------------
With the substitution :math:`x = \sigma^2 (A + B\cos\theta)`, A = 1 + y, B = 2 sqrt(y), the
density becomes :math:`(2/\pi)\,\sin^2\theta / (A + B\cos\theta)\, d\theta` and

.. math::  P(X > x) = \frac{2}{\pi}\Big[\frac{A\theta}{B^2} - \frac{\sin\theta}{B}
           - \frac{|1-y|}{2y}\arctan\!\big(k \tan\tfrac{\theta}{2}\big)\Big],\quad
           k = \frac{|1-\sqrt y|}{1+\sqrt y},\ \tan\tfrac{\theta}{2} = \sqrt{\tfrac{b-x}{x-a}},

with the mirror formula (in :math:`\delta = \pi - \theta`) for the mass below x. Each side is
evaluated where it is the smaller one, so the CDF and the survival function are both accurate
to a few ulp in absolute terms (measured against mpmath in ``tests/test_marchenko_pastur.py``),
and the CDF is exactly 1 above the upper edge (the seed code returned 0 there).

Scale
-----
Everything is computed in standardised units u = x / sigma2 on the law MP(y, 1) and scaled back
(pdf / sigma2, quantiles * sigma2), so the law is scale-equivariant over the whole float range:
``MarchenkoPastur(y, c * s).cdf(c * x) == MarchenkoPastur(y, s).cdf(x)`` bit for bit for c a power
of four, and up to the rounding of c * x otherwise, from sigma2 = 1e-300 to 1e300
(``tests/test_theory_extremes.py``). A result beyond the float range (an edge above 1.8e308, a density
below the smallest subnormal) is rounded to inf or 0 like any IEEE operation, never NaN.

Input
-----
x and q may be numbers, lists, numpy arrays or torch tensors (a tensor that requires grad is read
detached, a sparse one densified, a quantized one dequantized); complex values, strings, bools and
NaN are refused with a ``TypeError`` / ``ValueError`` naming the argument (``theory._validate``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._mp import mp_map
from ._newton import bracketed_newton_update
from ._validate import positive_finite, positive_int, real_values, torch_values

_HALF_PI = 0.5 * np.pi


def _as_float_array(name: str, x) -> tuple[np.ndarray, bool]:
    return real_values(name, x)


def _unit_edges(y: float) -> tuple[float, float]:
    """Edges of MP(y, 1): ((1 - sqrt y)^2, (1 + sqrt y)^2), the lower one as ((1 - y)/(1 + sqrt y))^2
    (no cancellation near y = 1)."""
    r = math.sqrt(y)
    return ((1.0 - y) / (1.0 + r)) ** 2, (1.0 + r) ** 2


def _scale(s2: float, u):
    """s2 * u, rounded to inf or 0 outside the float range without a warning."""
    with np.errstate(over="ignore", under="ignore"):
        return s2 * u


def _standardise(x: np.ndarray, s2: float) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        return x / s2


@dataclass(frozen=True)
class MarchenkoPastur:
    """Marchenko-Pastur law with ratio ``y = p/n`` and entry variance ``sigma2``.

    Parameters
    ----------
    ratio : float
        y = p/n > 0. ``y <= 1`` is the usual case (eigenvalues of the smaller Gram matrix);
        ``y > 1`` adds a point mass ``1 - 1/y`` at zero.
    sigma2 : float, default 1.0
        Variance of the matrix entries; the law scales linearly in it.

    Examples
    --------
    >>> mp = MarchenkoPastur(ratio=0.25)
    >>> mp.edges
    (0.25, 2.25)
    >>> float(mp.cdf(2.25)), float(mp.cdf(10.0))
    (1.0, 1.0)
    """

    ratio: float
    sigma2: float = 1.0
    lambda_minus: float = field(init=False)
    lambda_plus: float = field(init=False)

    def __post_init__(self) -> None:
        y = positive_finite("ratio", self.ratio)
        s2 = positive_finite("sigma2", self.sigma2)
        object.__setattr__(self, "ratio", y)
        object.__setattr__(self, "sigma2", s2)
        a1, b1 = _unit_edges(y)
        object.__setattr__(self, "lambda_minus", float(_scale(s2, np.float64(a1))))
        object.__setattr__(self, "lambda_plus", float(_scale(s2, np.float64(b1))))

    # ------------------------------------------------------------------ moments, support
    @property
    def edges(self) -> tuple[float, float]:
        """The support of the continuous part, ``(lambda_minus, lambda_plus)``."""
        return (self.lambda_minus, self.lambda_plus)

    @property
    def atom(self) -> float:
        """Mass of the point at zero: ``max(0, 1 - 1/y)``, computed as (y - 1)/y (no cancellation)."""
        return max(0.0, (self.ratio - 1.0) / self.ratio)

    def mean(self) -> float:
        """Mean ``sigma2`` (for every ratio, atom included)."""
        return self.sigma2

    def var(self) -> float:
        """Variance ``sigma2**2 * y`` (for every ratio, atom included); inf (or 0) where it is beyond
        the float range. Computed on the mantissas, so it never overflows in between."""
        m, e = math.frexp(self.sigma2)
        my, ey = math.frexp(self.ratio)
        with np.errstate(over="ignore", under="ignore"):
            return float(np.ldexp(m * m * my, 2 * e + ey))

    def median(self) -> float:
        """The median, ``ppf(0.5)``."""
        return float(self.ppf(0.5))

    # ------------------------------------------------------------------ density
    def pdf(self, x, *, dps: int | None = None):
        """Density of the continuous part (the atom at 0 for y > 1 is not included).

        Integrates to ``min(1, 1/y)``.
        """
        if dps is not None:
            return mp_map(lambda v: _mp_pdf(self, v, dps), _mp_values("x", x, dps))
        x, scalar = _as_float_array("x", x)
        y, s2 = self.ratio, self.sigma2
        u = _standardise(x, s2)
        a, b = _unit_edges(y)
        out = np.zeros_like(u)
        inside = (u > a) & (u < b)
        ui = u[inside]
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            if a == 0.0:
                # y == 1: f = sqrt(4 - u) / (2 pi sqrt(x sigma2)); sqrt(x) sqrt(sigma2) keeps a tiny x
                # accurate where x / sigma2 would underflow. The density diverges like x**-1/2 at 0.
                out[inside] = np.sqrt(b - ui) / (2.0 * np.pi * (np.sqrt(x[inside]) * math.sqrt(s2)))
                out[(x == 0.0)] = np.inf
            else:
                # sqrt(b - u) sqrt(u - a) / (2 pi y u) / sigma2: no product of two large factors (y up
                # to 1.8e308), each step rounded once
                out[inside] = np.sqrt(b - ui) * np.sqrt(ui - a) / (2.0 * np.pi * y) / ui / s2
        return out[()] if scalar else out

    # ------------------------------------------------------------------ distribution functions
    def _tails(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mass of the continuous part below u, above u), each accurate where it is small; ``x`` is
        in standardised units u = x / sigma2."""
        a, b = _unit_edges(self.ratio)
        y = self.ratio
        cont = min(1.0, 1.0 / y)
        below = np.where(x <= a, 0.0, cont)
        above = np.where(x >= b, 0.0, cont)
        inside = (x > a) & (x < b)
        if inside.any():
            xi = x[inside]
            bx, xa = b - xi, xi - a
            sq_b, sq_a = np.sqrt(bx), np.sqrt(xa)
            sin_t = sq_b * sq_a / (2.0 * np.sqrt(y))
            # each side's angle is computed directly (pi - theta would cost absolute accuracy)
            up = sq_b < sq_a  # theta < pi/2: x is closer to the upper edge
            lo_mass, hi_mass = np.empty_like(xi), np.empty_like(xi)
            theta = 2.0 * np.arctan2(sq_b[up], sq_a[up])
            hi_mass[up] = _side_mass(y, theta, sin_t[up], sq_b[up] / sq_a[up], upper=True)
            lo_mass[up] = cont - hi_mass[up]
            dn = ~up
            delta = 2.0 * np.arctan2(sq_a[dn], sq_b[dn])
            lo_mass[dn] = _side_mass(y, delta, sin_t[dn], sq_a[dn] / sq_b[dn], upper=False)
            hi_mass[dn] = cont - lo_mass[dn]
            below[inside], above[inside] = lo_mass, hi_mass
        return below, above

    def cdf(self, x, *, dps: int | None = None):
        """Cumulative distribution function ``P(X <= x)`` (atom included); exactly 1 for x >= b."""
        if dps is not None:
            return mp_map(lambda v: _mp_cdf(self, v, dps), _mp_values("x", x, dps))
        x, scalar = _as_float_array("x", x)
        u = _standardise(x, self.sigma2)
        below, _ = self._tails(u)
        out = np.where(x < 0.0, 0.0, self.atom + below)  # x, not u: -5e-324 / 2 rounds to -0.0
        out = np.where(u >= _unit_edges(self.ratio)[1], 1.0, out)
        return out[()] if scalar else out

    def sf(self, x, *, dps: int | None = None):
        """Survival function ``P(X > x)``, computed directly (no ``1 - cdf`` cancellation)."""
        if dps is not None:
            return mp_map(lambda v: _mp_sf(self, v, dps), _mp_values("x", x, dps))
        x, scalar = _as_float_array("x", x)
        u = _standardise(x, self.sigma2)
        _, above = self._tails(u)
        out = np.where(x < 0.0, 1.0, above)  # the atom at 0 is not above any x >= 0
        return out[()] if scalar else out

    def ppf(self, q, *, dps: int | None = None):
        """Quantile function (inverse of ``cdf``), vectorised.

        Solves for the angle theta by Newton's method safeguarded with bisection, all levels
        at once; 5 to 8 iterations reach the double-precision limit. For y > 1 every level
        ``q <= 1 - 1/y`` maps to the atom at 0; ``ppf(0)`` is the lower edge otherwise.
        """
        if dps is not None:
            return mp_map(lambda v: _mp_ppf(self, v, dps), _mp_levels(q, dps))
        q, scalar = self._levels(q)
        cont = min(1.0, 1.0 / self.ratio)
        below = q - self.atom  # continuous mass that must lie below x
        a, b = _unit_edges(self.ratio)
        out = self._solve(np.maximum(below, 0.0), cont - below, q)
        out[below <= 0.0] = 0.0 if self.ratio > 1.0 else a
        out[q == 1.0] = b  # 1 - atom may round below the continuous mass
        out = _scale(self.sigma2, out)
        return out[()] if scalar else out

    def isf(self, q):
        """Inverse survival function: the x with ``sf(x) = q``, solved directly (no ``1 - q``),
        so tiny upper-tail levels keep their relative accuracy."""
        q, scalar = self._levels(q)
        cont = min(1.0, 1.0 / self.ratio)
        out = self._solve(cont - q, q, 1.0 - q)
        out[q >= cont] = 0.0 if self.ratio > 1.0 else _unit_edges(self.ratio)[0]
        out = _scale(self.sigma2, out)
        return out[()] if scalar else out

    @staticmethod
    def _levels(q) -> tuple[np.ndarray, bool]:
        q, scalar = real_values("q", q)
        bad = (q < 0.0) | (q > 1.0)
        if bad.any():
            raise ValueError(f"q must lie in [0, 1], got {q[bad].ravel()[0]!r}")
        return q.astype(np.float64, copy=True).reshape(q.shape), scalar

    def _solve(self, below: np.ndarray, above: np.ndarray, q: np.ndarray) -> np.ndarray:
        """u = x / sigma2 with continuous mass ``below`` under it and ``above`` over it (the smaller is used)."""
        shape = np.shape(below)
        below, above = np.ravel(below), np.ravel(above)
        out = np.full(below.shape, _unit_edges(self.ratio)[1])
        cont = min(1.0, 1.0 / self.ratio)
        solve = (below > 0.0) & (above > 0.0)
        upper = above[solve] < 0.5 * cont
        target = np.where(upper, above[solve], below[solve])
        out[solve] = self._invert(target, upper)
        return out.reshape(shape)

    def _invert(self, target: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """x whose continuous mass on the chosen side (above x where ``upper``, else below x)
        equals ``target`` (at most half the continuous mass), in standardised units u = x / sigma2."""
        y = self.ratio
        r = np.sqrt(y)
        B = 2.0 * r
        a, b = _unit_edges(y)
        # Starting angle: near an edge the integrand sin^2 u / (A -+ B cos u) lies below both
        # u^2 / (1 -+ sqrt y)^2 and 1/sqrt(y), so the mass from the edge to angle t is below
        # (2/pi) t^3 / (3 (1 -+ sqrt y)^2) and (2/pi) t / sqrt(y): t is above both inverses.
        edge_sq = np.where(upper, (1.0 + r) ** 2, (1.0 - r) ** 2)
        t = np.maximum(np.cbrt(1.5 * np.pi * target * edge_sq), 0.5 * np.pi * target * r)
        t = np.minimum(t, np.pi)
        lo, hi = np.zeros_like(t), np.full_like(t, np.pi)
        # Newton on the side angle, safeguarded by the bracket [lo, hi]; converged entries
        # leave the active set, so the cost is ~ (number of levels) x (5 to 8 iterations).
        active = np.arange(t.size)
        for _ in range(200):
            ta, side, tgt = t[active], upper[active], target[active]
            sa, tan_half = np.sin(ta), np.tan(0.5 * ta)
            g = np.empty_like(ta)
            for flag in (True, False):
                m = side == flag
                if m.any():
                    g[m] = _side_mass(y, ta[m], sa[m], tan_half[m], upper=flag)
            f = g - tgt
            lo[active] = np.where(f < 0.0, ta, lo[active])
            hi[active] = np.where(f > 0.0, ta, hi[active])
            # x / sigma2 at this angle, written without cancellation near either edge
            sh = 4.0 * np.sqrt(y) * np.sin(0.5 * ta) ** 2
            xs = np.where(side, (1.0 + np.sqrt(y)) ** 2 - sh, (1.0 - np.sqrt(y)) ** 2 + sh)
            with np.errstate(divide="ignore", invalid="ignore"):
                deriv = (2.0 / np.pi) * sa * sa / xs
                step = f / deriv
            eps = np.finfo(float).eps
            t[active], done = bracketed_newton_update(ta, f, step, lo[active], hi[active], 2.0 * eps * ta,
                                                      2.0 * eps * hi[active])
            active = active[~done]
            if active.size == 0:
                break
        # near the edges write x as edge -/+ a small positive difference (no cancellation)
        half = np.sin(0.5 * t) ** 2  # (1 - cos t)/2
        return np.where(upper, b - 2.0 * B * half, a + 2.0 * B * half)

    # ------------------------------------------------------------------ sampling
    def rvs(self, size=1, random_state=None) -> np.ndarray:
        """Draw i.i.d. samples by inversion (``ppf`` of uniforms).

        ``random_state`` is a seed or a ``numpy.random.Generator``.
        """
        rng = np.random.default_rng(random_state)
        return self.ppf(rng.random(size))


def _side_mass(y: float, t: np.ndarray, sin_t: np.ndarray, tan_half: np.ndarray, *, upper: bool):
    """Continuous mass between an edge and the point at angle ``t`` from that edge.

    upper=True: mass above x, with t = theta (angle from the upper edge b).
    upper=False: mass below x, with t = delta = pi - theta (angle from the lower edge a).

    (2/pi) [ (1+y) t/(4y) -+ sin t/(2 sqrt y) - |1-y|/(2y) arctan(K tan(t/2)) ],
    K = |1 - sqrt y|/(1 + sqrt y) on the upper side and its reciprocal on the lower side.
    The terms are O(t) and the mass O(t^3), so the relative rounding error grows like eps/t^2;
    that equals the conditioning of the mass itself near an edge (x pdf(x)/mass ~ 1/t^2), so
    nothing better is possible from a double x.
    """
    r = np.sqrt(y)
    lin = (1.0 + y) * t / (4.0 * y)
    trig = sin_t / (2.0 * r)
    if y == 1.0:
        atan_term = 0.0
    else:
        K = abs(1.0 - y) / (1.0 + r) ** 2  # |1 - sqrt y| / (1 + sqrt y), no cancellation near y = 1
        if not upper:
            K = 1.0 / K
        atan_term = abs(1.0 - y) / (2.0 * y) * np.arctan(K * tan_half)
    mass = (lin - trig - atan_term) if upper else (lin + trig - atan_term)
    return np.maximum((2.0 / np.pi) * mass, 0.0)


# ---------------------------------------------------------------------- high-precision path
def _mp_values(name: str, x, dps) -> np.ndarray:
    """Validate the input of a ``dps=`` path: real numbers (floats, ints, mpmath mpf; a tensor is read
    as float64), no NaN; and ``dps`` a positive integer. Returns an object array."""
    import numbers

    import mpmath as mm

    positive_int("dps", dps)
    if type(x).__module__.split(".")[0] == "torch":
        x = torch_values(name, x)
        x = real_values(name, x)[0]
    arr = np.asarray(x, dtype=object) if not isinstance(x, (str, bytes)) else np.asarray(None, dtype=object)
    for idx in np.ndindex(arr.shape):
        v = arr[idx]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must hold real numbers, got {type(v).__name__} {v!r:.80}")
        if mm.isnan(v):
            raise ValueError(f"{name} contains NaN")
    return arr


def _mp_levels(q, dps) -> np.ndarray:
    arr = _mp_values("q", q, dps)
    for v in arr.ravel() if arr.ndim else [arr[()]]:
        if not 0 <= v <= 1:
            raise ValueError(f"q must lie in [0, 1], got {v!r}")
    return arr

def _mp_params(law: MarchenkoPastur):
    import mpmath as mm

    y, s2 = mm.mpf(law.ratio), mm.mpf(law.sigma2)
    a = s2 * (1 - mm.sqrt(y)) ** 2
    b = s2 * (1 + mm.sqrt(y)) ** 2
    return mm, y, s2, a, b


def _mp_pdf(law: MarchenkoPastur, x, dps: int):
    import mpmath as mm

    with mm.workdps(dps):
        mm_, y, s2, a, b = _mp_params(law)
        x = mm.mpf(x)
        if not (a < x < b):
            return mm.mpf(0)
        return mm.sqrt((b - x) * (x - a)) / (2 * mm.pi * s2 * y * x)


def _mp_cdf(law: MarchenkoPastur, x, dps: int):
    """P(X <= x) by tanh-sinh quadrature of the density (independent of the closed form)."""
    import mpmath as mm

    with mm.workdps(dps + 5):
        mm_, y, s2, a, b = _mp_params(law)
        x = mm.mpf(x)
        atom = max(mm.mpf(0), 1 - 1 / y)
        if x < 0:
            val = mm.mpf(0)
        elif x <= a:
            val = atom
        elif x >= b:
            val = mm.mpf(1)
        else:
            f = lambda t: mm.sqrt((b - t) * (t - a)) / (2 * mm.pi * s2 * y * t)  # noqa: E731
            val = atom + mm.quad(f, [a, x])
    with mm.workdps(dps):
        return +val


def _mp_sf(law: MarchenkoPastur, x, dps: int):
    import mpmath as mm

    with mm.workdps(dps + 5):
        mm_, y, s2, a, b = _mp_params(law)
        x = mm.mpf(x)
        if x >= b:
            val = mm.mpf(0)
        elif x < 0:
            val = mm.mpf(1)
        else:
            lo = max(x, a)
            f = lambda t: mm.sqrt((b - t) * (t - a)) / (2 * mm.pi * s2 * y * t)  # noqa: E731
            val = mm.quad(f, [lo, b])
    with mm.workdps(dps):
        return +val


def _mp_ppf(law: MarchenkoPastur, q, dps: int):
    import mpmath as mm

    with mm.workdps(dps + 5):
        mm_, y, s2, a, b = _mp_params(law)
        q = mm.mpf(q)
        atom = max(mm.mpf(0), 1 - 1 / y)
        if q <= atom:
            val = mm.mpf(0)
        elif q >= 1:
            val = b
        else:
            # bisection-then-secant on the quadrature CDF: slow, but independent and exact enough
            val = mm.findroot(lambda t: _mp_cdf(law, t, dps + 5) - q, (a, b), solver="anderson")
    with mm.workdps(dps):
        return +val
