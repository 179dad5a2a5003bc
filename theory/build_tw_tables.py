r"""Build ``theory/data/tw_tables.npz``: the piecewise polynomial interpolants behind ``TracyWidom``.

For each beta the interval [S_LO, S_HI] is cut into pieces of width H = 1/8; on each piece the
function g = log F_beta (pieces left of the median) or g = log(1 - F_beta) (pieces right of it) is
interpolated at the DEG + 1 Chebyshev-Lobatto points (the piece's ends included, so that adjacent
pieces share their boundary value and the interpolant is continuous) by a polynomial of degree DEG
in the local variable t in [-1, 1], stored in the monomial basis (Horner at run time). The values at
the nodes come from the Fredholm determinants of ``theory.tracy_widom`` (``method="fredholm"``),
except at the two outer ends, which take the asymptotic expansions' values (so that the
interpolant meets them continuously), and the upper tail of beta = 4 on s >= S4_EXACT, where

    1 - F_4(s) = -(e_2 + e_4 + ...)(A_t),  t = sqrt2 s,  e_2 = (p_1^2 - p_2) / 2,

loses digits to the cancellation p_2 - p_1^2 ~ p_2 / zeta in double precision; there p_1 = (1/2)
int_t^inf Ai and p_2 = (2 t^2 Ai^2 - 2 t Ai'^2 - Ai Ai')/3 are evaluated by mpmath at 40 digits and
only the small remainder e_4 + e_6 + ... (relative size e^{-2 zeta}) comes from the eigenvalues.

Beyond [S_LO, S_HI] the asymptotic expansions of ``theory._tw_asymptotic`` take over; the seams are
where the expansions' truncation error meets the accuracy of the determinants (``tests``).

Reproducible bit for bit on one numpy/LAPACK build and BLAS kernel: single-threaded BLAS (set here before
numpy is imported), fixed node order, no randomness. OpenBLAS picks its kernels by CPU at run time, so the
determinants differ in the last bits between, e.g., its Haswell and SkylakeX kernels; the tables record the
build's :func:`platform_key`. ``tests/test_tracy_widom_table.py`` rebuilds a slice: bit for bit where the
key matches, and everywhere to within rounding (measured across an Intel Xeon and an AMD EPYC build:
cdf 1.3e-15 absolute, 1 - F 1.4e-14 relative).

    python -m theory.build_tw_tables            # writes theory/data/tw_tables.npz
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

H = 0.125  # piece width
DEG = 9  # polynomial degree per piece
# [S_LO, S_HI] per beta: the left expansion below S_LO, the right one above S_HI (see the module
# docstring of theory.tracy_widom for the error budget at each seam)
RANGE = {1: (-7.0, 16.0), 2: (-7.0, 10.0), 4: (-5.625, 11.0)}
MEDIAN_SPLIT = {1: -1.25, 2: -1.75, 4: -2.25}  # pieces starting at or right of this use log(1 - F)
S4_EXACT = 3.0  # beta 4 upper-tail pieces from here on use the mpmath traces
OUT = Path(__file__).resolve().parent / "data" / "tw_tables.npz"


def nodes() -> np.ndarray:
    """Chebyshev-Lobatto points cos(pi k / DEG) on [-1, 1], in decreasing order (ends included)."""
    x = np.cos(np.pi * np.arange(DEG + 1) / DEG)
    x[0], x[-1] = 1.0, -1.0
    return x


def _traces_mp(t: float) -> tuple[float, float]:
    """(p1, p2) of A_t by mpmath at 40 digits (closed forms; see the module docstring)."""
    import mpmath as mm

    with mm.workdps(40):
        x = mm.mpf(t)
        ai, aip = mm.airyai(x), mm.airyai(x, derivative=1)
        p1 = (mm.mpf(1) / 3 - mm.airyai(x, derivative=-1)) / 2  # int_0^x Ai = derivative=-1
        p2 = (2 * x * x * ai * ai - 2 * x * aip * aip - ai * aip) / 3
        return p1, p2


def _beta4_upper_log_sf(s: np.ndarray) -> np.ndarray:
    import mpmath as mm

    from . import tracy_widom as twm

    t = s * math.sqrt(2.0)
    sp = twm._spectrum(t)
    even4, _ = twm._elementary_sums(sp["mu"])
    out = np.empty(s.size)
    with mm.workdps(40):
        for i, ti in enumerate(t):
            p1, p2 = _traces_mp(float(ti))
            out[i] = float(mm.log((p2 - p1 * p1) / 2 - mm.mpf(float(even4[i]))))
    return out


def piece_values(beta: int, left: np.ndarray) -> np.ndarray:
    """g at the Chebyshev nodes of the pieces starting at ``left``: shape (pieces, DEG + 1)."""
    from . import tracy_widom as twm

    from . import _tw_asymptotic as asym

    x = nodes()
    s = (left[:, None] + H * (x[None, :] + 1.0) / 2.0).ravel()
    s[DEG:: DEG + 1] = left  # the piece's ends exactly (t = -1 and t = 1)
    s[:: DEG + 1] = left + H
    # one determinant batch per piece: the values do not depend on which other pieces are built
    # (batched LAPACK results can depend on the batch's memory layout), so a slice rebuilds exactly
    q = [twm._all_quantities(beta, s[k: k + DEG + 1], with_pdf=False) for k in range(0, s.size, DEG + 1)]
    upper = np.repeat(left >= MEDIAN_SPLIT[beta], DEG + 1)
    g = np.where(upper, np.concatenate([v["logsf"] for v in q]), np.concatenate([v["logcdf"] for v in q]))
    if beta == 4:
        exact = upper & (s >= S4_EXACT)
        if exact.any():
            g[exact] = _beta4_upper_log_sf(s[exact])
    lo, hi = RANGE[beta]
    scale = math.sqrt(2.0) if beta == 4 else 1.0
    at_lo, at_hi = s == lo, s == hi
    if at_lo.any():
        g[at_lo] = asym.left_tail(beta, s[at_lo], -lo * scale)[0]
    if at_hi.any():
        g[at_hi] = asym.right_tail(beta, s[at_hi], 2.0 / 3.0 * (hi * scale) ** 1.5)[0]
    return g.reshape(left.size, DEG + 1)


def fit(values: np.ndarray) -> np.ndarray:
    """Monomial coefficients (lowest first) of the interpolating polynomials, shape (DEG + 1, pieces)."""
    cheb = np.polynomial.chebyshev
    # discrete Chebyshev transform at the Lobatto points x_j = cos(pi j / DEG) (exact interpolation):
    # c_k = (2 / DEG) sum_j'' f_j cos(pi j k / DEG), the ends of the sum and c_0, c_DEG halved
    j = np.arange(DEG + 1)
    T = np.cos(np.pi * np.outer(j, j) / DEG)  # T_k(x_j), symmetric
    wts = np.ones(DEG + 1)
    wts[0] = wts[-1] = 0.5
    # transform g - g(left end): its rounding errors then scale with g's variation over the piece,
    # not with |g| (up to ~700 in the far tails); the end value is added back to the constant term
    ref = values[:, DEG].copy()
    # (an elementwise product and a sum over the node axis, not a matrix product: BLAS would pick
    # a different kernel, with a different rounding, for a different number of pieces)
    c = ((((values - ref[:, None]) * wts)[:, :, None] * T[None, :, :]).sum(axis=1)) * (2.0 / DEG)
    c[:, 0] /= 2.0
    c[:, -1] /= 2.0
    out = np.zeros((DEG + 1, c.shape[0]))
    for i, row in enumerate(c):
        m = cheb.cheb2poly(row)  # drops trailing zero coefficients
        out[: m.size, i] = m
    out[0] += ref
    return out


def pieces(beta: int) -> np.ndarray:
    lo, hi = RANGE[beta]
    n = int(round((hi - lo) / H))
    return lo + H * np.arange(n)


def platform_key() -> str:
    """numpy version, BLAS library, version and run-time kernel: what the table's last bits depend on."""
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}" for i in threadpool_info()
            if i.get("user_api") == "blas"]
    return f"numpy {np.__version__}; " + "; ".join(sorted(blas) or ["blas unknown"])


def build(betas=(1, 2, 4), only: slice | None = None) -> dict:
    """{"coef{beta}": (DEG + 1, pieces), "upper{beta}": bool per piece, "range{beta}": (lo, hi)};
    ``only`` restricts to a slice of the pieces (for the reproducibility test)."""
    out = {"H": np.array(H), "DEG": np.array(DEG), "platform": np.array(platform_key())}
    for beta in betas:
        left = pieces(beta)
        if only is not None:
            left = left[only]
        out[f"coef{beta}"] = fit(piece_values(beta, left))
        out[f"upper{beta}"] = left >= MEDIAN_SPLIT[beta]
        out[f"range{beta}"] = np.array(RANGE[beta])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    tables = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **tables)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
