r"""Training with pruning during training: seed paper 1's Algorithm 1 and its baselines (papers.md 1.2, 1.3, 2.4a).

The loop, top to bottom (:func:`train`)::

    for epoch in 1..E:
        lr = lr0 * decay ** ((epoch - 1) // decay_every)           # step decay (0.96 every 4 epochs in 2.4a)
        for each shuffled mini-batch (x, y):
            loss = NLL(model(x), y) + l1 * sum|w| + l2 * sum w^2    # explicit penalties, all parameters
            SGD-momentum step            # penalty gradient l1 sign(w) + 2 l2 w added directly (add_penalty_grad)
        if epoch % prune_every == 0 and epoch < E:                  # every l epochs, never after the last one
            f = max(0, 1 - epoch / T)                               # bulk schedule f(epoch)
            prune (MP / fixed rank / magnitude, see below)
            new optimiser; momentum carried for untouched parameters
        evaluate (model.eval(), no dropout, no grad); checkpoint

Pruning rules (``TrainConfig.prune``):

* ``"mp"``: :func:`prune.methods.svd.mp_truncate` with ``bulk_keep=f``: per layer keep the
  :math:`k_{sig}` values above the BEMA edge plus :math:`\lfloor f\,k_{bulk} \rfloor` bulk ones; a layer whose
  MP-fit error is ``>= fit_cutoff`` is left alone; two thin layers when that stores fewer numbers, else
  recomposed (papers.md 1.2 steps 1-5). The seed code's off-by-one in the edge index is not repeated
  (``mp_truncate`` uses BEMA's exact spike count).
* ``"rank"`` (baseline): every layer truncated to one common rank k (``rank``), or, given a parameter
  ``budget`` per epoch, the largest common k whose stored weights fit the budget.
* ``"magnitude"`` (baseline): global magnitude pruning (:func:`prune.methods.magnitude.magnitude_prune`) down to the
  epoch's ``budget`` of non-zero weights, masks frozen until the next step (:func:`prune.masks.freeze_masks`).

The budgets let the baselines run "on the same footing" as an MP run: the experiment passes the MP run's
stored-weight count at every pruning epoch.

Optimiser state: the seed code re-creates SGD after every pruning step (papers.md 1.2 step 7), dropping all
momentum. We re-create it too, but by default (``carry_momentum=True``) copy the momentum buffer of every
parameter that the step did not replace (layers left unchanged, and all weights under magnitude pruning,
whose masked entries :class:`~prune.masks.FrozenMasks` zeroes in the buffer); a layer that was cut gets
new tensors and starts with zero momentum. ``carry_momentum=False`` is the seed code's behaviour.

Determinism: the mini-batch order comes from a ``torch.Generator`` seeded with ``seed``; dropout draws from
the global generator inside ``torch.random.fork_rng`` seeded with ``seed`` (the caller's global state is
restored afterwards). A checkpoint holds the model's layer structure (which layers are factorised, at
which rank), weights, optimiser state, both RNG states and the history, so a resumed run continues exactly
as the uninterrupted one.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .layers import (FactorizedConv2d, FactorizedLinear, factorization_saves, from_factors, matrix_shape,
                     prunable_layers, set_submodule, stored_parameters, with_matrix)
from .methods.svd import mp_truncate, rank_truncate
from .params import count_nonzero, count_parameters

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "penalty", "bulk_schedule", "learning_rate",
           "image_tensors", "add_penalty_grad", "layer_structure", "restructure", "weight_counts", "uniform_rank_for_budget",
           "prune_step", "load_trained"]

PRUNE_RULES = ("none", "mp", "rank", "magnitude")


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train` (defaults: papers.md 2.4a's FC run, scaled by the caller).

    Attributes
    ----------
    epochs, batch_size, lr, momentum : training basics (SGD with momentum).
    lr_decay, lr_decay_every : lr multiplied by ``lr_decay`` every ``lr_decay_every`` epochs.
    l1, l2 : weights of the explicit penalties l1 * sum|p| + l2 * sum p^2 over all parameters.
    prune : "none", "mp", "rank" or "magnitude".
    prune_every : l, prune after every l-th epoch (never after the last).
    schedule_T : T of f(epoch) = max(0, 1 - epoch / T).
    alpha, beta : BEMA trimming and Tracy-Widom level.
    fit_cutoff : MP-fit error cutoff; a float / None for every layer, or a dict {"conv": c1, "linear": c2}.
    min_rank : kept rank never below this (the seed code floors at the number of classes).
    rank : common rank of the "rank" rule (when no budget).
    budget : {epoch: stored weight count} for "rank" / "magnitude" (keys are the pruning epochs).
    prune_layers : names of the layers to prune (default: every prunable layer).
    carry_momentum : keep the momentum of untouched parameters across a pruning step.
    seed : seed of the batch order and of dropout.
    eval_batch_size : batch size of evaluation.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    lr_decay: float = 0.96
    lr_decay_every: int = 4
    l1: float = 0.0
    l2: float = 0.0
    prune: str = "none"
    prune_every: int = 4
    schedule_T: float = 200.0
    alpha: float = 0.25
    beta: float = 0.1
    fit_cutoff: float | dict | None = None
    min_rank: int = 1
    rank: int | None = None
    budget: dict | None = None
    prune_layers: list | None = None
    carry_momentum: bool = True
    seed: int = 0
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.prune not in PRUNE_RULES:
            raise ValueError(f"prune must be one of {PRUNE_RULES}, got {self.prune!r}")
        for name in ("epochs", "batch_size", "prune_every", "lr_decay_every", "min_rank", "eval_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("lr", "schedule_T"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("momentum", "l1", "l2"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay!r}")
        if self.budget is not None:
            self.budget = {int(k): int(v) for k, v in self.budget.items()}
        if self.prune == "magnitude" and self.budget is None:
            raise ValueError("prune='magnitude' needs a budget {epoch: non-zero weight count}")
        if self.prune == "rank" and self.budget is None and self.rank is None:
            raise ValueError("prune='rank' needs rank or budget")


@dataclass
class TrainResult:
    """The trained model, one history row per epoch, the per-layer pruning reports and the wall time."""

    model: nn.Module
    history: list = field(default_factory=list)
    cuts: list = field(default_factory=list)
    wall_s: float = 0.0


def image_tensors(images: np.ndarray, labels: np.ndarray, *, flatten: bool = True,
                  normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (n, 28, 28) -> float32 tensors normalised with mean 0.5, std 0.5 (papers.md 1.3).

    ``normalize=False`` gives the pixels / 255 in [0, 1] only (torchvision's ``ToTensor()``, the precursor
    notebook's preprocessing). Returns (x, y) with x of shape (n, 784) if ``flatten`` else (n, 1, 28, 28),
    y int64.
    """
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {normalize!r}")
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 of shape (n, h, w), got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    x = torch.from_numpy(images).float() / 255.0
    if normalize:
        x = (x - 0.5) / 0.5
    x = x.reshape(len(x), -1) if flatten else x.unsqueeze(1)
    return x.contiguous(), torch.from_numpy(labels.astype(np.int64))


