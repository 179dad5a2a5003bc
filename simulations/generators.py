r"""Deformed random matrices W = S + R: noise R, signal S, on CPU or CUDA, batched and seeded.

Conventions
-----------
* Shapes are (N, M) = (rows, columns); a leading ``batch`` tuple gives a stack of independent draws.
* Noise has i.i.d. entries of mean 0 and variance ``g / N`` with N = the number of rows, as in
  the seed papers' theorems (W_2 = S_2 + R_2, R_2 ~ N(0, g/N)); then the singular-value bulk edge
  is sqrt(g) (1 + sqrt(M / N)) for M <= N.
* Every draw takes ``seed`` (an int) or a ``torch.Generator``; nothing reads global random state.
* ``device="auto"`` means CUDA when available, else CPU.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

NOISE_LAWS = ("gaussian", "rademacher", "student_t", "sparse")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed`` (a Generator is returned unchanged)."""
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None:
        raise ValueError("seed must be an int or a torch.Generator (nothing reads global random state)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def _shape(name: str, shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(v) for v in shape)
    if any(v < 1 for v in shape):
        raise ValueError(f"{name} must contain positive sizes, got {shape}")
    return shape


def noise(
    shape: Sequence[int],
    law: str = "gaussian",
    g: float = 1.0,
    *,
    batch: Sequence[int] = (),
    seed: int | torch.Generator | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float64,
    df: float = 3.0,
    density: float = 0.1,
) -> torch.Tensor:
    """I.i.d. noise of mean 0 and variance g / N, shape ``batch + (N, M)``.

    Laws: ``"gaussian"``; ``"rademacher"`` (+-1); ``"student_t"`` with ``df`` > 2 degrees of
    freedom, rescaled to unit variance (heavy tails: the MP law still holds for df > 2 but the
    edge fluctuations are no longer Tracy-Widom for df < 4); ``"sparse"``: Bernoulli(``density``)
    times Gaussian / sqrt(density).
    """
    if len(shape) != 2:
        raise ValueError(f"shape must be (N, M), got {tuple(shape)}")
    N, M = _shape("shape", shape)
    batch = _shape("batch", batch) if len(batch) else ()
    if not (isinstance(g, (int, float)) and math.isfinite(g) and g >= 0):
        raise ValueError(f"g must be a finite number >= 0, got {g!r}")
    dev = resolve_device(device)
    gen = make_generator(seed, dev)
    full = batch + (N, M)
    if law == "gaussian":
        x = torch.randn(full, generator=gen, device=dev, dtype=dtype)
    elif law == "rademacher":
        x = torch.randint(0, 2, full, generator=gen, device=dev).to(dtype) * 2 - 1
    elif law == "student_t":
        if not df > 2:
            raise ValueError(f"df must be > 2 for a finite variance, got {df!r}")
        z = torch.randn(full, generator=gen, device=dev, dtype=dtype)
        # chi-square with df degrees of freedom = 2 * Gamma(df/2, 1)
        chi2 = 2.0 * torch._standard_gamma(torch.full(full, df / 2.0, device=dev, dtype=dtype), generator=gen)
        x = z / torch.sqrt(chi2 / df) * math.sqrt((df - 2.0) / df)
    elif law == "sparse":
        if not 0 < density <= 1:
            raise ValueError(f"density must lie in (0, 1], got {density!r}")
        mask = torch.rand(full, generator=gen, device=dev, dtype=dtype) < density
        x = torch.randn(full, generator=gen, device=dev, dtype=dtype) * mask / math.sqrt(density)
    else:
        raise ValueError(f"law must be one of {NOISE_LAWS}, got {law!r}")
    return x * math.sqrt(g / N)


def haar_orthonormal(n: int, k: int, *, seed: int | torch.Generator | None = 0,
                     device: str | torch.device = "auto", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """n x k matrix with orthonormal columns, Haar distributed (QR of a Gaussian, signs fixed)."""
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    dev = resolve_device(device)
    gen = make_generator(seed, dev)
    q, r = torch.linalg.qr(torch.randn(n, k, generator=gen, device=dev, dtype=dtype))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


def low_rank(
    shape: Sequence[int],
    singular_values: Sequence[float] | torch.Tensor,
    *,
    u: torch.Tensor | None = None,
    v: torch.Tensor | None = None,
    seed: int | torch.Generator | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """S = U diag(singular_values) V^T of shape (N, M), with Haar-random U, V unless given."""
    N, M = _shape("shape", shape)
    dev = resolve_device(device)
    sv = torch.as_tensor(singular_values, dtype=dtype, device=dev).reshape(-1)
    k = sv.numel()
    if k < 1 or k > min(N, M):
        raise ValueError(f"need 1 <= len(singular_values) <= min(N, M) = {min(N, M)}, got {k}")
    if torch.any(sv < 0) or not torch.all(torch.isfinite(sv)):
        raise ValueError("singular_values must be finite and >= 0")
    gen = make_generator(seed, dev)
    U = haar_orthonormal(N, k, seed=gen, device=dev, dtype=dtype) if u is None else u.to(dev, dtype)
    V = haar_orthonormal(M, k, seed=gen, device=dev, dtype=dtype) if v is None else v.to(dev, dtype)
    if U.shape != (N, k) or V.shape != (M, k):
        raise ValueError(f"u must be ({N}, {k}) and v ({M}, {k}), got {tuple(U.shape)} and {tuple(V.shape)}")
    return (U * sv) @ V.T


def paper_signal(shape: Sequence[int], *, device: str | torch.device = "auto",
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The seed paper's deterministic example, with 1-based indices i = 1..N, j = 1..M:

    S[i, j] = tan(pi/2 + 1/(j+1)) + cos(i) log(i + j + 1) + sin(j) cos(i/j).

    (1-based so that i/j is defined; tan(pi/2 + x) = -cot(x), so the first term is about -(j + 1).)
    """
    N, M = _shape("shape", shape)
    dev = resolve_device(device)
    i = torch.arange(1, N + 1, device=dev, dtype=dtype).unsqueeze(1)
    j = torch.arange(1, M + 1, device=dev, dtype=dtype).unsqueeze(0)
    return -1.0 / torch.tan(1.0 / (j + 1)) + torch.cos(i) * torch.log(i + j + 1) + torch.sin(j) * torch.cos(i / j)


def deformed(S: torch.Tensor, law: str = "gaussian", g: float = 1.0, *, batch: Sequence[int] = (),
             seed: int | torch.Generator | None = 0, **noise_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, R) with W = S + R, R = noise(S.shape, law, g) on S's device and dtype (broadcast over batch)."""
    R = noise(tuple(S.shape[-2:]), law, g, batch=batch, seed=seed, device=S.device, dtype=S.dtype, **noise_kwargs)
    return S + R, R
