"""High-precision (mpmath) Tracy-Widom evaluation: the reference behind ``TracyWidom(...).cdf(s, dps=...)``.

Independent of the double-precision code in ``theory.tracy_widom`` in everything but the mathematics: mpmath's own
Gauss-Legendre rule (``mpmath.calculus.quadrature.GaussLegendre``), Airy values from mpmath
continued by Taylor series (the Airy equation y'' = x y gives every derivative), a longer
truncation interval (kernel below 10^-(dps+5) for every pair of nodes), and determinants by
mpmath LU at ``dps`` digits of the Fredholm determinants det(I -+ A_s),
A_s(u, v) = Ai(s + u + v) on (0, inf) (Ferrari and Spohn 2005; Bornemann 2010):

    F1(s) = det(I - A_s),  F2(s) = det(I - A_s) det(I + A_s),
    F4(s) = (det(I - A_t) + det(I + A_t)) / 2 at t = sqrt(2) s.

``dets`` is cached, so each point costs its two LU factorisations once per test session.
The node count is checked by ``tests/test_tracy_widom.py::test_reference_converged``.
Cost: a few seconds per point (48 nodes) to ~20 s (96 nodes, for s < -2).
"""
from __future__ import annotations

import functools

import mpmath as mm

DPS = 32


class precision:
    """Context manager: evaluate at ``dps`` digits (sets the module default ``DPS``)."""

    def __init__(self, dps: int):
        self.dps = dps

    def __enter__(self):
        global DPS
        self.saved, DPS = DPS, self.dps
        return self

    def __exit__(self, *exc):
        global DPS
        DPS = self.saved


@functools.lru_cache(maxsize=None)
def _rule(degree: int, dps: int):
    with mm.workdps(dps):
        return mm.calculus.quadrature.GaussLegendre(mm.mp).calc_nodes(degree, mm.mp.prec)


class _Airy:
    """Ai(x) to ~dps digits on a grid of centres with spacing h, continued by Taylor series."""

    def __init__(self, lo, hi, dps: int, h=mm.mpf(1) / 4, terms: int = 45):
        with mm.workdps(dps):
            self.h, self.lo, self.terms = mm.mpf(h), mm.mpf(lo), terms
            n = int(mm.ceil((hi - lo) / h)) + 1
            self.c = [self.lo + k * self.h for k in range(n)]
            self.val = [(mm.airyai(c), mm.airyai(c, derivative=1)) for c in self.c]

    def __call__(self, x):
        k = int(mm.nint((x - self.lo) / self.h))
        c = self.c[k]
        y0, y1 = self.val[k]
        # y^(j+2) = c y^(j) + j y^(j-1) (differentiate y'' = x y), summed as a Taylor series
        d = [y0, y1]
        t = x - c
        # |t| <= h/2 = 1/8 and |c| <= 60: the k-th term is below (sqrt(60)/8)^k / k!, < 1e-48 for
        # k = 45. A fixed count, because the terms do not decrease monotonically: at c = 0 every
        # third derivative vanishes, so "stop at the first small term" would stop too early.
        total, power = y0 + y1 * t, t
        for j in range(0, self.terms - 2):
            nxt = c * d[j] + (j * d[j - 1] if j >= 1 else 0)
            d.append(nxt)
            power *= t / (j + 2)
            total += nxt * power
        return total


def _interval(s, dps: int):
    # Ai(x) ~ exp(-2/3 x^{3/2}): make Ai(s + L) / max(1, Ai(s)) < 10^-(dps + 5)
    target = (dps + 5) * mm.log(10) * 3 / 2
    return (target + max(s, 0) ** mm.mpf(1.5)) ** (mm.mpf(2) / 3) - s


def dets(s: float, sqrt2: bool = False, degree: int = 5, dps: int | None = None) -> tuple:
    """(det(I - A_t), det(I + A_t)) at t = s (or sqrt(2) s), as mpf with ``dps`` digits."""
    dps = DPS if dps is None else dps
    return _dets(s, sqrt2, degree, dps)


@functools.lru_cache(maxsize=None)
def _dets(s: float, sqrt2: bool, degree: int, dps: int) -> tuple:
    with mm.workdps(dps + 6):
        t = mm.mpf(s) * (mm.sqrt(2) if sqrt2 else 1)
        L = _interval(t, dps)
        nodes = _rule(degree, dps + 6)
        u = [L * (x + 1) / 2 for x, _ in nodes]
        sw = [mm.sqrt(L * w / 2) for _, w in nodes]
        ai = _Airy(t - 1, t + 2 * L + 1, dps + 6)
        m = len(u)
        A = mm.matrix(m, m)
        for i in range(m):
            for j in range(i, m):
                A[i, j] = A[j, i] = sw[i] * sw[j] * ai(t + u[i] + u[j])
        eye = mm.eye(m)
        return +mm.det(eye - A), +mm.det(eye + A)


def _degree(beta: int, s: float) -> int:
    # 48 nodes: error <= 1e-16 for t >= -4 (measured); the oscillatory kernel further left wants 96
    return 5 if s * (2**0.5 if beta == 4 else 1) >= -4.5 else 6


def cdf(beta: int, s: float, degree: int | None = None):
    """F_beta(s) to ~DPS digits."""
    degree = _degree(beta, s) if degree is None else degree
    dm, dp = dets(s, beta == 4, degree)
    with mm.workdps(DPS + 10):
        return {1: dm, 2: dm * dp, 4: (dm + dp) / 2}[beta]


def sf(beta: int, s: float, degree: int | None = None):
    """1 - F_beta(s) with ~DPS significant digits: where the tail is below 1e-8 the determinants
    are recomputed with DPS + (its number of leading zeros) digits, so that 1 - F keeps them."""
    degree = _degree(beta, s) if degree is None else degree
    with mm.workdps(DPS + 10):
        tail = 1 - cdf(beta, s, degree)
        extra = int(-mm.log10(abs(tail))) if tail != 0 else 60
        if extra <= 8:
            return tail
    dm, dp = dets(s, beta == 4, degree, DPS + extra + 4)
    with mm.workdps(DPS + extra + 10):
        return 1 - {1: dm, 2: dm * dp, 4: (dm + dp) / 2}[beta]