def bulk_schedule(epoch: int, T: float) -> float:
    """f(epoch) = max(0, 1 - epoch / T), the fraction of the bulk kept at a pruning step (papers.md 1.2)."""
    return max(0.0, 1.0 - epoch / T)


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """lr of (1-based) ``epoch``: lr0 * decay ** ((epoch - 1) // decay_every)."""
    return cfg.lr * cfg.lr_decay ** ((epoch - 1) // cfg.lr_decay_every)


def penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor:
    r""":math:`l_1 \sum_p \sum_i |p_i| + l_2 \sum_p \sum_i p_i^2` over all parameters (papers.md 1.3, "inside train()")."""
    params = [p for p in model.parameters() if p.requires_grad]
    zero = params[0].new_zeros(()) if params else torch.zeros(())
    if l1 == 0 and l2 == 0:
        return zero
    total = zero
    if l1:
        total = total + l1 * sum(p.abs().sum() for p in params)
    if l2:
        total = total + l2 * sum(p.pow(2).sum() for p in params)
    return total


@torch.no_grad()
def add_penalty_grad(model: nn.Module, l1: float, l2: float) -> None:
    r"""Add the gradient of :func:`penalty`, :math:`l_1\,\mathrm{sign}(p) + 2 l_2\, p`, to every ``p.grad``.

    Same result as back-propagating ``penalty(model, l1, l2)`` (sign(0) = 0, as autograd's |.|), without
    building its graph: two fused ``torch._foreach`` updates instead of O(#params) autograd nodes.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if not params or (l1 == 0 and l2 == 0):
        return
    grads = [p.grad for p in params]
    if l1:
        torch._foreach_add_(grads, torch._foreach_sign(params), alpha=l1)
    if l2:
        torch._foreach_add_(grads, params, alpha=2.0 * l2)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """(mean NLL loss, accuracy) of ``model`` (which returns log-probabilities) in eval mode.

    The model's training flag is restored afterwards.
    """
    was = model.training
    model.eval()
    loss, correct = 0.0, 0
    dev = next(model.parameters()).device
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)
        out = model(xb)
        loss += float(nn.functional.nll_loss(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    model.train(was)
    return loss / len(x), correct / len(x)


def layer_structure(model: nn.Module) -> dict:
    """{layer name: rank of its factorisation, or 0 for a dense layer} of every prunable layer."""
    return {name: (m.rank if isinstance(m, (FactorizedLinear, FactorizedConv2d)) else 0)
            for name, m in prunable_layers(model)}


def restructure(model: nn.Module, structure: dict) -> nn.Module:
    """Make ``model``'s prunable layers dense or factorised as ``structure`` says (in place; weights are
    placeholders to be overwritten by ``load_state_dict``)."""
    layers = dict(prunable_layers(model))
    for name, rank in structure.items():
        if name not in layers:
            raise ValueError(f"structure names {name!r}, which is not a prunable layer of the model")
        m = layers[name]
        cur = m.rank if isinstance(m, (FactorizedLinear, FactorizedConv2d)) else 0
        if cur == rank:
            continue
        N, M = matrix_shape(m)
        ref = m.second.weight if cur else m.weight
        if rank:
            new = from_factors(m, ref.new_zeros(N, rank), ref.new_zeros(rank, M))
        else:
            new = with_matrix(m, ref.new_zeros(N, M))
        set_submodule(model, name, new)
    return model


def weight_counts(model: nn.Module) -> tuple[int, int]:
    """(stored, non-zero) entries of the prunable layers' weights (factorised layers count k (N + M))."""
    from .masks import prunable_weights

    stored = sum(stored_parameters(m) for _, m in prunable_layers(model))
    with torch.no_grad():
        nonzero = sum(int(torch.count_nonzero(p)) for _, _, p in prunable_weights(model))
    return stored, nonzero


