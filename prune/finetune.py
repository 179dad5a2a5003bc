r"""Fine-tuning a pruned model with its sparsity frozen (seed paper 2's ``fine_tune.py``, papers.md 2.2 step 4).

The loop: mini-batch SGD (momentum) or AdamW on the cross-entropy (or any loss), a learning rate that
is held at ``warmup_factor`` x lr for ``warmup_epochs`` and then follows a cosine from lr to 0 over the
remaining steps (the seed: ConstantLR x 0.01 for 2 epochs, then cosine), gradient-norm clipping at 1.0,
masks frozen (:class:`prune.masks.FrozenMasks`: masked weights get no gradient and are re-zeroed, with
the optimiser state, after each step), a tqdm bar, an evaluation after each epoch, and a checkpoint after
each epoch from which an interrupted run resumes to the same result.

Reproducibility: the shuffling uses its own ``torch.Generator`` seeded with ``seed``; any randomness inside
the model (dropout) runs under ``torch.random.fork_rng`` seeded with ``seed``, so the caller's global RNG
state is left as it was. Both generators' states are checkpointed.
"""
from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from .masks import FrozenMasks, masks_from_model

__all__ = ["finetune", "lr_factor"]


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, warmup_factor: float = 0.01) -> float:
    r"""Learning-rate multiplier: ``warmup_factor`` for step < ``warmup_steps``, then
    :math:`\tfrac12(1 + \cos(\pi t / T))` with t = step - warmup, T = total - warmup (cosine annealing to 0)."""
    if step < warmup_steps:
        return warmup_factor
    T = max(1, total_steps - warmup_steps)
    t = min(step - warmup_steps, T)
    return 0.5 * (1.0 + math.cos(math.pi * t / T))


