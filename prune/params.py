"""Parameter counts that count only what a model really stores."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_parameters", "count_nonzero"]


def _unique_tensors(model: nn.Module, include_buffers: bool):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seen: set[tuple[int, int]] = set()
    tensors = list(model.parameters())
    if include_buffers:
        tensors += [b for b in model.buffers() if b.is_floating_point()]
    for t in tensors:
        # tied weights are stored once; meta tensors (data_ptr 0) have no storage to compare: each counts
        key = ("meta", id(t)) if t.is_meta else (t.device, t.data_ptr(), t.numel())
        if key in seen:
            continue
        seen.add(key)
        yield t


def count_parameters(model: nn.Module, include_buffers: bool = False) -> int:
    """Number of stored parameter entries, each shared (tied) tensor counted once.

    A factorised layer counts k (N + M); a masked (zeroed) entry still counts: see :func:`count_nonzero`.
    ``include_buffers=True`` adds floating-point buffers (BatchNorm running statistics).
    """
    return int(sum(t.numel() for t in _unique_tensors(model, include_buffers)))


def count_nonzero(model: nn.Module, include_buffers: bool = False) -> int:
    """Number of stored parameter entries that are not exactly zero (the sparse-storage count)."""
    with torch.no_grad():
        return int(sum(int(torch.count_nonzero(t)) for t in _unique_tensors(model, include_buffers)))
