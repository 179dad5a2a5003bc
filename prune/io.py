r"""Save a pruned model and reload it to bit-identical outputs, without pickled code.

A pruned model is its base architecture with some layers replaced (factorised two-thin-layer forms,
recomposed dense layers) and, possibly, frozen sparsity masks. The file written by :func:`save_pruned`
holds only plain data, so it loads with ``torch.load(path, weights_only=True)``::

    {"format": "rmt-pruned", "version": 1,
     "recipe": "<JSON>",           # base architecture + list of layer replacements + mask names
     "state_dict": {...},          # every parameter and buffer, in its own dtype
     "masks": {name: bool tensor}} # sparsity masks (prune.sparsify), possibly empty

The recipe's ``base`` is the model's ``rmt_base`` record (set by :func:`prune.models.build_model` /
``load_model``, by :mod:`prune.hf` and by :func:`prune.models.resolve.resolve_model`): a registry name with its
keyword arguments, a Hugging Face config dict, or a user's ``file.py:Name`` / ``package.module:Name`` with its
keyword arguments (``{"kind": "module", "source": ..., "kwargs": ...}``), plus the data set and normalisation.
**Loading a file whose base is a user's module imports that module, which runs its code**; the state dict
itself is read with ``weights_only=True``. Each replacement names the module path, its type and its geometry (e.g.
``{"name": "classifier.0", "type": "FactorizedLinear", "in_features": 3136, "out_features": 128,
"rank": 44, "bias": true}``). :func:`load_pruned` builds the base, swaps the recorded layers in, and
loads the state dict strictly with ``assign=True`` (the saved tensors themselves, dtypes included).

Writes are atomic: the file is written to a temporary file in the target's directory, flushed and
fsynced, then moved over the target with ``os.replace``; a failed write leaves no partial file and the
previous file, if any, untouched.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from .layers import FactorizedConv2d, FactorizedLinear, set_submodule

__all__ = ["FORMAT", "VERSION", "PrunedFile", "model_recipe", "build_from_recipe", "save_pruned", "load_pruned",
           "read_pruned", "atomic_torch_save"]

FORMAT, VERSION = "rmt-pruned", 1
_SUPPORTED = (FactorizedLinear, FactorizedConv2d, nn.Linear, nn.Conv2d)


def _pair(v) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [int(v), int(v)]


def _layer_record(name: str, m: nn.Module) -> dict:
    """Type and geometry of a replacement layer (enough to construct an empty one)."""
    if isinstance(m, FactorizedLinear):
        return dict(name=name, type="FactorizedLinear", in_features=m.in_features, out_features=m.out_features,
                    rank=m.rank, bias=m.second.bias is not None)
    if isinstance(m, FactorizedConv2d):
        c = m.first
        return dict(name=name, type="FactorizedConv2d", in_channels=m.in_channels, out_channels=m.out_channels,
                    rank=m.rank, kernel_size=_pair(c.kernel_size), stride=_pair(c.stride),
                    padding=c.padding if isinstance(c.padding, str) else _pair(c.padding), dilation=_pair(c.dilation),
                    bias=m.second.bias is not None, padding_mode=c.padding_mode)
    if isinstance(m, nn.Linear):
        return dict(name=name, type="Linear", in_features=m.in_features, out_features=m.out_features,
                    bias=m.bias is not None)
    if isinstance(m, nn.Conv2d):
        return dict(name=name, type="Conv2d", in_channels=m.in_channels, out_channels=m.out_channels,
                    kernel_size=_pair(m.kernel_size), stride=_pair(m.stride),
                    padding=m.padding if isinstance(m.padding, str) else _pair(m.padding), dilation=_pair(m.dilation),
                    groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode)
    raise TypeError(f"cannot save layer {name!r} of type {type(m).__name__}: a pruned model may replace layers only "
                    f"by {', '.join(t.__name__ for t in _SUPPORTED)}")


def _make_layer(rec: dict) -> nn.Module:
    kind = rec.get("type")
    if kind == "FactorizedLinear":
        return FactorizedLinear(rec["in_features"], rec["out_features"], rec["rank"], bias=rec["bias"])
    if kind == "FactorizedConv2d":
        return FactorizedConv2d(rec["in_channels"], rec["out_channels"], rec["rank"], tuple(rec["kernel_size"]),
                                stride=tuple(rec["stride"]), padding=_padding(rec["padding"]),
                                dilation=tuple(rec["dilation"]), bias=rec["bias"], padding_mode=rec["padding_mode"])
    if kind == "Linear":
        return nn.Linear(rec["in_features"], rec["out_features"], bias=rec["bias"])
    if kind == "Conv2d":
        return nn.Conv2d(rec["in_channels"], rec["out_channels"], tuple(rec["kernel_size"]), stride=tuple(rec["stride"]),
                         padding=_padding(rec["padding"]), dilation=tuple(rec["dilation"]), groups=rec["groups"],
                         bias=rec["bias"], padding_mode=rec["padding_mode"])
    raise ValueError(f"recipe names an unknown layer type {kind!r} at {rec.get('name')!r}")


def _padding(p):
    return p if isinstance(p, str) else tuple(p)


def build_base(base: Mapping) -> nn.Module:
    """The (untrained) base architecture a recipe's ``base`` record describes, with ``rmt_base`` set."""
    if not isinstance(base, Mapping):
        raise TypeError(f"base must be a dict (a model's rmt_base record), got {type(base).__name__}")
    kind = base.get("kind")
    if kind == "registry":
        from .models.registry import build_model

        model = build_model(base["name"], **base.get("kwargs", {}))
    elif kind == "hf-vit":
        from .hf import hf_vit_from_config

        model = hf_vit_from_config(base["config"])
    elif kind == "timm":  # pragma: no cover - timm is not importable here (prune.hf)
        from .hf import timm_vit

        model = timm_vit(base["name"], **base.get("kwargs", {}))
    elif kind == "module":
        # A user's 'file.py:Name' / 'package.module:Name': importing it RUNS that file's or module's code.
        from .models.resolve import build_from_source

        model = build_from_source(base["source"], base.get("kwargs", {}))
    elif kind == "torchscript":
        raise ValueError("a TorchScript model cannot be saved or rebuilt in the rmt-pruned format; load its Python "
                         "class as 'file.py:Name' with --weights instead")
    else:
        raise ValueError(f"base kind must be 'registry', 'hf-vit', 'timm' or 'module', got {kind!r}")
    model.rmt_base = json.loads(json.dumps(dict(base)))
    return model