def _stored_at_rank(m: nn.Module, k: int) -> int:
    cur = m.rank if isinstance(m, (FactorizedLinear, FactorizedConv2d)) else min(matrix_shape(m))
    if k >= cur:
        return stored_parameters(m)
    N, M = matrix_shape(m)
    return k * (N + M) if factorization_saves((N, M), k) else N * M


def uniform_rank_for_budget(model: nn.Module, budget: int, layers: Sequence[str] | None = None,
                            min_rank: int = 1) -> int:
    """Largest common rank k >= ``min_rank`` whose truncation stores at most ``budget`` weights.

    Layers not in ``layers`` keep their count; min_rank is returned when no k fits.
    """
    found = prunable_layers(model)
    sel = [m for n, m in found if layers is None or n in set(layers)]
    rest = sum(stored_parameters(m) for n, m in found if not (layers is None or n in set(layers)))
    kmax = max(min(matrix_shape(m)) for m in sel)
    lo, hi = min_rank, kmax  # count is non-decreasing in k: binary search the largest k that fits
    if rest + sum(_stored_at_rank(m, lo) for m in sel) > budget:
        return min_rank
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if rest + sum(_stored_at_rank(m, mid) for m in sel) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _layers_by_kind(model: nn.Module, names: Sequence[str] | None) -> dict:
    out = {"conv": [], "linear": []}
    for n, m in prunable_layers(model):
        if names is None or n in set(names):
            out["conv" if isinstance(m, (nn.Conv2d, FactorizedConv2d)) else "linear"].append(n)
    return out


