r"""Accuracy and logits of a model on a real data set: batched, ``no_grad``, eval mode, right normalisation.

Inputs are pixels / 255, then per-channel :math:`(x - \mu_c) / \sigma_c` with the model's own
normalisation (the one it was trained with): the MNIST CNN uses (0.1307, 0.3081), the CIFAR ResNets of
``shared/models`` mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) (their training code's
values, ImageNet's), our ViT the data set's mean and std. :func:`evaluate` never guesses: the data set and
normalisation come from the arguments or from the model's record (``model.rmt_base``, set by
:func:`prune.models.resolve.resolve_model`); when neither has them it raises a ValueError saying what is missing
(``normalization="none"`` is the explicit choice of pixels / 255 only). ``limit`` scores a seeded random subset
(the CIFAR test batch is sorted by class, so the first K images would be one class).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["DATASETS", "EvalResult", "load_inputs", "predict", "evaluate", "subset_indices", "inference_time"]

#: data sets the evaluator reads (prune.data), with their image shape (C, H, W)
DATASETS = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


@dataclass
class EvalResult:
    """Accuracy (fraction in [0, 1]) on ``n`` images; logits (n, classes) and labels when asked for."""

    accuracy: float
    n: int
    dataset: str
    split: str
    logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None

    def as_dict(self) -> dict:
        return dict(accuracy=self.accuracy, n=self.n, dataset=self.dataset, split=self.split)


def _check_dataset(dataset: str) -> str:
    key = dataset.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    return key


def subset_indices(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """All of range(n) if ``limit`` is None or >= n, else ``limit`` sorted indices drawn without replacement (seeded)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    return np.sort(np.random.default_rng(seed).choice(n, size=int(limit), replace=False))


def load_inputs(dataset: str, split: str = "test", normalization: tuple[Sequence[float], Sequence[float]] | None = None,
                root: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised float32 images (n, C, H, W) and int64 labels (n,) of ``dataset``'s ``split``.

    Parameters
    ----------
    dataset : "mnist", "fashion-mnist" or "cifar10"
    split : "test" or "train" (CIFAR: also "data_batch_k"; the shared JPEG copy holds test_batch and data_batch_1)
    normalization : (mean, std), one value per channel; ``"none"`` (or None, this loader having no model to ask):
        pixels / 255 only
    root : data root (default ``$RMT_DATA_DIR``)
    limit, seed : score a seeded random subset of ``limit`` images (see :func:`subset_indices`)
    """
    from .data import load_cifar10, load_idx_dataset

    key = _check_dataset(dataset)
    if key == "cifar10":
        images, labels = load_cifar10(split, root=root)
    else:
        images, labels = load_idx_dataset(key, split, root=root)
        images = images[:, None]
    idx = subset_indices(len(labels), limit, seed)
    x = torch.from_numpy(np.ascontiguousarray(images[idx])).float().div_(255.0)
    if isinstance(normalization, str):
        if normalization != "none":
            raise ValueError(f'normalization must be (mean, std), "none" or None, got {normalization!r}')
        normalization = None
    if normalization is not None:
        mean, std = (torch.as_tensor(v, dtype=torch.float32).reshape(-1, 1, 1) for v in normalization)
        if mean.numel() not in (1, x.shape[1]) or std.numel() != mean.numel():
            raise ValueError(f"normalization must give one mean and std per channel ({x.shape[1]}), got {normalization}")
        if not bool((std > 0).all()):
            raise ValueError(f"normalization std must be > 0, got {normalization[1]}")
        x = (x - mean) / std
    return x, torch.from_numpy(labels[idx])


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in batches, in eval mode and without gradients (the training flag is restored)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        ref = next(model.parameters(), None)
        device = ref.device if ref is not None else torch.device("cpu")
        with torch.no_grad():
            out = [_logits(model(x[i:i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def _logits(out) -> torch.Tensor:
    """The logits tensor of a model's output (a tensor, or a Hugging Face output with ``.logits``)."""
    return out.logits if hasattr(out, "logits") else out


def evaluate(model: nn.Module, dataset: str | None = None, split: str = "test",
             normalization: tuple[Sequence[float], Sequence[float]] | str | None = None,
             root: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0, batch_size: int = 500,
             return_logits: bool = False, inputs: tuple[torch.Tensor, torch.Tensor] | None = None) -> EvalResult:
    r"""Top-1 accuracy :math:`\frac1n \sum_i [\arg\max_c f(x_i)_c = y_i]` of ``model`` on a real data set.

    ``dataset`` and ``normalization`` default to the model's record (:func:`prune.models.eval_spec`);
    ``normalization="none"`` scores pixels / 255. A field that is neither given nor recorded is a ValueError
    (evaluation never guesses). ``inputs`` = (x, y) already loaded by :func:`load_inputs` skips the loading
    (to score several models on the same images; then the normalisation is the caller's). See
    :func:`load_inputs` for the other arguments.
    """
    from .models.specs import eval_spec

    rec_ds, rec_norm = eval_spec(model) if isinstance(model, nn.Module) else (None, None)
    if dataset is None:
        dataset = rec_ds
    if dataset is None:
        raise ValueError(f"evaluate: the data set of model ({type(model).__name__}) is not recorded; "
                         f"pass dataset= one of {sorted(DATASETS)}")
    key = _check_dataset(dataset)
    if inputs is None:
        if normalization is None:
            normalization = rec_norm
        if normalization is None:
            raise ValueError(f"evaluate: the input normalisation of model ({type(model).__name__}) is not recorded; "
                             'pass normalization=(mean, std) (one value per channel) or normalization="none" for '
                             "pixels / 255 only")
        x, y = load_inputs(key, split, normalization, root, limit, seed)
    else:
        x, y = inputs
    logits = predict(model, x, batch_size)
    if logits.ndim != 2 or logits.shape[0] != len(y):
        raise ValueError(f"model output must be (n, classes) logits, got shape {tuple(logits.shape)} for {len(y)} images")
    acc = float((logits.argmax(1) == y).float().mean()) if len(y) else float("nan")
    return EvalResult(acc, int(len(y)), key, split, logits if return_logits else None, y if return_logits else None)


def inference_time(model: nn.Module | Sequence[nn.Module], x: torch.Tensor, repeats: int = 7, warmup: int = 2,
                   threads: int | None = 1) -> dict | list[dict]:
    """CPU wall time of one forward pass on ``x`` (eval mode, no_grad): median, min and all ``repeats`` runs, in ms.

    Given a list of models, the runs are interleaved (model 1, model 2, ..., model 1, ...), so that a change in
    the load of a shared machine hits every model alike; one dict per model is returned. ``threads`` sets
    ``torch.set_num_threads`` for the measurement (restored afterwards); None leaves it.
    """
    import time

    models = [model] if isinstance(model, nn.Module) else list(model)
    if not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError("model must be an nn.Module or a non-empty sequence of them")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    modes = [m.training for m in models]
    times: list[list[float]] = [[] for _ in models]
    try:
        with torch.no_grad():
            for m in models:
                m.eval()
                for _ in range(warmup):
                    m(x)
            for _ in range(repeats):
                for m, t in zip(models, times):
                    t0 = time.perf_counter()
                    m(x)
                    t.append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(old)
        for m, mode in zip(models, modes):
            m.train(mode)
    out = [dict(median_ms=float(np.median(t)), min_ms=float(min(t)), runs_ms=t, batch=int(x.shape[0]), threads=threads)
           for t in times]
    return out[0] if isinstance(model, nn.Module) else out