def _batches(train, batch_size: int, gen: torch.Generator):
    """Yield (x, y) mini-batches from a (X, y) tensor pair (shuffled with ``gen``) or a DataLoader as given."""
    if isinstance(train, (tuple, list)):
        X, y = train
        perm = torch.randperm(X.shape[0], generator=gen)
        for i in range(0, X.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            yield X[idx], y[idx]
    else:
        yield from train


def _n_batches(train, batch_size: int) -> int:
    if isinstance(train, (tuple, list)):
        return math.ceil(train[0].shape[0] / batch_size)
    return len(train)


def finetune(model: nn.Module, train, *, epochs: int = 1, lr: float = 1e-3, optimizer: str = "sgd",
             momentum: float = 0.9, weight_decay: float = 0.0, batch_size: int = 128, clip: float | None = 1.0,
             warmup_epochs: float = 0.0, warmup_factor: float = 0.01,
             masks: Mapping[str, torch.Tensor] | bool | None = None,
             loss_fn: Callable | None = None, eval_fn: Callable[[nn.Module], float] | None = None,
             transform: Callable | None = None, checkpoint_dir: str | os.PathLike | None = None,
             resume: bool = True, seed: int = 0, device: str | torch.device = "cpu", inplace: bool = False,
             progress: bool = True) -> tuple[nn.Module, list[dict]]:
    r"""Fine-tune ``model`` on ``train`` with frozen masks, a cosine schedule and gradient clipping.

    Parameters
    ----------
    model : nn.Module
    train : (X, y) tensor pair or an iterable of (x, y) batches (e.g. a DataLoader)
        With a tensor pair, batches of ``batch_size`` are drawn without replacement in an order seeded by
        ``seed``; a DataLoader is used as given (its own shuffling and seed).
    epochs : int >= 1
    lr : float > 0
        Peak learning rate.
    optimizer : {"sgd", "adamw"}
        SGD with ``momentum`` (the seed: lr 3e-5, momentum 0.9) or AdamW.
    weight_decay : float >= 0
    batch_size : int >= 1
    clip : float > 0 or None
        Maximum gradient 2-norm (the seed: 1.0); None disables clipping.
    warmup_epochs, warmup_factor : float
        Hold lr x ``warmup_factor`` for the first ``warmup_epochs`` epochs (the seed: 2 epochs at x 0.01).
    masks : dict, True/None, or False
        The masks to keep frozen; None or True: the model's current zeros in its prunable weights
        (``masks_from_model``); False: no masks (plain fine-tuning).
    loss_fn : callable, optional
        ``loss_fn(outputs, y)``; default cross-entropy.
    eval_fn : callable, optional
        ``eval_fn(model) -> float`` (e.g. test accuracy), called after each epoch in eval mode.
    transform : callable, optional
        Applied to each input batch (for instance a seeded augmentation); takes (x, generator).
    checkpoint_dir : path, optional
        Writes ``finetune.pt`` (model, optimiser, epoch, generators, history) after each epoch; with
        ``resume`` an existing checkpoint there is loaded and training continues after its epoch.
    seed : int
    device : str or torch.device
        Where to train; the returned model stays there.
    inplace : bool
        Train ``model`` itself instead of a deep copy.
    progress : bool
        tqdm bar over the steps.

    Returns
    -------
    (nn.Module, list[dict])
        The fine-tuned model and one record per epoch (epoch, train_loss, lr, metric, seconds).

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named in the message).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if optimizer not in ("sgd", "adamw"):
        raise ValueError(f'optimizer must be "sgd" or "adamw", got {optimizer!r}')
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip must be a finite number > 0 or None, got {clip!r}")
    if not (0 <= warmup_epochs <= epochs):
        raise ValueError(f"warmup_epochs must lie in [0, epochs={epochs}], got {warmup_epochs!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if isinstance(train, (tuple, list)):
        if len(train) != 2 or not all(isinstance(t, torch.Tensor) for t in train):
            raise TypeError("train must be an (X, y) pair of tensors or an iterable of batches")
        if train[0].shape[0] != train[1].shape[0] or train[0].shape[0] == 0:
            raise ValueError(f"train X and y must have the same, non-zero length, got {train[0].shape[0]} and "
                             f"{train[1].shape[0]}")
    elif not hasattr(train, "__iter__"):
        raise TypeError(f"train must be an (X, y) pair of tensors or an iterable of batches, got "
                        f"{type(train).__name__}")
    device = torch.device(device)
    target = model if inplace else copy.deepcopy(model)
    target.to(device)
    if masks is None or masks is True:
        masks = masks_from_model(target)
    elif masks is False:
        masks = {}
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = [p for p in target.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n_b = _n_batches(train, batch_size)
    total, warm = epochs * n_b, int(round(warmup_epochs * n_b))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warm, warmup_factor))
    gen = torch.Generator().manual_seed(int(seed))
    model_rng = None  # the model's (dropout) RNG state inside fork_rng
    history: list[dict] = []
    start_epoch = 0
    ckpt = Path(checkpoint_dir) / "finetune.pt" if checkpoint_dir is not None else None
    if ckpt is not None and resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        target.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        model_rng = state["model_rng"]
        history = state["history"]
        start_epoch = state["epoch"]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=start_epoch * n_b, desc="fine-tune", unit="step")
    frozen = FrozenMasks(target, masks, optimizer=opt) if masks else None
    try:
        with torch.random.fork_rng(devices=[]):
            if model_rng is None:
                torch.manual_seed(int(seed))
            else:
                torch.set_rng_state(model_rng)
            for epoch in range(start_epoch, epochs):
                t0 = time.perf_counter()
                target.train()
                run, count = 0.0, 0
                for x, y in _batches(train, batch_size, gen):
                    x, y = x.to(device), y.to(device)
                    if transform is not None:
                        x = transform(x, gen)
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(target(x), y)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"fine-tuning loss became {float(loss.detach())} at epoch {epoch + 1}; "
                                                 f"lower lr (={lr})")
                    loss.backward()
                    if clip is not None:
                        torch.nn.utils.clip_grad_norm_(params, clip)
                    opt.step()
                    sched.step()
                    run += float(loss.detach()) * x.shape[0]
                    count += x.shape[0]
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=epoch + 1, loss=f"{run / count:.4f}")
                target.eval()
                metric = math.nan
                if eval_fn is not None:
                    with torch.no_grad():
                        metric = float(eval_fn(target))
                history.append(dict(epoch=epoch + 1, train_loss=run / max(count, 1),
                                    lr=opt.param_groups[0]["lr"], metric=metric,
                                    seconds=time.perf_counter() - t0))
                if ckpt is not None:
                    ckpt.parent.mkdir(parents=True, exist_ok=True)
                    tmp = ckpt.with_suffix(".tmp")
                    torch.save(dict(model=target.state_dict(), optimizer=opt.state_dict(),
                                    scheduler=sched.state_dict(), generator=gen.get_state(),
                                    model_rng=torch.get_rng_state(), history=history, epoch=epoch + 1), tmp)
                    os.replace(tmp, ckpt)
    finally:
        if frozen is not None:
            frozen.remove()
        if bar is not None:
            bar.close()
    target.eval()
    return target, history