def prune_step(model: nn.Module, cfg: TrainConfig, epoch: int) -> tuple[list, object]:
    """One pruning step of rule ``cfg.prune`` after ``epoch`` (model changed in place).

    Returns (list of per-layer report dicts, masks or None).
    """
    f = bulk_schedule(epoch, cfg.schedule_T)
    rows, masks = [], None
    if cfg.prune == "mp":
        groups = _layers_by_kind(model, cfg.prune_layers)
        for kind, names in groups.items():
            if not names:
                continue
            cut = cfg.fit_cutoff.get(kind) if isinstance(cfg.fit_cutoff, dict) else cfg.fit_cutoff
            _, cuts = mp_truncate(model, bulk_keep=f, alpha=cfg.alpha, beta=cfg.beta, fit_cutoff=cut, layers=names,
                                  inplace=True, min_rank=cfg.min_rank)
            rows += [c.as_dict() for c in cuts]
    elif cfg.prune == "rank":
        if cfg.budget is not None:
            if epoch not in cfg.budget:
                return rows, None
            k = uniform_rank_for_budget(model, cfg.budget[epoch], cfg.prune_layers, cfg.min_rank)
        else:
            k = cfg.rank
        _, cuts = rank_truncate(model, int(k), layers=cfg.prune_layers, inplace=True, min_rank=cfg.min_rank)
        rows += [c.as_dict() for c in cuts]
    elif cfg.prune == "magnitude":
        from .masks import prunable_weights
        from .methods.magnitude import magnitude_prune

        if epoch not in cfg.budget:
            return rows, None
        total = sum(p.numel() for _, _, p in prunable_weights(model, cfg.prune_layers))
        rest = sum(p.numel() for _, _, p in prunable_weights(model)) - total
        amount = min(1.0, max(0.0, 1.0 - (cfg.budget[epoch] - rest) / total))
        _, masks = magnitude_prune(model, amount=amount, layers=cfg.prune_layers, inplace=True)
        rows.append(dict(name="*", action="magnitude", amount=amount, budget=cfg.budget[epoch]))
    for r in rows:
        r["epoch"], r["bulk_keep"] = epoch, f
    return rows, masks


