r"""Executable checks of the network theorems (issue 3, checks 4-6) for the three-layer model

.. math:: X(s) = f(W_3\, f(W_2\, f(W_1 s))), \qquad f = |\cdot| \text{ or ReLU, no biases},

with :math:`W_2 = S_2 + R_2`, :math:`R_2` i.i.d. of variance g/N (``../shared/spec/papers.md`` 1.5, 2.3):

* ``check_key_lemma``: :math:`P(\|X(s;S_2) - X(s;W_2)\|_\infty \le \tau_N(s)) \ge 1 - 1/N` with
  :math:`\tau_N(s) = 2\sqrt2\,\|W_3\|_\infty \|W_1 s\|_2 \sqrt{\log(2N)/N}`, and the accuracy corollary
  :math:`|acc_W - acc_S| \le \#\{s: |\delta X(s)| \le 2\tau_N(s)\}/|T|`;
* ``check_loss_theorem``: :math:`L(S_2) \le L(W_2) - \lambda\|R_2\|_F^2 + (4\sqrt2/|T|)\sum_s a(N,s) + 2\lambda\eta`
  and its monotone version along :math:`W_2(\vartheta) = S_2 + \vartheta R_2`;
* ``check_randomness_decay``: training with L2 regularisation shrinks the random part of :math:`W_2`
  (BEMA noise scale :math:`\sigma^2` at the last epoch below its value at initialisation).

:math:`\|W_3\|_\infty` is the max absolute row sum and :math:`a(N,s) = \tau_N(s) / (2\sqrt2)`.

Every check returns a list of :class:`theory.selfcheck.CheckRecord`; records with
``regime="outside"`` run the statement where a hypothesis is violated on purpose (heavy-tailed or
input-aligned R_2, g > 1, S_2 not low rank, no regularisation) and say in ``details`` what happened.
The helpers the checks are built from (``forward``, ``tau_n``, ``planted_net``, ``key_lemma_stats``,
``loss_theorem_stats``, ``randomness_decay_table``) are public, with the knobs a test needs to build
an input that violates a statement (``tau_scale``, ``r2_coef``, a negative ``lam``, ``max_steps=0``).

The planted model (default)
---------------------------
C classes of inputs :math:`s = m\,q_y + \xi` (``input_strength`` m, q_c orthonormal in R^d,
:math:`\xi \sim N(0, I_d)`); the N hidden units are split into C blocks :math:`B_c`; row j of W_1 is
:math:`(q_{c(j)} + \text{noise}) / \sqrt N`; :math:`S_2 = \sigma \sum_c b_c b_c^T` with
:math:`b_c = 1_{B_c}/\sqrt{|B_c|}` (rank C; :math:`\|S_2\|_F = \sigma\sqrt C` does not grow with N, so
:math:`B_N = o(\sqrt N)`); row c of W_3 is :math:`1_{B_c}/|B_c|`, so :math:`\|W_3\|_\infty = 1`. Class c's
logit reads block c: the margins are of the order of :math:`\tau_N`, so the accuracy corollary is not
vacuous (7 of 64 inputs within :math:`2\tau_N` of a tie at N = 400). ``random_net`` is the unstructured
alternative (Gaussian W_1, W_3 at the usual 1/fan_in variance, Haar low-rank S_2): there the
margins are far below :math:`2\tau_N` (:math:`\tau_N` is ~170 times the actual logit change at N = 400),
so the corollary is vacuous and only the lemma is checked on it.
"""
from __future__ import annotations

import os

import contextlib
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from theory.selfcheck import CheckRecord, make_record

from .generators import haar_orthonormal, low_rank, make_generator, noise, resolve_device

__all__ = [
    "ThreeLayerNet", "planted_net", "random_net", "forward", "outer_scale", "tau_n", "top2_margin",
    "cross_entropy", "regularised_loss", "aligned_noise", "key_lemma_stats", "loss_theorem_stats",
    "lemma_record", "corollary_record", "loss_records",
    "randomness_decay_table", "train_three_layer", "decay_record", "teacher_data", "mnist_data",
    "check_key_lemma", "check_loss_theorem", "check_randomness_decay", "NETWORK_CHECKS",
]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": torch.relu, "abs": torch.abs}
SQRT2 = math.sqrt(2.0)


