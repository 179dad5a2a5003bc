r"""The Pruning Theorem's bound tau_N against the measured change of the logits.

Three-layer net X(s) = f(W_3 f(W_2 f(W_1 s))) with W_2 = S_2 + R_2, R_2 i.i.d. N(0, 1/N) (the planted net of
``simulations.network_checks``). The key lemma (papers.md 1.5) bounds the effect of removing R_2:
||X(s; S_2) - X(s; W_2)||_inf <= tau_N(s) = 2 sqrt2 ||W_3||_inf ||W_1 s||_2 sqrt(log(2N)/N) with probability
>= 1 - 1/N. Both sides shrink as N grows; the figure sweeps N and shows, at the largest N, every
(draw, input) pair against the bound. Built from ``planted_net``, ``forward``, ``tau_n`` and
``generators.noise``.
"""
from __future__ import annotations

import numpy as np
import torch

from simulations.generators import make_generator, noise, resolve_device
from simulations.network_checks import forward, planted_net, tau_n

from . import style
from .registry import FigureContext, FigureResult

NAME = "pruning_theorem_tau"
TITLE = "Pruning Theorem: bound tau_N against the measured logit change"
CAPTION = ("Removing the random part R_2 of the middle layer changes every logit by less than the key lemma's "
           "bound tau_N; the bound vanishes like sqrt(log N / N) as the width N grows, and the actual change, "
           "an order of magnitude smaller, vanishes faster.")
SOURCE = "papers.md 1.5 (key lemma, Pruning Theorem)"
COLUMNS = ("N", "draws", "inputs", "tau_mean", "tau_min", "change_median", "change_q99", "change_max",
           "max_change_over_tau", "failure_frequency", "bound_failure_probability")


def _changes(N: int, draws: int, n_inputs: int, seed: int, device) -> tuple[np.ndarray, np.ndarray]:
    """(tau per input (|T|,), change per draw and input (draws, |T|)) for the planted ReLU net of width N."""
    net = planted_net(N, n_inputs=n_inputs, activation="relu", seed=seed, device=device)
    tau = tau_n(net.W1, net.W3, net.inputs)
    X_S = forward(net.W1, net.S2, net.W3, net.inputs, net.activation)
    gen = make_generator(seed + 1, net.S2.device)
    chunk = max(1, min(draws, int(2e7 // (N * N))))
    out, done = [], 0
    while done < draws:
        k = min(chunk, draws - done)
        R = noise((N, N), "gaussian", 1.0, batch=(k,), seed=gen, device=net.S2.device, dtype=net.S2.dtype)
        X_W = forward(net.W1, net.S2 + R, net.W3, net.inputs, net.activation)
        out.append((X_W - X_S).abs().amax(dim=-1).cpu())
        done += k
    return tau.cpu().numpy(), torch.cat(out).numpy()


def make(ctx: FigureContext) -> FigureResult:
    Ns, draws, n_in = ((100, 200, 400, 800, 1600), 20, 64) if ctx.quick else ((250, 500, 1000, 2000, 4000, 8000), 100, 256)
    dev = resolve_device(ctx.device)
    rows, last = [], None
    for k, N in enumerate(Ns):
        tau, ch = _changes(N, draws, n_in, ctx.seed + k, dev)
        ratio = ch / tau[None, :]
        rows.append(dict(N=N, draws=draws, inputs=n_in, tau_mean=float(tau.mean()), tau_min=float(tau.min()),
                         change_median=float(np.median(ch)), change_q99=float(np.quantile(ch, 0.99)),
                         change_max=float(ch.max()), max_change_over_tau=float(ratio.max()),
                         failure_frequency=float((ratio > 1).mean()), bound_failure_probability=1.0 / N))
        last = (N, tau, ch)
    N = np.array(Ns, dtype=float)
    fig, axes = style.figure(ncols=2, width=4.8, height=3.6)
    ax = axes[0]
    ax.loglog(N, [r["tau_mean"] for r in rows], marker="s", color=style.COLORS[1], label=r"bound $\tau_N(s)$, mean over inputs")
    ax.loglog(N, [r["change_max"] for r in rows], marker="^", color=style.COLORS[0], label="measured change, max")
    ax.loglog(N, [r["change_q99"] for r in rows], marker="o", color=style.COLORS[0], linestyle="--",
              label="measured change, 99th percentile")
    ax.loglog(N, [r["change_median"] for r in rows], marker="v", color=style.COLORS[0], linestyle=":",
              label="measured change, median")
    rate = np.sqrt(np.log(2 * N) / N)
    ax.loglog(N, rate * rows[0]["tau_mean"] / rate[0], color="0.5", linewidth=1, linestyle="-.",
              label=r"$\propto\sqrt{\log(2N)/N}$ (the bound's rate)")
    ax.set_xlabel("width N of the middle layer")
    ax.set_ylabel(r"$\|X(s;S_2) - X(s;W_2)\|_\infty$")
    ax.set_title(f"{draws} draws of $R_2$ x {n_in} inputs per N")
    ax.legend(fontsize=7.5)
    style.log_ticks(ax, Ns)
    ax = axes[1]
    Nl, tau, ch = last
    tt = np.broadcast_to(tau[None, :], ch.shape)
    ax.scatter(tt.ravel(), ch.ravel(), s=6, alpha=0.4, color=style.COLORS[0], label="(draw, input) pairs")
    lim = [0.5 * min(tau.min(), ch.min()), 2.0 * max(tau.max(), ch.max())]
    ax.plot(lim, lim, color="k", linestyle="--", label=r"change $= \tau_N(s)$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel(r"bound $\tau_N(s)$")
    ax.set_ylabel("measured logit change")
    ax.set_title(f"N = {Nl}: every pair below the bound" if (ch <= tau[None, :]).all()
                 else f"N = {Nl}: {(ch > tau[None, :]).mean():.2%} of pairs above the bound")
    ax.legend(fontsize=7.5, loc="upper left")
    fig.suptitle(r"Key lemma: removing the random part $R_2$ of $W_2 = S_2 + R_2$ (planted ReLU net)")
    slope = float(np.polyfit(np.log(N), np.log([r["change_median"] for r in rows]), 1)[0])
    slope_tau = float(np.polyfit(np.log(N), np.log([r["tau_mean"] for r in rows]), 1)[0])
    notes = [f"log-log slope against N: bound {slope_tau:.3f}, median change {slope:.3f}"]
    notes += [f"N={r['N']}: max change/tau {r['max_change_over_tau']:.3g}, failure frequency "
             f"{r['failure_frequency']:.3g} (lemma: <= 1/N = {r['bound_failure_probability']:.3g})" for r in rows]
    return FigureResult(rows, fig, [], notes, extra={"slope_tau": slope_tau, "slope_change_median": slope})
