r"""Save a pruned model and reload it to bit-identical outputs, without pickled code.

A pruned model is its base architecture with some layers replaced (factorised two-thin-layer forms,
recomposed dense layers) and, possibly, frozen sparsity masks. The file written by :func:`save_pruned`
holds only plain data, so it loads with ``torch.load(path, weights_only=True)``::

    {"format": "rmt-pruned", "version": 1,
     "recipe": "<JSON>",           # base architecture + list of layer replacements + mask names
     "state_dict": {...},          # every parameter and buffer, in its own dtype
     "masks": {name: bool tensor}} # sparsity masks (prune.masks), possibly empty

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
fsynced, then moved over the target with ``os.replace``; a failed or interrupted write (an exception,
Ctrl-C, or SIGTERM under the ``rmt`` command) leaves no partial file and the previous file, if any,
untouched. A new file gets the mode the umask allows (as ``open`` would give it); an existing file keeps
its mode.

Integrity (format version 2): the file carries ``sha256``, a SHA-256 over the recipe and every tensor
(name, dtype, shape and bytes of the state dict and the masks, in sorted order). :func:`read_pruned`
recomputes it and refuses a file whose tensors changed. Before any layer is allocated, the recipe is
built on the ``meta`` device and its parameter names and shapes are compared with the stored tensors, so
a recipe cannot ask for more memory than the file holds. Every refusal is a
:class:`prune.errors.ModelFileError` naming the file and the problem. Version 1 files (no checksum)
still load.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from .errors import ModelFileError
from .layers import FactorizedConv2d, FactorizedLinear, set_submodule

__all__ = ["FORMAT", "VERSION", "PrunedFile", "model_recipe", "build_from_recipe", "save_pruned", "load_pruned",
           "read_pruned", "atomic_torch_save", "atomic_write_text", "state_sha256"]

FORMAT, VERSION = "rmt-pruned", 2
_READABLE = (1, 2)
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
    # Imported when a base is built, not with this module: prune.models' __init__ imports prune.models.registry,
    # which imports this module (load_pruned). specs and source themselves import nothing from prune.io.
    if kind == "registry":
        from .models.specs import build_model

        model = build_model(base["name"], **base.get("kwargs", {}))
    elif kind == "hf-vit":
        from .hf import hf_vit_from_config

        model = hf_vit_from_config(base["config"])
    elif kind == "timm":  # pragma: no cover - timm is not importable here (prune.hf)
        from .hf import timm_vit

        model = timm_vit(base["name"], **base.get("kwargs", {}))
    elif kind == "module":
        # A user's 'file.py:Name' / 'package.module:Name': importing it RUNS that file's or module's code.
        from .models.source import build_from_source

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
                         "prune.models.specs.base_spec('mnist-cnn'))")
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
    if recipe.get("version") not in _READABLE:
        raise ValueError(f"recipe version {recipe.get('version')!r} is not supported (this code reads {_READABLE})")
    model = build_base(recipe["base"])
    for rec in recipe.get("replacements", []):
        set_submodule(model, rec["name"], _make_layer(rec))
    return model


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it over ``path``.

    The result has the mode of the file it replaces, else ``0o666 & ~umask``; the temporary file is removed on
    any exception, ``KeyboardInterrupt`` and ``SystemExit`` included.
    """
    path = Path(path)
    if not path.name:
        raise ValueError(f"path {str(path)!r} names no file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"path's directory {folder} does not exist")
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory")
    mode = (path.stat().st_mode & 0o7777) if path.is_file() else (0o666 & ~_umask())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same directory and ``os.replace`` (atomic)."""
    return _atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`atomic_torch_save`."""
    return _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def state_sha256(recipe_json: str, state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the recipe text and every tensor's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256(recipe_json.encode("utf-8"))
    for part, tensors in (("state_dict", state), ("masks", masks)):
        for name in sorted(tensors):
            t = tensors[name].detach().cpu().contiguous()
            h.update(f"\0{part}\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _check_masks(masks: Mapping, params: Mapping[str, torch.Tensor], where: str) -> dict:
    """{name: bool tensor} after checking that every mask names a parameter and has its shape."""
    out = {}
    for name, m in masks.items():
        if name not in params:
            raise ValueError(f"{where}[{name!r}] names no parameter of the model")
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or tuple(m.shape) != tuple(params[name].shape):
            raise ValueError(f"{where}[{name!r}] must be a bool tensor of shape {tuple(params[name].shape)}")
        out[name] = m.detach().cpu().clone()
    return out


def save_pruned(model: nn.Module, path: str | os.PathLike, *, base: Mapping | None = None,
                masks: Mapping[str, torch.Tensor] | None = None, extra: Mapping | None = None) -> Path:
    """Write ``model`` (pruned or not) to ``path`` atomically, as a recipe plus its state dict and a SHA-256.

    Parameters
    ----------
    model : nn.Module
        A model with an ``rmt_base`` record (from :mod:`prune.models` or :mod:`prune.hf`) or ``base`` given.
    path : file to write (its directory must exist)
    base : the base record, overriding ``model.rmt_base``
    masks : {parameter name: bool tensor}, the frozen sparsity masks (:mod:`prune.masks`) to keep with it
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
    mask_t = _check_masks(masks or {}, dict(model.named_parameters()), "masks")
    text = json.dumps(recipe)
    return atomic_torch_save(dict(format=FORMAT, version=VERSION, recipe=text, state_dict=state, masks=mask_t,
                                  sha256=state_sha256(text, state, mask_t)), path)


@dataclass
class PrunedFile:
    """What :func:`read_pruned` returns: the rebuilt model, its recipe and its masks."""

    model: nn.Module
    recipe: dict
    masks: dict = field(default_factory=dict)


def _torch_load(path: Path, map_location) -> object:
    """``torch.load(weights_only=True)`` with every failure turned into a ModelFileError naming ``path``."""
    if path.stat().st_size == 0:
        raise ModelFileError(path, "the file is empty")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, which would run code from the file: never show it
        raise ModelFileError(path, "the file holds objects other than tensors and plain data (it is not an "
                                   f"{FORMAT} file; loading it would run code from it, which is refused)") from None
    except Exception as err:  # noqa: BLE001 - a corrupt file makes torch's reader raise anything (the fuzz found
        # IndexError, AssertionError, KeyError, ...): all of them mean "not a readable torch file"
        raise ModelFileError(path, f"not a readable torch file ({type(err).__name__}: "
                                   f"{str(err).splitlines()[0][:160] if str(err) else 'truncated or corrupt'})"
                             ) from None


def _as_dict_of_tensors(path: Path, value, what: str) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in value.items()):
        raise ModelFileError(path, f"{what} is not a dict of named tensors")
    return value


def _blob_parts(path: Path, blob) -> tuple[dict, dict, dict]:
    """(recipe, state dict, masks) of a loaded file after the format, version and checksum checks."""
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelFileError(path, f"not an {FORMAT} file (saved by prune.io.save_pruned)")
    version = blob.get("version")
    if version not in _READABLE:
        raise ModelFileError(path, f"{FORMAT} version {version!r} is not supported (this code reads {_READABLE})")
    text = blob.get("recipe")
    if not isinstance(text, str):
        raise ModelFileError(path, "the file has no recipe")
    state = _as_dict_of_tensors(path, blob.get("state_dict"), "state_dict")
    masks = _as_dict_of_tensors(path, blob.get("masks", {}), "masks")
    if version >= 2:
        stored = blob.get("sha256")
        if not isinstance(stored, str):
            raise ModelFileError(path, "the file has no sha256 checksum")
        if state_sha256(text, state, masks) != stored:
            raise ModelFileError(path, "SHA-256 checksum mismatch: the tensors or the recipe changed after saving "
                                       "(the file is corrupt)")
    try:
        recipe = json.loads(text)
    except ValueError as err:
        raise ModelFileError(path, f"the recipe is not valid JSON ({err})") from None
    if not isinstance(recipe, dict):
        raise ModelFileError(path, "the recipe is not a JSON object")
    return recipe, state, masks


def _build_checked(path: Path, recipe: dict, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Build the recipe's model after checking, on the meta device, that it matches the stored tensors."""
    try:
        with torch.device("meta"):
            shell = build_from_recipe(recipe)
    except ImportError as err:
        raise ModelFileError(path, f"the recipe's base model needs a package that is not importable ({err})") from None
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError, OverflowError) as err:
        raise ModelFileError(path, f"the recipe does not describe a model this code can build "
                                   f"({type(err).__name__}: {err})") from None
    want = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want != have:
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        shapes = sorted(k for k in set(want) & set(have) if want[k] != have[k])
        parts = [f"missing {missing[:4]}" if missing else "", f"unexpected {extra[:4]}" if extra else "",
                 f"wrong shape {[(k, have[k], want[k]) for k in shapes[:3]]}" if shapes else ""]
        raise ModelFileError(path, "the state dict does not match the recipe's architecture: "
                                   + "; ".join(p for p in parts if p))
    dtype = recipe.get("dtype")
    for k, v in state.items():
        ref = shell.state_dict()[k]
        if v.is_floating_point() != ref.is_floating_point():
            raise ModelFileError(path, f"tensor {k!r} has dtype {v.dtype}, expected a "
                                       f"{'floating' if ref.is_floating_point() else 'non-floating'} dtype")
        if dtype and v.is_floating_point() and str(v.dtype).split(".")[-1] != dtype:
            raise ModelFileError(path, f"tensor {k!r} has dtype {v.dtype} but the recipe records {dtype}")
    return build_from_recipe(recipe)


def read_pruned(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> PrunedFile:
    """Load a file written by :func:`save_pruned` (``weights_only=True``); the model is in eval mode.

    Raises
    ------
    prune.errors.ModelFileError
        The file is empty, truncated, not an rmt-pruned file, fails its SHA-256 check, its recipe does not match
        its tensors, or its masks name parameters that do not exist (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    recipe, state, masks = _blob_parts(path, _torch_load(path, map_location))
    model = _build_checked(path, recipe, state)
    model.load_state_dict(state, strict=True, assign=True)
    try:
        masks = _check_masks(masks, dict(model.named_parameters()), "masks")
    except ValueError as err:
        raise ModelFileError(path, str(err)) from None
    if sorted(masks) != sorted(recipe.get("masks", [])):
        raise ModelFileError(path, "the masks stored differ from those the recipe lists")
    model.eval()
    return PrunedFile(model, recipe, masks)


def load_pruned(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model saved at ``path`` by :func:`save_pruned`, in eval mode (masks: :func:`read_pruned`)."""
    return read_pruned(path, map_location).model
