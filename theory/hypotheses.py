r"""Calibrated tests of the hypotheses the pruning theorems put on the random part R of a weight matrix.

The theorems (papers.md 1.5, 2.3) model a trained weight matrix as :math:`W = S + R` with R an N x M matrix of
i.i.d. centred Gaussian entries of variance :math:`\sigma^2`, independent of S and of the data. Given W, this
module splits it at the BEMA edge and tests R's hypotheses, each with a p-value from the finite-size null
distribution (the statistic computed on Gaussian matrices of the same shape that went through the same split):

Split
    W = U diag(s) V^T; k = the number of eigenvalues :math:`s_i^2/n` above the BEMA edge :math:`\hat\lambda_+`
    (:func:`theory.bema`); S = the rank-k part :math:`\sum_{i\le k} s_i u_i v_i^T`, R = W - S.

Statistics (all scale invariant, so the null depends only on N, M and k; computed on the orientation
A = W or W^T with p = min(N, M) rows, n = max(N, M) columns; eigenvalues :math:`\lambda = \mathrm{eig}(AA^T)/n`,
ascending)

``mp_ks``
    Kolmogorov distance between the bulk and :math:`MP(p/n, \hat\sigma^2)` (BEMA's :math:`\hat\sigma^2`),
    evaluated at the p - k bulk eigenvalues: :math:`D = \max_{i \le p-k} \max(i/p - F_i, F_i - (i-1)/p)`,
    :math:`F_i = F_{MP}(\lambda_{(i)})`. Large is bad; p-value from the simulated null.
``tw_edge``
    The largest bulk eigenvalue :math:`\lambda_{(p-k)}` against Tracy-Widom. The split puts it below
    :math:`\hat\lambda_+`, so the null law is TW conditioned on that; the reported statistic is
    :math:`u = F(\lambda_{(p-k)}) / F(\hat\lambda_+)` with F from :func:`theory.spike_pvalue` (Johnstone's
    centring, :math:`\hat\sigma^2`, a (p - k) x (n - k) bulk); the two-sided p-value
    (an edge far below the law, a compressed bulk, is rejected too) is taken from the simulated null of
    :math:`\lambda_{(p-k)}/\hat\sigma^2` conditioned the same way, because plugging BEMA's
    :math:`\hat\sigma^2` (biased low by O(1/p)) into the TW law made the closed form reject 9% at level 5%
    on 60 x 150 planted matrices.
``row_var`` / ``col_var``
    Homogeneity of variance: the squared coefficient of variation of the mean squares of R's rows (output
    units) / columns (inputs), :math:`\mathrm{Var}(v)/\bar v^2`. Large is bad.
``kurtosis``
    Excess kurtosis :math:`m_4/m_2^2 - 3` of R's entries (0 for Gaussian entries); two-sided via its absolute value.
``deloc_out`` / ``deloc_in``
    Delocalisation of R's bulk singular vectors: :math:`\max_{j,i} |u_{ij}| \sqrt{d}` over the p - k bulk
    left (output side, dimension N) / right (input side, M) vectors; a Haar vector has
    :math:`\max_i|u_i|\sqrt d \approx \sqrt{2\log d}`. Large is bad.

:func:`datapath_test` tests independence from the data: for layer inputs :math:`\nu(s)`, the Gaussian
prediction is :math:`\|R\nu\|_\infty \le \sqrt{2\sigma^2\log(2N)}\,\|\nu\|` (papers.md 1.5, key lemma); the
statistic is the mean over inputs of :math:`\|R\nu\|_\infty / (\hat\sigma\|\nu\|)`, whose exact null (R Gaussian
and independent of the :math:`\nu`'s) is :math:`\max_i|Z_i|` with Z having the inputs' cosine Gram matrix as
covariance across inputs.

Simulated p-values are :math:`(1 + \#\{T_{null} \ge T\}) / (B + 1)` (valid at every B; Davison and
Hinkley 1997, eq. 4.11). References: Ke, Ma and Lin (2023) for BEMA; Johnstone (2001) for the edge;
Bai and Silverstein (2010) for MP; Bloemendal, Knowles, Yau and Yin (2016) for delocalisation of sample
covariance eigenvectors.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .bema import bema_window, tw_quantile
from .edge import spike_pvalue
from .marchenko_pastur import MarchenkoPastur

__all__ = ["STATISTICS", "Split", "split_at_edge", "bema_sigma2_batch", "residual_statistics", "null_statistics",
           "HypothesisResult", "check_hypotheses", "tw_edge_pvalue", "datapath_statistic", "datapath_test",
           "DatapathResult", "empirical_pvalue"]

#: statistic -> (description, two_sided)
STATISTICS = {
    "mp_ks": "bulk spectrum vs MP: Kolmogorov distance at the p-k bulk eigenvalues",
    "tw_edge": "largest bulk eigenvalue vs Tracy-Widom (conditioned on lying below the BEMA edge), two-sided",
    "row_var": "homogeneity of variance across rows (output units): CV^2 of row mean squares",
    "col_var": "homogeneity of variance across columns (inputs): CV^2 of column mean squares",
    "kurtosis": "entries vs Gaussian: |excess kurtosis|",
    "deloc_out": "delocalisation of R's bulk left singular vectors: max |u_i| sqrt(N)",
    "deloc_in": "delocalisation of R's bulk right singular vectors: max |v_i| sqrt(M)",
}
_SIMULATED = ("mp_ks", "row_var", "col_var", "kurtosis", "deloc_out", "deloc_in")
_CHUNK_ELEMENTS = 4_000_000


def _matrix(W, name: str = "W") -> np.ndarray:
    A = np.asarray(W.detach().cpu().double().numpy() if hasattr(W, "detach") else W, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-dimensional matrix, got shape {A.shape}")
    if min(A.shape) < 4:
        raise ValueError(f"{name} must have at least 4 rows and 4 columns for the hypothesis tests, got {A.shape}")
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or inf")
    return A


def bema_sigma2_batch(lam, p: int, n: int, alpha: float = 0.2) -> np.ndarray:
    r"""BEMA's :math:`\hat\sigma^2 = \sum_k q_k\lambda_{(k)} / \sum_k q_k^2` for a batch of ascending spectra.

    ``lam`` has shape (..., p), ascending; equals ``theory.bema(lam_b, p, n, alpha).sigma2`` for each row b
    (tested), without a Python loop.
    """
    k_lo, k_hi = bema_window(p, alpha)
    q = _quantiles(p, n, k_lo, k_hi)
    return np.asarray(lam)[..., k_lo - 1:k_hi] @ q / float(q @ q)


@functools.lru_cache(maxsize=256)
def _quantiles(p: int, n: int, k_lo: int, k_hi: int) -> np.ndarray:
    k = np.arange(k_lo, k_hi + 1, dtype=np.float64)
    return MarchenkoPastur(ratio=p / n, sigma2=1.0).ppf(k / p)


@dataclass(frozen=True, eq=False)
class Split:
    """W = S + R at the BEMA edge. ``S``, ``R`` have W's shape; ``k`` spikes; BEMA's sigma2 and edge."""

    S: np.ndarray = field(repr=False)
    R: np.ndarray = field(repr=False)
    k: int
    sigma2: float
    lambda_plus: float
    p: int
    n: int
    eigenvalues: np.ndarray = field(repr=False)
    U: np.ndarray = field(repr=False)      # (N, k) left spike directions
    V: np.ndarray = field(repr=False)      # (M, k) right spike directions


def split_at_edge(W, alpha: float = 0.2, beta: float = 0.1) -> Split:
    r"""Split W into its spikes' rank-k part S and the rest R = W - S (k = BEMA's spike count).

    Parameters
    ----------
    W : array_like or torch tensor, shape (N, M), N, M >= 4
    alpha, beta : BEMA window trimming and Tracy-Widom level (:func:`theory.bema`).
    """
    from .bema import bema

    A = _matrix(W)
    N, M = A.shape
    p, n = min(N, M), max(N, M)
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    lam = np.sort(s**2 / n)
    fit = bema(lam, p=p, n=n, alpha=alpha, beta=beta)
    k = int(fit.n_spikes)
    S = (U[:, :k] * s[:k]) @ Vt[:k]
    return Split(S=S, R=A - S, k=k, sigma2=float(fit.sigma2), lambda_plus=float(fit.lambda_plus), p=p, n=n,
                 eigenvalues=lam, U=U[:, :k], V=Vt[:k].T)


def residual_statistics(R, spikes=(), alpha: float = 0.2, transposed: bool = False) -> dict[str, np.ndarray]:
    """Every statistic of :data:`STATISTICS` for a batch of residual matrices R (the spikes already removed).

    Parameters
    ----------
    R : ndarray, shape (B, p, n) with p <= n
        Residuals oriented with the smaller side first; each has rank <= p - k.
    spikes : sequence of k floats
        The removed eigenvalues (s_i^2 / n, in the units of R's spectrum): they only fill the top k ranks of the
        spectrum that BEMA's sigma2 is matched on, so that the window holds the same ranks as for W.
    transposed : bool
        True when W = A^T (W had more rows than columns): ``row_var`` / ``deloc_out`` always refer to W's rows.

    Returns
    -------
    dict of ndarray (B,): the statistics, plus ``sigma2`` (BEMA) and ``edge_max`` (largest bulk eigenvalue).
    """
    R = np.asarray(R, dtype=np.float64)
    B, p, n = R.shape
    k = len(spikes)
    if not 0 <= k <= p - 2:
        raise ValueError(f"the number of spikes must lie in [0, p - 2] = [0, {p - 2}], got {k}")
    lam, vec = np.linalg.eigh(R @ R.transpose(0, 2, 1) / n)           # ascending; k (near) zeros first
    nb = p - k
    bulk, Ub = lam[:, k:], vec[:, :, k:]
    full = np.concatenate([bulk, np.broadcast_to(np.sort(np.asarray(spikes, float)), (B, k))], axis=1)
    sigma2 = bema_sigma2_batch(np.sort(full, axis=1), p, n, alpha)
    F = MarchenkoPastur(ratio=p / n, sigma2=1.0).cdf(np.clip(bulk, 0.0, None) / sigma2[:, None])
    i = np.arange(1, nb + 1)
    ks = np.maximum(i / p - F, F - (i - 1) / p).max(axis=1)
    r2 = R * R
    rows, cols = r2.mean(axis=2), r2.mean(axis=1)                     # small-side / large-side mean squares
    disp = lambda v: v.var(axis=1) / v.mean(axis=1) ** 2  # noqa: E731
    m2, m4 = r2.mean(axis=(1, 2)), (r2 * r2).mean(axis=(1, 2))
    s_b = np.sqrt(np.clip(bulk * n, 0.0, None))
    Vb = R.transpose(0, 2, 1) @ Ub                                    # (B, n, nb), columns s_j v_j
    good = s_b > 1e-9 * max(float(s_b.max()), 1e-300)
    Vb = np.where(good[:, None, :], Vb / np.where(good, s_b, 1.0)[:, None, :], 0.0)
    small = np.abs(Ub).max(axis=(1, 2)) * math.sqrt(p)
    large = np.abs(Vb).max(axis=(1, 2)) * math.sqrt(n)
    out = dict(mp_ks=ks, kurtosis=np.abs(m4 / m2**2 - 3.0), sigma2=sigma2, edge_max=bulk[:, -1],
               edge_ratio=bulk[:, -1] / sigma2)
    if transposed:   # W = A^T: W's rows are A's columns
        out.update(row_var=disp(cols), col_var=disp(rows), deloc_out=large, deloc_in=small)
    else:
        out.update(row_var=disp(rows), col_var=disp(cols), deloc_out=small, deloc_in=large)
    return out


def _project_out(G: np.ndarray, Uk: np.ndarray, Vk: np.ndarray) -> np.ndarray:
    """(I - Uk Uk^T) G (I - Vk Vk^T) for a batch G (B, p, n)."""
    if Uk.shape[1] == 0:
        return G
    G = G - Uk @ (Uk.T @ G)
    return G - (G @ Vk) @ Vk.T


def null_statistics(Uk, Vk, spikes, draws: int = 200, seed: int = 0, alpha: float = 0.2,
                    transposed: bool = False) -> dict[str, np.ndarray]:
    r""":func:`residual_statistics` of ``draws`` null residuals :math:`(I - U_kU_k^T) G (I - V_kV_k^T)`.

    G is p x n standard Gaussian (seeded per shape: every layer of one shape sees the same draws) and
    :math:`U_k` (p x k), :math:`V_k` (n x k) are the observed spike directions: the null is "W = S + G with
    G i.i.d. Gaussian, independent of S", conditioned on S's singular subspaces (for spikes well above the
    edge the split removes exactly those directions). ``spikes`` are the spikes' eigenvalues in units of the
    noise variance (the null has sigma^2 = 1).
    """
    Uk, Vk = np.asarray(Uk, float), np.asarray(Vk, float)
    p, n = Uk.shape[0], Vk.shape[0]
    rng = np.random.default_rng([seed, p, n])
    chunk = max(1, _CHUNK_ELEMENTS // (p * n))
    parts = []
    for start in range(0, draws, chunk):
        G = rng.standard_normal((min(chunk, draws - start), p, n))
        parts.append(residual_statistics(_project_out(G, Uk, Vk), spikes, alpha, transposed))
    return {key: np.concatenate([d[key] for d in parts]) for key in parts[0]}


def empirical_pvalue(observed: float, null: np.ndarray) -> float:
    """(1 + #{null >= observed}) / (B + 1): the upper-tail Monte-Carlo p-value."""
    null = np.asarray(null)
    return float((1 + np.count_nonzero(null >= observed)) / (null.size + 1))


def tw_edge_pvalue(edge_max: float, lambda_plus: float, p: int, n: int, sigma2: float, k: int = 0
                   ) -> tuple[float, float]:
    r"""(two-sided p-value, u) of the largest bulk eigenvalue under TW_1 conditioned on lying below the edge.

    With k strong spikes removed, the bulk is that of a (p - k) x (n - k) noise matrix (its spectrum taken
    as s^2 / n), so :func:`theory.spike_pvalue` is applied with (p - k, n - k) to
    :math:`\lambda\,n/(n-k)`. :math:`u = F(x)/F(\hat\lambda_+)` with F = 1 - spike_pvalue; p-value
    :math:`2\min(u, 1-u)`.
    """
    scale = n / (n - k)
    sf_x, sf_edge = (float(v) for v in spike_pvalue(np.array([edge_max, lambda_plus]) * scale, p - k, n - k,
                                                    sigma2))
    u = min(max((1.0 - sf_x) / max(1.0 - sf_edge, 1e-300), 0.0), 1.0)
    return 2.0 * min(u, 1.0 - u), u


@dataclass(frozen=True)
class HypothesisResult:
    """Observed statistics, their p-values, and the split's numbers for one matrix."""

    shape: tuple
    k: int
    sigma2: float
    lambda_plus: float
    statistics: dict
    pvalues: dict
    null_means: dict
    draws: int
    seed: int


def check_hypotheses(W, alpha: float = 0.2, beta: float = 0.1, draws: int = 200, seed: int = 0,
                    split: Split | None = None) -> HypothesisResult:
    """Split W at the BEMA edge and test R's hypotheses (module docstring); p-values from ``draws`` null matrices.

    Raises ValueError when W has fewer than 4 rows or columns or BEMA leaves fewer than 2 bulk values.
    """
    A = _matrix(W)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 10:
        raise ValueError(f"draws must be an integer >= 10, got {draws!r}")
    sp = split if split is not None else split_at_edge(A, alpha, beta)
    N, M = A.shape
    transposed = N > M
    p, n = sp.p, sp.n
    if sp.k > p - 2:
        raise ValueError(f"BEMA put {sp.k} of {p} singular values above the edge; fewer than 2 bulk values to test")
    Ak, Rk = (A.T, sp.R.T) if transposed else (A, sp.R)
    Uk, Vk = (sp.V, sp.U) if transposed else (sp.U, sp.V)
    spikes = sp.eigenvalues[p - sp.k:]
    obs = {key: float(v[0]) for key, v in residual_statistics(Rk[None], spikes, alpha, transposed).items()}
    null = null_statistics(Uk, Vk, spikes / sp.sigma2, int(draws), int(seed), float(alpha), transposed)
    pv = {key: empirical_pvalue(obs[key], null[key]) for key in _SIMULATED}
    # TW: the closed form (spike_pvalue) is reported as the statistic u; the p-value comes from the simulated
    # null conditioned like the observation (largest bulk eigenvalue / sigma2 below the BEMA edge / sigma2),
    # which also absorbs BEMA's finite-size sigma2 bias (theory.bema docstring).
    _, u = tw_edge_pvalue(obs["edge_max"], sp.lambda_plus, p, n, sp.sigma2, sp.k)
    ok = null["edge_ratio"][null["edge_ratio"] <= sp.lambda_plus / sp.sigma2]
    lo = (1 + np.count_nonzero(ok <= obs["edge_ratio"])) / (ok.size + 1)
    hi = (1 + np.count_nonzero(ok >= obs["edge_ratio"])) / (ok.size + 1)
    pv["tw_edge"] = float(min(1.0, 2.0 * min(lo, hi)))
    obs["tw_edge"] = u
    means = {key: float(np.mean(null[key])) for key in _SIMULATED}
    means["tw_edge"] = 0.5
    return HypothesisResult(shape=(N, M), k=sp.k, sigma2=sp.sigma2, lambda_plus=sp.lambda_plus,
                            statistics={key: obs[key] for key in STATISTICS}, pvalues=pv, null_means=means,
                            draws=int(draws), seed=int(seed))


# --------------------------------------------------------------------------- data path
def datapath_statistic(R, nu, sigma2: float) -> np.ndarray:
    r""":math:`m(s) = \|R\nu(s)\|_\infty / (\hat\sigma\|\nu(s)\|)` for every row of ``nu`` (shape (S, M)), R (N, M)."""
    R = np.asarray(R, dtype=np.float64)
    nu = np.asarray(nu, dtype=np.float64)
    if nu.ndim != 2 or nu.shape[1] != R.shape[1]:
        raise ValueError(f"nu must have shape (S, {R.shape[1]}), got {nu.shape}")
    norms = np.linalg.norm(nu, axis=1)
    if not (norms > 0).all():
        raise ValueError("nu holds a zero input vector; drop it first")
    return np.abs(nu @ R.T).max(axis=1) / (math.sqrt(sigma2) * norms)


@dataclass(frozen=True)
class DatapathResult:
    """Mean normalised max and its p-value; the fraction of inputs above the Gaussian prediction sqrt(2 log 2N)."""

    statistic: float
    pvalue: float
    null_mean: float
    prediction: float
    frac_above: float
    max_ratio: float
    inputs: int
    draws: int


def datapath_test(R, nu, sigma2: float, draws: int = 200, seed: int = 0) -> DatapathResult:
    r"""Test that R acts on the layer's real inputs like a Gaussian matrix independent of them.

    Under the null (R i.i.d. :math:`N(0,\sigma^2)`, independent of the inputs), for each output unit i the
    vector :math:`((R\nu_s)_i / (\sigma\|\nu_s\|))_s` is :math:`N(0, C)` with C the cosine Gram matrix of the
    inputs, independently over i; the null is simulated exactly from that (B x N x S normals), so it costs
    nothing in the input dimension. Statistic: the mean over inputs of :math:`m(s)`
    (:func:`datapath_statistic`); one-sided (an R that amplifies the data is the violation).
    """
    R = np.asarray(R, dtype=np.float64)
    nu = np.asarray(nu, dtype=np.float64)
    m = datapath_statistic(R, nu, sigma2)
    N, S = R.shape[0], nu.shape[0]
    u = nu / np.linalg.norm(nu, axis=1, keepdims=True)
    w, Q = np.linalg.eigh(u @ u.T)
    keep = w > 1e-10 * w.max()
    L = Q[:, keep] * np.sqrt(w[keep])                                  # C = L L^T, (S, r)
    rng = np.random.default_rng([seed, N, S])
    chunk = max(1, _CHUNK_ELEMENTS // (N * S))
    null = []
    for start in range(0, draws, chunk):
        Z = rng.standard_normal((min(chunk, draws - start), N, L.shape[1])) @ L.T   # (b, N, S)
        null.append(np.abs(Z).max(axis=1).mean(axis=1))
    null = np.concatenate(null)
    pred = math.sqrt(2.0 * math.log(2 * N))
    return DatapathResult(statistic=float(m.mean()), pvalue=empirical_pvalue(float(m.mean()), null),
                          null_mean=float(null.mean()), prediction=pred, frac_above=float(np.mean(m > pred)),
                          max_ratio=float(m.max() / pred), inputs=S, draws=int(draws))