def _same_geometry(a: nn.Module, b: nn.Module, name: str) -> bool:
    try:
        return type(a) is type(b) and _layer_record(name, a) == _layer_record(name, b)
    except TypeError:
        return type(a) is type(b)


def model_recipe(model: nn.Module, base: Mapping | None = None, masks: Mapping[str, torch.Tensor] | None = None
                 ) -> tuple[dict, nn.Module]:
    """(recipe, rebuilt empty model) for ``model``: its base record and the layers that differ from the base.

    A module whose type or geometry differs from the base's module at the same path is a replacement; it must be
    one of FactorizedLinear, FactorizedConv2d, nn.Linear, nn.Conv2d (else TypeError naming it).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    base = base if base is not None else getattr(model, "rmt_base", None)
    if base is None:
        raise ValueError(f"model ({type(model).__name__}) has no rmt_base record of where it came from: load it "
                         "with prune.models.resolve.resolve_model('file.py:Name', weights=...) or pass base= (e.g. "
                         "prune.models.resolve.source_record('pkg.module:Name', kwargs) or "
                         "prune.models.registry.base_spec('mnist-cnn'))")
    rebuilt = build_base(base)
    ref = dict(rebuilt.named_modules())
    replacements, replaced = [], []
    for name, m in model.named_modules():
        if not name or any(name.startswith(r + ".") for r in replaced):
            continue
        old = ref.get(name)
        if old is not None and _same_geometry(m, old, name):
            continue
        if old is None and not isinstance(m, _SUPPORTED):
            raise TypeError(f"cannot save module {name!r} ({type(m).__name__}): it is not in the base architecture "
                            f"and not one of {', '.join(t.__name__ for t in _SUPPORTED)}")
        rec = _layer_record(name, m)
        replacements.append(rec)
        replaced.append(name)
        set_submodule(rebuilt, name, _make_layer(rec))
    recipe = dict(format=FORMAT, version=VERSION, base=json.loads(json.dumps(dict(base))), replacements=replacements,
                  masks=sorted(masks) if masks else [], dtype=str(next(model.parameters()).dtype).split(".")[-1])
    return recipe, rebuilt


def build_from_recipe(recipe: Mapping) -> nn.Module:
    """The empty model of a recipe: the base architecture with the recorded layers swapped in."""
    if recipe.get("format") != FORMAT:
        raise ValueError(f"not an {FORMAT} recipe (format {recipe.get('format')!r})")
    if recipe.get("version") != VERSION:
        raise ValueError(f"recipe version {recipe.get('version')!r} is not supported (this code reads {VERSION})")
    model = build_base(recipe["base"])
    for rec in recipe.get("replacements", []):
        set_submodule(model, rec["name"], _make_layer(rec))
    return model


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same directory and ``os.replace`` (atomic)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"path's directory {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def save_pruned(model: nn.Module, path: str | os.PathLike, *, base: Mapping | None = None,
                masks: Mapping[str, torch.Tensor] | None = None, extra: Mapping | None = None) -> Path:
    """Write ``model`` (pruned or not) to ``path`` atomically, as a recipe plus its state dict.

    Parameters
    ----------
    model : nn.Module
        A model with an ``rmt_base`` record (from :mod:`prune.models` or :mod:`prune.hf`) or ``base`` given.
    path : file to write (its directory must exist)
    base : the base record, overriding ``model.rmt_base``
    masks : {parameter name: bool tensor}, the frozen sparsity masks (:mod:`prune.sparsify`) to keep with it
    extra : JSON-able metadata stored in the recipe (e.g. the pruning method and its options)

    Raises
    ------
    TypeError
        A layer type that cannot be recorded (the message names the layer).
    ValueError
        No base record; masks that do not match the model's parameters.
    """
    recipe, rebuilt = model_recipe(model, base, masks)
    if extra:
        recipe["extra"] = json.loads(json.dumps(dict(extra)))
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want != have:
        diff = sorted(set(want.items()) ^ set(have.items()))[:6]
        raise ValueError(f"the model's state dict does not match its recipe (first differences: {diff})")
    mask_t = {}
    if masks:
        params = dict(model.named_parameters())
        for name, m in masks.items():
            if name not in params or not isinstance(m, torch.Tensor) or m.dtype != torch.bool \
                    or tuple(m.shape) != tuple(params[name].shape):
                raise ValueError(f"masks[{name!r}] must be a bool tensor of an existing parameter's shape")
            mask_t[name] = m.detach().cpu().clone()
    return atomic_torch_save(dict(format=FORMAT, version=VERSION, recipe=json.dumps(recipe), state_dict=state,
                                  masks=mask_t), path)


@dataclass
class PrunedFile:
    """What :func:`read_pruned` returns: the rebuilt model, its recipe and its masks."""

    model: nn.Module
    recipe: dict
    masks: dict = field(default_factory=dict)


def read_pruned(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> PrunedFile:
    """Load a file written by :func:`save_pruned` (``weights_only=True``); the model is in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    blob = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not an {FORMAT} file (saved by prune.io.save_pruned)")
    recipe = json.loads(blob["recipe"])
    model = build_from_recipe(recipe)
    model.load_state_dict(blob["state_dict"], strict=True, assign=True)
    model.eval()
    return PrunedFile(model, recipe, dict(blob.get("masks", {})))


def load_pruned(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model saved at ``path`` by :func:`save_pruned`, in eval mode (masks: :func:`read_pruned`)."""
    return read_pruned(path, map_location).model
