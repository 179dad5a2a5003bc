r"""Loss against theta for W_2(theta) = S_2 + theta R_2: removing randomness lowers the regularised loss.

Three-layer planted net (``simulations.network_checks.planted_net``), L = CE + lambda ||W_2||_F^2
(``regularised_loss``). The corollary of papers.md 2.3 bounds the loss along the path:
L(S_2 + theta R_2) <= L(W_2) - lambda (1 - theta^2) ||R_2||_F^2 + (1 - theta)[(4 sqrt2/|T|) sum_s a(N,s) + 2 lambda eta],
so the loss falls (monotonically) as randomness is removed. The bound's constants come from
``loss_theorem_stats``; each curve is one draw of R_2.
"""
from __future__ import annotations

import numpy as np
import torch

from simulations.generators import make_generator, noise, resolve_device
from simulations.network_checks import cross_entropy, forward, loss_theorem_stats, planted_net, regularised_loss

from . import style
from .registry import FigureContext, FigureResult

NAME = "loss_vs_theta"
TITLE = "Regularised loss against theta for S + theta R"
CAPTION = ("Along W_2 = S_2 + theta R_2 the regularised loss falls monotonically as the random part is removed "
           "(theta from 1 to 0), almost entirely through the penalty lambda ||W_2||^2, and stays below the "
           "theorem's bound at every theta.")
SOURCE = "papers.md 2.3 (loss theorem and its monotone corollary)"
COLUMNS = ("draw", "theta", "loss", "cross_entropy", "penalty", "bound", "N", "lam")


def make(ctx: FigureContext) -> FigureResult:
    N, n_in, curves, stat_draws = (400, 64, 5, 20) if ctx.quick else (2000, 256, 10, 200)
    lam = 0.01
    thetas = np.linspace(0.0, 1.0, 21)
    dev = resolve_device(ctx.device)
    net = planted_net(N, n_inputs=n_in, activation="relu", seed=ctx.seed, device=dev)
    st = loss_theorem_stats(net, lam=lam, draws=stat_draws, seed=ctx.seed + 1, thetas=tuple(np.linspace(0, 1, 6)))
    gen = make_generator(ctx.seed + 2, dev)
    R = noise((N, N), "gaussian", 1.0, batch=(curves,), seed=gen, device=dev, dtype=net.S2.dtype)
    th = torch.as_tensor(thetas, device=dev, dtype=net.S2.dtype)
    rows = []
    for d in range(curves):
        W = net.S2 + th[:, None, None] * R[d]                                   # (n_theta, N, N)
        loss = regularised_loss(net, W, lam)
        ce = cross_entropy(forward(net.W1, W, net.W3, net.inputs, net.activation), net.labels)
        r2 = float((R[d] ** 2).sum())
        L_W = float(loss[-1])
        bound = L_W - lam * (1 - thetas ** 2) * r2 + (1 - thetas) * st["bound"]
        for t, l_, c_, b_ in zip(thetas, loss.cpu().numpy(), ce.cpu().numpy(), bound):
            rows.append(dict(draw=d, theta=float(t), loss=float(l_), cross_entropy=float(c_), penalty=float(l_ - c_),
                             bound=float(b_), N=N, lam=lam, R_fro2=r2))
    fig, axes = style.figure(ncols=2, width=4.8, height=3.6)
    ax = axes[0]
    for d in range(curves):
        rs = [r for r in rows if r["draw"] == d]
        lab = (dict(label=r"loss $L(S_2 + \theta R_2)$, one draw each"), dict(label="theorem's upper bound")) if d == 0 else ({}, {})
        ax.plot(thetas, [r["loss"] for r in rs], color=style.COLORS[0], alpha=0.8, **lab[0])
        ax.plot(thetas, [r["bound"] for r in rs], color=style.COLORS[1], linestyle="--", alpha=0.8, **lab[1])
    ax.set_xlabel(r"amount of randomness kept $\theta$")
    ax.set_ylabel(r"$L = CE + \lambda \|W_2\|_F^2$")
    ax.set_title(f"planted ReLU net, N = {N}, " + rf"$\lambda$ = {lam:g}, {curves} draws of $R_2$")
    ax.legend(fontsize=7.5, loc="upper left")
    ax = axes[1]
    rs = [r for r in rows if r["draw"] == 0]
    base = rs[0]
    ax.plot(thetas, [r["loss"] - base["loss"] for r in rs], color=style.COLORS[0], label=r"$L(\theta) - L(0)$")
    ax.plot(thetas, [r["penalty"] - base["penalty"] for r in rs], color=style.COLORS[2], linestyle="--",
            label=r"penalty $\lambda\|W_2\|_F^2$ part")
    ax.plot(thetas, [r["cross_entropy"] - base["cross_entropy"] for r in rs], color=style.COLORS[3], linestyle=":",
            label="cross-entropy part")
    ax.plot(thetas, lam * thetas ** 2 * base["R_fro2"], color="0.5", linewidth=1,
            label=r"$\lambda\theta^2\|R_2\|_F^2$")
    gap = max(abs(r["loss"] - base["loss"] - lam * r["theta"] ** 2 * base["R_fro2"]) for r in rs)
    ax.text(0.97, 0.08, "the three upper curves agree to\n" + f"{gap:.2g} (cross term and CE change)",
            transform=ax.transAxes, ha="right", fontsize=8)
    ax.set_xlabel(r"amount of randomness kept $\theta$")
    ax.set_ylabel(r"change from $\theta = 0$")
    ax.set_title("where the decrease comes from (draw 0)")
    ax.legend(fontsize=7.5, loc="upper left")
    fig.suptitle(r"Removing randomness lowers the loss: $W_2(\theta) = S_2 + \theta R_2$")
    mono = all(np.all(np.diff([r["loss"] for r in rows if r["draw"] == d]) >= 0) for d in range(curves))
    below = all(r["loss"] <= r["bound"] + 1e-12 for r in rows)
    notes = [f"loss non-decreasing in theta on every draw: {mono}; below the bound at every theta: {below}",
             f"bound constants (loss_theorem_stats, {stat_draws} draws): (4 sqrt2/|T|) sum a = {st['a_term']:.4g}, "
             f"eta = {st['eta']:.4g}, probability >= {st['prob']:.3g}"]
    return FigureResult(rows, fig, [], notes)