def _act(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def _binomial_tol(p: float, n: int, k: float = 4.0) -> float:
    """k standard deviations of a frequency estimated from n Bernoulli(p) trials."""
    return k * math.sqrt(max(p * (1.0 - p), 0.0) / max(n, 1))


def _g(x: float) -> str:
    return f"{x:.3g}"


# --------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class ThreeLayerNet:
    """W1 (N, d), W3 (C, N), the signal S2 (N, N), a fixed input set T (|T|, d) with labels, and f."""

    W1: torch.Tensor
    W3: torch.Tensor
    S2: torch.Tensor
    inputs: torch.Tensor
    labels: torch.Tensor
    activation: str = "relu"

    @property
    def N(self) -> int:
        return int(self.S2.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.inputs.shape[0])


def forward(W1: torch.Tensor, W2: torch.Tensor, W3: torch.Tensor, inputs: torch.Tensor,
            activation: str = "relu") -> torch.Tensor:
    """Logits X(s) = f(W3 f(W2 f(W1 s))) for every row s of ``inputs``: shape (..., |T|, C).

    ``W2`` may be batched, (..., N, N); the leading dimensions carry through.
    """
    f = _act(activation)
    h1 = f(inputs @ W1.T)                       # (|T|, N)
    h2 = f(h1 @ W2.transpose(-2, -1))           # (..., |T|, N)
    return f(h2 @ W3.T)                         # (..., |T|, C)


def outer_scale(W1: torch.Tensor, W3: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """a(N, s) = ||W3||_inf ||W1 s||_2 sqrt(log(2N)/N) for every input s (||.||_inf = max absolute row sum)."""
    N = W1.shape[0]
    w3_inf = W3.abs().sum(dim=1).max()
    return w3_inf * torch.linalg.vector_norm(inputs @ W1.T, dim=-1) * math.sqrt(math.log(2 * N) / N)


def tau_n(W1: torch.Tensor, W3: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """tau_N(s) = 2 sqrt2 a(N, s), the key lemma's bound on the logit change, for every input s."""
    return 2.0 * SQRT2 * outer_scale(W1, W3, inputs)


def top2_margin(X: torch.Tensor) -> torch.Tensor:
    """Top logit minus the runner-up, over the last dimension."""
    top = torch.topk(X, 2, dim=-1).values
    return top[..., 0] - top[..., 1]


def cross_entropy(X: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of softmax(X) over the |T| inputs; X of shape (..., |T|, C) -> (...)."""
    logp = torch.log_softmax(X, dim=-1)
    idx = labels.reshape((1,) * (X.dim() - 2) + (-1, 1)).expand(X.shape[:-1] + (1,))
    return -logp.gather(-1, idx).squeeze(-1).mean(dim=-1)


def regularised_loss(net: ThreeLayerNet, W2: torch.Tensor, lam: float) -> torch.Tensor:
    """L(W2) = CE + lam ||W2||_F^2 (W1, W3 fixed: their penalty is a constant, dropped), batched over W2."""
    X = forward(net.W1, W2, net.W3, net.inputs, net.activation)
    return cross_entropy(X, net.labels) + lam * (W2 ** 2).sum(dim=(-2, -1))


def planted_net(N: int = 400, d: int = 64, n_classes: int = 10, n_inputs: int = 64, *, signal: float = 8.0,
                input_strength: float = 8.0, activation: str = "relu", seed: int | torch.Generator = 0,
                device: str | torch.device = "auto", dtype: torch.dtype = torch.float64) -> ThreeLayerNet:
    """The planted model of the module docstring; labels are the inputs' classes (balanced)."""
    if N < n_classes or n_classes < 2 or n_classes > d:
        raise ValueError(f"need 2 <= n_classes <= min(N, d), got N={N}, d={d}, n_classes={n_classes}")
    _act(activation)
    dev = resolve_device(device)
    gen = make_generator(seed, dev)
    Q = haar_orthonormal(d, n_classes, seed=gen, device=dev, dtype=dtype)          # (d, C)
    block = torch.arange(N, device=dev) * n_classes // N                            # block of hidden unit j
    W1 = (Q.T[block] + 0.5 * torch.randn(N, d, generator=gen, device=dev, dtype=dtype) / math.sqrt(d)) / math.sqrt(N)
    onehot = torch.nn.functional.one_hot(block, n_classes).to(dtype)                 # (N, C)
    sizes = onehot.sum(dim=0)
    B = onehot / sizes.sqrt()                                                        # orthonormal b_c
    S2 = signal * B @ B.T
    W3 = (onehot / sizes).T                                                          # rows 1_{B_c}/|B_c|
    labels = torch.arange(n_inputs, device=dev) % n_classes
    inputs = input_strength * Q.T[labels] + torch.randn(n_inputs, d, generator=gen, device=dev, dtype=dtype)
    return ThreeLayerNet(W1, W3, S2, inputs, labels, activation)


def random_net(N: int = 400, d: int = 64, n_classes: int = 10, n_inputs: int = 64, *, signal: float = 4.0,
               rank: int = 5, activation: str = "relu", seed: int | torch.Generator = 0,
               device: str | torch.device = "auto", dtype: torch.dtype = torch.float64) -> ThreeLayerNet:
    """Unstructured model: W1, W3 Gaussian of variance 1/fan_in, S2 Haar low rank with ``rank`` singular
    values ``signal``, Gaussian inputs; labels = argmax X(s; S2)."""
    _act(activation)
    dev = resolve_device(device)
    gen = make_generator(seed, dev)
    W1 = torch.randn(N, d, generator=gen, device=dev, dtype=dtype) / math.sqrt(d)
    W3 = torch.randn(n_classes, N, generator=gen, device=dev, dtype=dtype) / math.sqrt(N)
    S2 = low_rank((N, N), [signal] * min(rank, N), seed=gen, device=dev, dtype=dtype)
    inputs = torch.randn(n_inputs, d, generator=gen, device=dev, dtype=dtype)
    labels = forward(W1, S2, W3, inputs, activation).argmax(dim=-1)
    return ThreeLayerNet(W1, W3, S2, inputs, labels, activation)


def aligned_noise(net: ThreeLayerNet, g: float = 1.0) -> torch.Tensor:
    """A rank-one R2 = sqrt(g N) u v^T with the Frobenius norm of a typical Gaussian draw (sqrt(g N)) but
    aligned with the data: v = the normalised mean hidden activation f(W1 s) over T, u = 1/sqrt(N).

    It violates the lemma's hypothesis that R2 is random and independent of the inputs."""
    h1 = _act(net.activation)(net.inputs @ net.W1.T).mean(dim=0)
    v = h1 / torch.linalg.vector_norm(h1)
    u = torch.full_like(v, 1.0 / math.sqrt(net.N))
    return math.sqrt(g * net.N) * torch.outer(u, v)


def _noise_chunks(N: int, draws: int, law: str, g: float, gen: torch.Generator, device, dtype, df: float):
    """Yield batches of R2 draws, (k, N, N), at most ~2e7 entries each; reproducible from the generator."""
    chunk = max(1, min(draws, int(2e7 // (N * N))))
    done = 0
    while done < draws:
        k = min(chunk, draws - done)
        yield noise((N, N), law, g, batch=(k,), seed=gen, device=device, dtype=dtype, df=df)
        done += k


# --------------------------------------------------------------------------- check 4
def key_lemma_stats(net: ThreeLayerNet, *, g: float = 1.0, law: str = "gaussian", draws: int = 200,
                    seed: int | torch.Generator = 0, tau_scale: float = 1.0, df: float = 2.5,
                    R2: torch.Tensor | None = None) -> dict:
    """Monte-Carlo of the key lemma and the accuracy corollary over ``draws`` draws of R2.

    ``tau_scale`` multiplies tau_N (a value < 1 builds a statement that is false); ``R2`` (N, N) or
    (k, N, N) replaces the random draws by given matrices. Returns a dict: ``fail`` (pairs (draw, s)
    with ||X(s;S2) - X(s;W2)||_inf > tau), ``pairs``, ``ratio_median`` (median tau / change),
    ``change_max_over_tau``, ``acc_S``, ``acc_W`` (array per draw), ``uncertain`` (#{s: margin_S <= 2 tau}),
    ``draws``.
    """
    dev, dtype = net.S2.device, net.S2.dtype
    tau = tau_scale * tau_n(net.W1, net.W3, net.inputs)                    # (|T|,)
    X_S = forward(net.W1, net.S2, net.W3, net.inputs, net.activation)     # (|T|, C)
    pred_S = X_S.argmax(dim=-1)
    acc_S = float((pred_S == net.labels).double().mean())
    uncertain = int((top2_margin(X_S) <= 2 * tau).sum())
    if R2 is not None:
        batches = [R2.to(dev, dtype).reshape((-1,) + tuple(net.S2.shape))]
    else:
        gen = make_generator(seed, dev)
        batches = _noise_chunks(net.N, draws, law, g, gen, dev, dtype, df)
    fail, pairs, ratios, worst, acc_W = 0, 0, [], 0.0, []
    for R in batches:
        X_W = forward(net.W1, net.S2 + R, net.W3, net.inputs, net.activation)  # (k, |T|, C)
        change = (X_W - X_S).abs().amax(dim=-1)                                # (k, |T|)
        fail += int((change > tau).sum())
        pairs += change.numel()
        ratios.append((tau / change).flatten().cpu())
        worst = max(worst, float((change / tau).max()))
        acc_W.append(((X_W.argmax(dim=-1) == net.labels).double().mean(dim=-1)).cpu())
    return dict(fail=fail, pairs=pairs, ratio_median=float(torch.cat(ratios).median()),
                change_max_over_tau=worst, acc_S=acc_S, acc_W=torch.cat(acc_W).numpy(), uncertain=uncertain,
                draws=pairs // net.n_inputs)


def lemma_record(name: str, net: ThreeLayerNet, st: dict, seed: int | None, label: str, regime: str = "within",
                 extra: str = "") -> CheckRecord:
    """The key-lemma record of :func:`key_lemma_stats`' output: failure frequency <= 1/N + 4 binomial sigma."""
    p = 1.0 / net.N
    bound = p + _binomial_tol(p, st["pairs"])
    freq = st["fail"] / st["pairs"]
    return make_record(
        name, f"key lemma ({label}): P(||X(s;S2) - X(s;W2)||_inf > tau_N(s)) <= 1/N; measured: the failure "
        f"frequency over (draw, s) pairs, bound 1/N + 4 binomial sigma", bound, freq, st["pairs"], seed,
        f"N={net.N}, |T|={net.n_inputs}, draws={st['draws']}, failures {st['fail']}/{st['pairs']}, slack median "
        f"tau/change {_g(st['ratio_median'])}, max change/tau {_g(st['change_max_over_tau'])}{extra}", regime)


def corollary_record(name: str, net: ThreeLayerNet, st: dict, seed: int | None, label: str,
                     regime: str = "within", extra: str = "") -> CheckRecord:
    """The accuracy-corollary record of :func:`key_lemma_stats`' output (must hold on every draw)."""
    dacc = np.abs(st["acc_W"] - st["acc_S"])
    bound = st["uncertain"] / net.n_inputs
    return make_record(
        name, f"accuracy corollary ({label}): max over draws of |acc_W - acc_S| <= #{{s: |dX(s)| <= 2 tau_N(s)}}/|T|"
        f" with dX the top-minus-runner-up margin of X(s;S2) (held on every draw, stricter than the theorem's "
        f"probability 1 - |T|/N)", bound, float(dacc.max()), st["draws"], seed,
        f"N={net.N}, |T|={net.n_inputs}, acc_S={_g(st['acc_S'])}, mean acc_W={_g(float(st['acc_W'].mean()))}, "
        f"draws with a change {int((dacc > 0).sum())}/{st['draws']}, inputs within 2 tau of a tie "
        f"{st['uncertain']}/{net.n_inputs}{extra}", regime)


def check_key_lemma(quick: bool = True, seed: int = 0, device: str = "auto") -> list[CheckRecord]:
    """Check 4: the key lemma (f = ReLU and |.| on the planted net, ReLU on the random net) and the accuracy
    corollary (planted net), plus runs outside the hypotheses: Student-t R2 (df 2.5), g = 16 > 1, and a
    rank-one R2 aligned with the inputs."""
    from tqdm.auto import tqdm

    N, n_in, draws = (400, 64, 100) if quick else (2000, 256, 1000)
    dev = resolve_device(device)
    # (record tag, regime, activation, net builder, key_lemma_stats options, note on the violated hypothesis)
    jobs = [
        ("relu", "within", "relu", planted_net, {}, ""),
        ("abs", "within", "abs", planted_net, {}, ""),
        ("relu,random_net", "within", "relu", random_net, {}, ""),
        ("relu,student_t", "outside", "relu", planted_net, dict(law="student_t", df=2.5),
         "; Student-t R2, df 2.5: heavy tails (variance finite, fourth moment not), no Gaussian tail bound"),
        ("relu,g=16", "outside", "relu", planted_net, dict(g=16.0), "; g=16 > 1: the lemma's constant assumes g <= 1"),
        ("relu,aligned_R2", "outside", "relu", planted_net, dict(aligned=True),
         "; R2 = a rank-one matrix with a Gaussian draw's Frobenius norm, aligned with the inputs' hidden "
         "activations (R2 not random, not independent of the inputs)"),
    ]
    out: list[CheckRecord] = []
    for k, (tag, regime, act, make, opts, note) in enumerate(tqdm(jobs, desc="key lemma", leave=False)):
        net = make(N, n_inputs=n_in, activation=act, seed=seed, device=dev)
        label = f"{make.__name__}, f={act}, N={N}"
        if opts.pop("aligned", False):
            st = key_lemma_stats(net, R2=aligned_noise(net, 1.0))
        else:
            st = key_lemma_stats(net, draws=draws, seed=seed * 1009 + k, **opts)
        out.append(lemma_record(f"key_lemma[{tag}]", net, st, seed, label, regime, note))
        if make is planted_net and tag in ("relu", "abs", "relu,g=16"):
            out.append(corollary_record(f"accuracy_corollary[{tag}]", net, st, seed, label, regime, note))
    return out


# --------------------------------------------------------------------------- check 5
def loss_theorem_stats(net: ThreeLayerNet, *, lam: float = 0.01, g: float = 1.0, law: str = "gaussian",
                       draws: int = 100, seed: int | torch.Generator = 0, delta_eta: float = 1e-6,
                       r2_coef: float = 1.0, thetas: tuple[float, ...] = tuple(np.linspace(0.0, 1.0, 11)),
                       df: float = 2.5) -> dict:
    """Monte-Carlo of the loss theorem and its monotone version over ``draws`` draws of R2.

    eta is chosen so that 2 exp(-N eta^2 / (2 B_N^2)) = ``delta_eta`` with B_N = ||S2||_F. ``r2_coef``
    multiplies the lam ||R2||_F^2 term of the bound (2 builds a false statement). Returns a dict with
    ``lhs`` (per draw: L(S2) - L(W2) + r2_coef lam ||R2||^2), ``bound`` ((4 sqrt2/|T|) sum a + 2 lam eta),
    ``theta_excess`` (per draw: max over the theta grid, theta < 1, of L(W2(theta)) - bound(theta); at
    theta = 1 both sides are L(W2)), ``monotone`` (per draw: L(W2(theta)) non-decreasing on the grid),
    ``eta``, ``prob`` (the theorem's probability), ``a_term``, ``d_loss`` (L(S2) - L(W2) per draw),
    ``d_ce`` (CE(S2) - CE(W2) per draw), ``reg_gain`` (lam ||R2||^2 per draw).
    """
    thetas = tuple(float(t) for t in thetas)
    if list(thetas) != sorted(thetas) or not all(0.0 <= t <= 1.0 for t in thetas) or min(thetas) >= 1.0:
        raise ValueError(f"thetas must be ascending values in [0, 1], at least one below 1, got {thetas}")
    dev, dtype = net.S2.device, net.S2.dtype
    N, T = net.N, net.n_inputs
    B = float(torch.linalg.matrix_norm(net.S2))
    eta = B * math.sqrt(2.0 * math.log(2.0 / delta_eta) / N)
    a_term = float(4.0 * SQRT2 * outer_scale(net.W1, net.W3, net.inputs).mean())
    bound = a_term + 2.0 * lam * eta
    prob = 1.0 - T / N - delta_eta
    X_S = forward(net.W1, net.S2, net.W3, net.inputs, net.activation)
    CE_S = cross_entropy(X_S, net.labels)
    L_S = CE_S + lam * float((net.S2 ** 2).sum())
    th = torch.tensor(thetas, device=dev, dtype=dtype)
    gen = make_generator(seed, dev)
    lhs, excess, mono, d_ce, reg, d_loss = [], [], [], [], [], []
    for R in _noise_chunks(N, draws, law, g, gen, dev, dtype, df):
        r2 = (R ** 2).sum(dim=(-2, -1))                                              # (k,)
        W = net.S2 + R
        CE_W = cross_entropy(forward(net.W1, W, net.W3, net.inputs, net.activation), net.labels)
        L_W = CE_W + lam * (W ** 2).sum(dim=(-2, -1))                                # (k,)
        L_th = torch.stack([L_S.expand_as(L_W) if t == 0 else L_W if t == 1 else
                            regularised_loss(net, net.S2 + t * R, lam) for t in thetas])  # (n_theta, k)
        lhs.append(L_S - L_W + r2_coef * lam * r2)
        bound_th = L_W - r2_coef * lam * (1 - th[:, None] ** 2) * r2 + (1 - th[:, None]) * bound
        excess.append((L_th - bound_th)[th < 1].amax(dim=0))                         # theta = 1: equality
        mono.append((L_th.diff(dim=0) >= 0).all(dim=0))
        d_ce.append(CE_S - CE_W)
        reg.append(lam * r2)
        d_loss.append(L_S - L_W)
    cat = lambda xs: torch.cat([x.reshape(-1) for x in xs]).cpu().numpy()  # noqa: E731
    return dict(lhs=cat(lhs), bound=bound, theta_excess=cat(excess), monotone=cat(mono), eta=eta, prob=prob,
                thetas=thetas, a_term=a_term, d_ce=cat(d_ce), reg_gain=cat(reg), d_loss=cat(d_loss), B=B,
                L_S=float(L_S))


def loss_records(tag: str, net: ThreeLayerNet, st: dict, lam: float, seed: int | None, label: str,
                 regime: str = "within", extra: str = "", theta: bool = True) -> list[CheckRecord]:
    """The loss-theorem record (and, with ``theta``, the monotone-in-theta record) of
    :func:`loss_theorem_stats`' output; both must hold on every draw."""
    n = st["lhs"].size
    common = (f"N={net.N}, |T|={net.n_inputs}, lambda={lam}, B_N=||S2||_F={_g(st['B'])}, eta={_g(st['eta'])} "
              f"(probability >= 1 - |T|/N - 2exp(-N eta^2/(2 B_N^2)) = {_g(st['prob'])}), (4 sqrt2/|T|) sum a = "
              f"{_g(st['a_term'])}")
    out = [make_record(
        f"loss_theorem[{tag}]", f"removing randomness lowers the loss ({label}): max over draws of L(S2) - L(W2) + "
        "lambda ||R2||_F^2 <= (4 sqrt2/|T|) sum_s a(N,s) + 2 lambda eta, L = CE + lambda ||W2||_F^2",
        st["bound"], float(st["lhs"].max()), n, seed,
        f"{common}; median CE(S2) - CE(W2) {_g(float(np.median(st['d_ce'])))}, median lambda||R2||^2 "
        f"{_g(float(np.median(st['reg_gain'])))}, L(S2) - L(W2) median "
        f"{_g(float(np.median(st['d_loss'])))}, failures {int((st['lhs'] > st['bound']).sum())}/{n}"
        f"{extra}", regime)]
    if theta:
        out.append(make_record(
            f"loss_monotone_theta[{tag}]", f"monotone in the randomness removed ({label}): max over draws and "
            f"theta in {{{', '.join(f'{t:g}' for t in st['thetas'] if t < 1)}}} of L(S2 + theta R2) - "
            "[L(W2) - lambda (1 - theta^2) ||R2||_F^2 + (1 - theta)((4 sqrt2/|T|) sum a + 2 lambda eta)] <= 0",
            0.0, float(st["theta_excess"].max()), n, seed,
            f"{common}; L(theta) itself non-decreasing in theta on {int(st['monotone'].sum())}/{n} draws"
            f"{extra}", regime))
    return out


def check_loss_theorem(quick: bool = True, seed: int = 0, device: str = "auto") -> list[CheckRecord]:
    """Check 5: the loss theorem and its monotone-in-theta corollary (f = ReLU and |.|, planted net,
    lambda = 0.01), plus runs outside the hypotheses: g = 4 > 1, Student-t R2, S2 not low rank."""
    from tqdm.auto import tqdm

    N, n_in, draws = (400, 64, 50) if quick else (2000, 256, 400)
    thetas = tuple(np.linspace(0.0, 1.0, 6 if quick else 11))
    lam = 0.01
    dev = resolve_device(device)
    # (record tag, regime, activation, loss_theorem_stats options, note on the violated hypothesis)
    jobs = [
        ("relu", "within", "relu", {}, ""),
        ("abs", "within", "abs", {}, ""),
        ("relu,g=4", "outside", "relu", dict(g=4.0),
         "; g=4 > 1: eta's probability 2exp(-N eta^2/(2 B_N^2)) and the key lemma's constant assume g <= 1"),
        ("relu,student_t", "outside", "relu", dict(law="student_t", df=2.5),
         "; Student-t R2, df 2.5: no Gaussian tail bound for <S2,R2> or R2 nu"),
        ("relu,S2_full_rank", "outside", "relu", dict(full_rank=True),
         "; S2 = planted + a fixed full-rank matrix with N(0, 4/N) entries, ||S2||_F ~ 2 sqrt(N) (B_N = o(sqrt N) "
         "and low rank violated): eta is O(1)"),
    ]
    out: list[CheckRecord] = []
    for k, (tag, regime, act, opts, note) in enumerate(tqdm(jobs, desc="loss theorem", leave=False)):
        net = planted_net(N, n_inputs=n_in, activation=act, seed=seed, device=dev)
        if opts.pop("full_rank", False):
            gen = make_generator(seed * 1009 + 17, dev)
            full = 2.0 * torch.randn(N, N, generator=gen, device=dev, dtype=net.S2.dtype) / math.sqrt(N)
            net = ThreeLayerNet(net.W1, net.W3, net.S2 + full, net.inputs, net.labels, act)
        st = loss_theorem_stats(net, lam=lam, draws=draws, seed=seed * 1009 + 100 + k, thetas=thetas, **opts)
        out += loss_records(tag, net, st, lam, seed, f"planted_net, f={act}, N={N}", regime, note,
                            theta=(regime == "within"))
    return out


# --------------------------------------------------------------------------- check 6
@contextlib.contextmanager
def _cpu_threads(device: torch.device, n: int | None):
    """Run with ``n`` torch threads on the CPU (restored afterwards); no-op on CUDA or for n = None."""
    if device.type != "cpu" or n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def teacher_data(n_train: int = 4000, n_test: int = 1000, d: int = 64, n_classes: int = 10, width: int = 128,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian inputs labelled by a random teacher X(s) = relu(W3 relu(W2 relu(W1 s))) with a rank-5 W2
    (float32, CPU): (x_train, y_train, x_test, y_test)."""
    net = random_net(width, d, n_classes, n_train + n_test, signal=4.0, rank=5, seed=seed, device="cpu")
    x = net.inputs.float()
    y = net.labels
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def mnist_data(n_train: int = 5000, n_test: int = 2000, root=None, seed: int = 0, name: str = "mnist"):
    """A seeded subset of MNIST (or Fashion-MNIST), flattened, scaled to [0, 1] then normalised with mean 0.5,
    std 0.5 as in the seed papers' code (float32, CPU): (x_train, y_train, x_test, y_test)."""
    from prune.data import load_idx_dataset

    rng = np.random.default_rng(seed)
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = load_idx_dataset(name, split, root)
        idx = np.sort(rng.choice(images.shape[0], size=min(n, images.shape[0]), replace=False))
        x = torch.from_numpy(images[idx].reshape(len(idx), -1).astype(np.float32) / 255.0)
        out += [(x - 0.5) / 0.5, torch.from_numpy(labels[idx])]
    return tuple(out)


def _spectrum_row(W: torch.Tensor) -> dict:
    from theory.spectrum import fit_spectrum

    try:
        r = fit_spectrum(W.detach().double().cpu())
        return dict(sigma2=r.sigma2, bulk_fraction=r.bulk_fraction, n_spikes=r.n_spikes, mp_fit_error=r.mp_fit_error)
    except (ValueError, ArithmeticError) as exc:  # a degenerate spectrum: reported, not fatal
        return dict(sigma2=float("nan"), bulk_fraction=float("nan"), n_spikes=-1, mp_fit_error=float("nan"),
                    error=str(exc))


def train_three_layer(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, *,
                      width: int = 256, epochs: int = 2, lam: float = 1e-3, lr: float = 0.05, momentum: float = 0.9,
                      batch_size: int = 64, max_steps: int | None = None, seed: int = 0,
                      device: str | torch.device = "auto", dataset: str = "", progress: bool = True,
                      cpu_threads: int | None = 1) -> list[dict]:
    """Train X(s) = relu(W3 relu(W2 relu(W1 s))) (no biases; entries N(0, 1/fan_in) at init) with SGD on
    CE + lam (||W1||_F^2 + ||W2||_F^2 + ||W3||_F^2), and return one row per (epoch, layer), epoch 0 = init.

    ``lam`` may be negative and ``max_steps`` (total SGD steps) may be 0: inputs built to violate the
    decay statement. Rows: dataset, epoch, layer, shape, sigma2, sigma2_ratio (to epoch 0), bulk_fraction,
    n_spikes, mp_fit_error, frobenius, train_loss (mean over the epoch's batches; NaN at epoch 0),
    test_acc, steps (cumulative), lam, lr.

    On the CPU the loop runs with ``cpu_threads`` torch threads (default 1: the matrices are small, and
    on a shared 2-core machine two threads were measured 5x slower than one); None keeps torch's setting.
    """
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    gen = make_generator(seed, torch.device("cpu"))
    d, C = x_train.shape[1], int(max(y_train.max(), y_test.max())) + 1
    sizes = [(width, d), (width, width), (C, width)]
    Ws = [(torch.randn(o, i, generator=gen) / math.sqrt(i)).to(dev).requires_grad_() for o, i in sizes]
    bufs = [torch.zeros_like(W) for W in Ws]  # SGD with momentum, torch.optim.SGD's convention
    xtr, ytr, xte, yte = (t.to(dev) for t in (x_train, y_train, x_test, y_test))

    def net(x):
        return torch.relu(torch.relu(torch.relu(x @ Ws[0].T) @ Ws[1].T) @ Ws[2].T)

    rows, base, steps = [], {}, 0

    def log(epoch: int, train_loss: float) -> None:
        with torch.no_grad():
            acc = float((net(xte).argmax(dim=1) == yte).float().mean())
        for name, W in zip(("W1", "W2", "W3"), Ws):
            row = dict(dataset=dataset, epoch=epoch, layer=name, shape=tuple(W.shape), **_spectrum_row(W),
                       frobenius=float(W.detach().norm()), train_loss=train_loss, test_acc=acc, steps=steps,
                       lam=lam, lr=lr)
            base.setdefault(name, row["sigma2"])
            row["sigma2_ratio"] = row["sigma2"] / base[name]
            rows.append(row)

    with _cpu_threads(dev, cpu_threads):
        log(0, float("nan"))
        n = xtr.shape[0]
        bar = tqdm(range(1, epochs + 1), desc=f"train {dataset or 'net'}", leave=False, disable=not progress)
        for epoch in bar:
            perm = torch.randperm(n, generator=gen).to(dev)
            losses = []
            for start in range(0, n, batch_size):
                if max_steps is not None and steps >= max_steps:
                    break
                idx = perm[start:start + batch_size]
                loss = torch.nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
                loss = loss + lam * sum((W ** 2).sum() for W in Ws)
                grads = torch.autograd.grad(loss, Ws)
                with torch.no_grad():
                    for W, buf, grad in zip(Ws, bufs, grads):
                        buf.mul_(momentum).add_(grad)
                        W.sub_(lr * buf)
                losses.append(float(loss.detach()))
                steps += 1
            log(epoch, float(np.mean(losses)) if losses else float("nan"))
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.3f}", acc=f"{rows[-1]['test_acc']:.3f}")
        return rows


def randomness_decay_table(dataset: str = "synthetic", quick: bool = True, seed: int = 0,
                           device: str | torch.device = "auto", root=None, progress: bool = True,
                           **train_kwargs) -> list[dict]:
    """Per-epoch, per-layer spectra (BEMA sigma2, bulk fraction, spikes, MP-fit error) while training the
    three-layer net on ``dataset`` = "synthetic" (teacher network) or "mnist" / "fashion-mnist" (IDX files
    from ``root`` / $RMT_DATA_DIR, see :func:`prune.data.load_idx_dataset`). Keyword arguments go to
    :func:`train_three_layer` (width, epochs, lam, lr, max_steps, ...)."""
    if dataset == "synthetic":
        data = teacher_data(*((4000, 1000) if quick else (20000, 5000)), seed=seed)
        kw = dict(width=256, epochs=5 if quick else 30, lr=0.05)
    else:
        data = mnist_data(*((5000, 2000) if quick else (60000, 10000)), root=root, seed=seed, name=dataset)
        kw = dict(width=256 if quick else 1000, epochs=2 if quick else 20, lr=0.01)
    if not quick:
        kw["cpu_threads"] = None        # full sizes gain from torch's threads
    kw.update(train_kwargs)
    return train_three_layer(*data, seed=seed, device=device, dataset=dataset, progress=progress, **kw)


def decay_record(rows: list[dict], tag: str, seed: int | None, regime: str = "within", note: str = "") -> CheckRecord:
    """The check-6 record of a :func:`train_three_layer` table: held iff sigma2(W2) at the last epoch is
    strictly below its value at initialisation (measured = the ratio, bound = the largest float < 1)."""
    w2 = [r for r in rows if r["layer"] == "W2"]
    first, last = w2[0], w2[-1]
    ratio = last["sigma2"] / first["sigma2"]
    table = "; ".join(
        f"e{r['epoch']}: " + ", ".join(f"{q['layer']} s2={q['sigma2']:.3g} bulk={q['bulk_fraction']:.3f} "
                                       f"spk={q['n_spikes']} mp={q['mp_fit_error']:.3f}"
                                       for q in rows if q["epoch"] == r["epoch"]) + f", acc={r['test_acc']:.3f}"
        for r in w2)
    return make_record(
        f"randomness_decay[{tag}]", f"randomness decays during training ({tag}): BEMA sigma2 of W2 at the last "
        "epoch / at initialisation < 1", math.nextafter(1.0, 0.0), ratio, 1, seed,
        f"{note}width {last['shape'][0]}, lambda={last['lam']}, lr={last['lr']}, {last['epoch']} epochs = "
        f"{last['steps']} SGD steps; sigma2(W2) {first['sigma2']:.4g} -> {last['sigma2']:.4g}; {table}", regime)


def check_randomness_decay(quick: bool = True, seed: int = 0, device: str = "auto",
                           progress: bool = True) -> list[CheckRecord]:
    """Check 6: train the three-layer ReLU net with L2 regularisation (lam = 1e-3; SGD with momentum 0.9, lr
    0.05 on teacher data, 0.01 on MNIST) and compare the BEMA sigma2 of W2 at the last epoch with its value
    at initialisation; outside the hypotheses: lam = 0 (no regularisation) on teacher data.

    MNIST is read with :func:`prune.data.load_idx_dataset` ($RMT_DATA_DIR); if it cannot be had, its record is
    left out and the synthetic record says why -- unless $RMT_REQUIRE_DATA is set (as in CI), where a
    missing data set is an error."""
    note = ""
    rows = randomness_decay_table("synthetic", quick, seed, device, progress=progress)
    try:
        mnist_rows = randomness_decay_table("mnist", quick, seed, device, progress=progress)
    except (OSError, ValueError) as exc:
        if os.environ.get("RMT_REQUIRE_DATA"):
            raise
        mnist_rows, note = None, f"MNIST part skipped ({type(exc).__name__}: {exc}); "
    out = [decay_record(rows, "synthetic", seed, note=note)]
    if mnist_rows is not None:
        out.append(decay_record(mnist_rows, "mnist", seed))
    free = randomness_decay_table("synthetic", quick, seed, device, progress=progress, lam=0.0)
    out.append(decay_record(free, "synthetic,lambda=0", seed, "outside",
                            "no L2 regularisation (the theorem needs lambda > 0): "))
    return out


NETWORK_CHECKS: tuple[Callable[..., list[CheckRecord]], ...] = (check_key_lemma, check_loss_theorem,
                                                                 check_randomness_decay)