def _optimizer(model: nn.Module, cfg: TrainConfig, lr: float, old: torch.optim.Optimizer | None = None):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum)
    if old is not None and cfg.carry_momentum:
        for p in model.parameters():  # parameters the pruning step did not replace keep their momentum
            if p in old.state and old.state[p]:
                opt.state[p] = old.state[p]
    return opt


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def train(model: nn.Module, train_data: tuple[torch.Tensor, torch.Tensor], test_data: tuple[torch.Tensor, torch.Tensor],
          cfg: TrainConfig, *, checkpoint: str | os.PathLike | None = None, resume: bool = False,
          stop_after: int | None = None, progress: bool = True, desc: str = "train",
          inplace: bool = False) -> TrainResult:
    r"""Train ``model`` (log-probability outputs) with SGD, explicit L1/L2 penalties and pruning during training.

    Algorithm: module docstring; seed paper 1's Algorithm 1 (papers.md 1.2) with the hyper-parameters of
    ``cfg`` (papers.md 1.3 / 2.4a for the seed values).

    Parameters
    ----------
    model : nn.Module
        Returns log-probabilities over the classes (dim 1). Deep-copied unless ``inplace``.
    train_data, test_data : (x, y) tensors
        Inputs and int64 labels (see :func:`image_tensors`).
    cfg : TrainConfig
    checkpoint : path, optional
        Written after every epoch (atomically): structure, weights, optimiser, RNG states, history.
    resume : bool
        Continue from ``checkpoint`` when it exists (a finished run is returned as it is).
    stop_after : int, optional
        Stop after this epoch (used to test that resuming matches an uninterrupted run).
    progress : bool
        tqdm bar over epochs (test accuracy and stored parameters as postfix).

    Returns
    -------
    TrainResult
        ``history`` rows: epoch, lr, bulk_keep, train_loss / train_acc (running, training mode), test_loss,
        test_acc, params (:func:`prune.params.count_parameters`), nonzero (``count_nonzero``),
        weights_stored / weights_nonzero (prunable layers' weights), ranks, pruned (bool), seconds.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    x_tr, y_tr = train_data
    x_te, y_te = test_data
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te) or len(x_tr) == 0:
        raise ValueError(f"train/test inputs and labels must be non-empty and of equal length, got "
                         f"{len(x_tr)}/{len(y_tr)} and {len(x_te)}/{len(y_te)}")
    from .masks import FrozenMasks, masks_from_model

    model = model if inplace else copy.deepcopy(model)
    dev = next(model.parameters()).device
    ckpt = Path(checkpoint) if checkpoint is not None else None
    t_start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        history, cuts, start, wall_before = [], [], 1, 0.0
        opt = _optimizer(model, cfg, learning_rate(cfg, 1))
        frozen = None
        if resume and ckpt is not None and ckpt.is_file():
            state = torch.load(ckpt, map_location=dev, weights_only=True)
            if state["config"] != asdict(cfg):
                diff = {k: (state["config"].get(k), v) for k, v in asdict(cfg).items() if state["config"].get(k) != v}
                raise ValueError(f"checkpoint {ckpt} was written with another configuration (saved, given): {diff}")
            restructure(model, state["structure"])
            model.load_state_dict(state["model"])
            opt = _optimizer(model, cfg, learning_rate(cfg, state["epoch"] + 1))
            opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            gen.set_state(state["gen"])
            history, cuts, wall_before = state["history"], state["cuts"], state["wall_s"]
            start = state["epoch"] + 1
            if cfg.prune == "magnitude" and any(h["pruned"] for h in history):
                frozen = FrozenMasks(model, masks_from_model(model, cfg.prune_layers), opt)
        last = cfg.epochs if stop_after is None else min(stop_after, cfg.epochs)
        bar = range(start, last + 1)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(bar, desc=desc, unit="epoch", initial=start - 1, total=last, leave=False)
        n = len(x_tr)
        for epoch in bar:
            t0 = time.perf_counter()
            lr = learning_rate(cfg, epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            perm = torch.randperm(n, generator=gen)
            run_loss, run_correct = 0.0, 0
            for i in range(0, n, cfg.batch_size):
                idx = perm[i:i + cfg.batch_size]
                xb, yb = x_tr[idx].to(dev), y_tr[idx].to(dev)
                out = model(xb)
                nll = nn.functional.nll_loss(out, yb)
                opt.zero_grad(set_to_none=True)
                nll.backward()
                add_penalty_grad(model, cfg.l1, cfg.l2)  # = autograd of penalty(model, l1, l2), without a graph
                opt.step()
                run_loss += float(nll.detach()) * len(idx)
                run_correct += int((out.argmax(1) == yb).sum())
            pruned = False
            if cfg.prune != "none" and epoch % cfg.prune_every == 0 and epoch < cfg.epochs:
                rows, masks = prune_step(model, cfg, epoch)
                cuts += rows
                pruned = bool(rows)
                if frozen is not None and masks is not None:
                    frozen.remove()
                opt = _optimizer(model, cfg, lr, old=opt)
                if masks is not None:
                    frozen = FrozenMasks(model, masks, opt)
                elif frozen is not None:
                    frozen.attach(opt)
            test_loss, test_acc = evaluate(model, x_te, y_te, cfg.eval_batch_size)
            stored, nonzero_w = weight_counts(model)
            row = dict(epoch=epoch, lr=lr, bulk_keep=bulk_schedule(epoch, cfg.schedule_T),
                       train_loss=run_loss / n, train_acc=run_correct / n, test_loss=test_loss, test_acc=test_acc,
                       params=count_parameters(model), nonzero=count_nonzero(model), weights_stored=stored,
                       weights_nonzero=nonzero_w, ranks=layer_structure(model), pruned=pruned,
                       seconds=time.perf_counter() - t0)
            history.append(row)
            if progress:
                bar.set_postfix(test_acc=f"{test_acc:.4f}", params=row["params"])
            if ckpt is not None:
                _save(ckpt, dict(epoch=epoch, structure=layer_structure(model), model=model.state_dict(),
                                 optimizer=opt.state_dict(), rng=torch.get_rng_state(), gen=gen.get_state(),
                                 history=history, cuts=cuts, config=asdict(cfg),
                                 wall_s=wall_before + time.perf_counter() - t_start))
        if frozen is not None:
            frozen.remove()
    return TrainResult(model=model, history=history, cuts=cuts, wall_s=wall_before + time.perf_counter() - t_start)


def load_trained(model: nn.Module, checkpoint: str | os.PathLike, map_location: str | torch.device = "cpu"
                 ) -> tuple[nn.Module, list]:
    """Rebuild the model saved by :func:`train` in ``checkpoint`` on top of ``model`` (a fresh instance of the
    same architecture, changed in place: its layers are factorised as saved); returns (model, history)."""
    state = torch.load(Path(checkpoint), map_location=map_location, weights_only=True)
    restructure(model, state["structure"])
    model.load_state_dict(state["model"])
    model.eval()
    return model, state["history"]
