"""One resolver from a MODEL string to (module, input specification), for every command that takes a model.

MODEL may be

===============================  ==================================================================================
``mnist-cnn``, ``resnet20``...   a registered name (:mod:`prune.models.registry`)
``path/to/file.py:Name``         a class or factory ``Name`` defined in a Python file (``Name`` may be dotted)
``package.module:Name``          the same from an importable module
``timm:NAME``                    ``timm.create_model(NAME, pretrained=False)`` (needs timm)
a file written by ``rmt prune``  a pruned model (:func:`prune.io.load_pruned`)
a TorchScript file               ``torch.jit.load`` (analysis only: its layers cannot be replaced)
a directory                      a Hugging Face ``save_pretrained`` ViT (:mod:`prune.hf`)
===============================  ==================================================================================

``Name`` is called with ``model_kwargs`` (a class, or a factory returning an ``nn.Module``); ``weights`` is a state
dict (``.pt`` / ``.pth`` / ``.bin``, read with ``torch.load(weights_only=True)``, or ``.safetensors``) loaded
strictly. **Importing the file or module runs its code**, now and again whenever a file saved from the model is
loaded (:func:`prune.io.load_pruned` rebuilds the architecture from it): name only code you trust. A whole pickled
model (``torch.save(model)``) is refused: unpickling it would run arbitrary code from the file itself.

The input specification (:class:`InputSpec`) is the data set and the normalisation the model is scored on: from
the registry or the saved file's record, overridden by ``dataset`` / ``mean`` / ``std`` / ``normalize=False``.
Nothing is guessed: an unknown field stays unknown and :meth:`InputSpec.require` says what is missing.

Building ``Name`` from its source is :mod:`prune.models.source` (shared with :mod:`prune.io`, which rebuilds saved
models from it); the registered names are :mod:`prune.models.registry`.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from ..errors import ModelFileError
from ..io import FORMAT
from .registry import MODEL_SPECS, load_model
from .source import build_from_source, import_object

__all__ = ["InputSpec", "resolve_model", "import_object", "build_from_source", "load_state_dict_file",
           "source_record", "input_spec", "parse_floats"]

DATASETS = ("mnist", "fashion-mnist", "cifar10")


@dataclass(frozen=True)
class InputSpec:
    """Data set and input normalisation of a model: pixels / 255, then (x - mean_c) / std_c per channel.

    ``normalization`` is ``((mean...), (std...))``, the string ``"none"`` (pixels / 255 only, chosen explicitly),
    or None (unknown).
    """

    dataset: str | None = None
    normalization: tuple | str | None = None

    def missing(self) -> list[str]:
        """What evaluation still needs, as command-line options."""
        out = []
        if self.dataset is None:
            out.append("--dataset mnist|fashion-mnist|cifar10")
        if self.normalization is None:
            out.append("--mean M --std S (per channel, comma-separated) or --no-normalize")
        return out

    def require(self, what: str = "model", alternative: str = "") -> tuple[str, tuple | str]:
        """(dataset, normalization), or a one-line ValueError naming what is missing (and ``alternative``)."""
        miss = self.missing()
        if miss:
            raise ValueError(f"{what}: the inputs it is scored on are not known; pass {' and '.join(miss)}"
                             + (f" ({alternative})" if alternative else ""))
        return self.dataset, self.normalization

    def record(self) -> dict:
        norm = self.normalization
        return dict(dataset=self.dataset, normalization=[list(v) for v in norm] if isinstance(norm, tuple) else norm)


def parse_floats(name: str, text: str | Sequence[float]) -> tuple[float, ...]:
    """``"0.485,0.456,0.406"`` -> (0.485, 0.456, 0.406); ValueError naming ``name`` otherwise."""
    if isinstance(text, str):
        try:
            vals = tuple(float(t) for t in text.split(","))
        except ValueError:
            raise ValueError(f"{name} must be comma-separated numbers (one per channel), got {text!r}") from None
    else:
        vals = tuple(float(v) for v in text)
    if not vals or not all(v == v and abs(v) != float("inf") for v in vals):
        raise ValueError(f"{name} must be finite numbers, got {text!r}")
    return vals


def input_spec(base: Mapping | None, dataset: str | None = None, mean=None, std=None,
               normalize: bool | None = None) -> InputSpec:
    """The input specification of a model record ``base`` (its ``rmt_base``) with explicit overrides."""
    base = base or {}
    ds = dataset if dataset is not None else base.get("dataset")
    if ds is not None and ds not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {ds!r}")
    rec = base.get("normalization")
    norm = tuple(tuple(float(x) for x in v) for v in rec) if isinstance(rec, (list, tuple)) else rec
    if norm is not None and not isinstance(norm, tuple) and norm != "none":
        raise ValueError(f"a recorded normalization must be [mean, std] or 'none', got {rec!r}")
    if (mean is None) != (std is None):
        raise ValueError(f"mean and std go together: got mean={mean!r}, std={std!r}")
    if normalize is False:
        if mean is not None:
            raise ValueError("--no-normalize contradicts --mean/--std: pass one or the other")
        norm = "none"
    elif mean is not None:
        m, s = parse_floats("mean", mean), parse_floats("std", std)
        if len(m) != len(s):
            raise ValueError(f"mean and std need one value per channel each, got {len(m)} and {len(s)}")
        if not all(v > 0 for v in s):
            raise ValueError(f"std must be > 0, got {std!r}")
        norm = (m, s)
    return InputSpec(ds, norm)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())


_WHOLE_MODEL = ("holds a whole pickled model (torch.save(model)); loading it would run arbitrary code from the file, "
                "so it is refused. Save model.state_dict() instead and pass the class: "
                "path/to/file.py:Name --weights FILE (or package.module:Name --weights FILE)")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _torch_load(path: Path):
    import pickle

    if path.stat().st_size == 0:
        raise ModelFileError(path, "is empty")

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err) or "weights_only" in str(err.__class__.__name__ + str(err)):
            raise ModelFileError(path, _WHOLE_MODEL) from None
        raise ModelFileError(path, f"is not a readable PyTorch file ({_first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - a corrupt file makes torch's reader raise anything (IndexError,
        # AssertionError, KeyError, ... found by the file fuzz): all of them mean "not a readable file"
        raise ModelFileError(path, f"is not a readable PyTorch file (truncated or corrupt: {type(err).__name__}: "
                                   f"{_first_line(err)})") from None


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a ``torch.save`` file (``weights_only=True``).

    Common wrappers are unwrapped: ``{"state_dict": ...}`` / ``{"model_state_dict": ...}`` / ``{"model": ...}``,
    and a ``module.`` prefix on every key (``nn.DataParallel``).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelFileError(path, "weights file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelFileError(path, f"is not a readable safetensors file ({err})") from None
    else:
        if _is_torchscript(path):
            raise ModelFileError(path, "is a TorchScript file, not a state dict; pass it as MODEL (analysis only)")
        state = _torch_load(path)
        if isinstance(state, dict):
            for key in ("state_dict", "model_state_dict", "model"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelFileError(path, "is not a state dict (a mapping of parameter names to tensors)")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def source_record(source: str, kwargs: Mapping | None = None, spec: InputSpec | None = None) -> dict:
    """The ``rmt_base`` record of a model built by :func:`build_from_source` (what :mod:`prune.io` saves).

    A file source is recorded by its absolute path. Rebuilding it imports (runs) that file or module again.
    """
    where, _, attr = source.rpartition(":")
    if where.endswith(".py"):
        where = str(Path(where).expanduser().resolve())
    rec = dict(kind="module", source=f"{where}:{attr}", kwargs=json.loads(json.dumps(dict(kwargs or {}))))
    rec.update((spec or InputSpec()).record())
    return rec


def _timm(name: str, kwargs: Mapping) -> nn.Module:
    from ..hf import timm_available

    if not timm_available():
        raise ValueError(f"timm:{name} needs the timm package, which cannot be imported here (pip install timm)")
    import timm  # pragma: no cover - not importable here

    model = timm.create_model(name, pretrained=False, **kwargs)  # pragma: no cover
    model.rmt_base = dict(kind="timm", name=name, kwargs=dict(kwargs), dataset=None, normalization=None)
    return model  # pragma: no cover


def resolve_model(model: str | os.PathLike, *, weights: str | os.PathLike | None = None,
                  model_kwargs: Mapping | str | None = None, dataset: str | None = None, mean=None, std=None,
                  normalize: bool | None = None, allow_torchscript: bool = False) -> tuple[nn.Module, InputSpec]:
    """(model in eval mode with ``rmt_base`` set, its :class:`InputSpec`) for any MODEL string (module docstring).

    Parameters
    ----------
    model : registered name, ``file.py:Name``, ``package.module:Name``, ``timm:NAME``, pruned file, TorchScript
        file or Hugging Face directory.
    weights : state dict file for ``module:Name`` sources (``.pt``/``.pth``/``.bin``/``.safetensors``).
    model_kwargs : dict or JSON object string: keyword arguments of ``Name`` (or of ``timm.create_model``).
    dataset, mean, std, normalize : the inputs (override the record; ``normalize=False``: pixels / 255 only).
    allow_torchscript : accept a TorchScript file (its layers can be analysed, not replaced).

    Raises
    ------
    ValueError, TypeError
        An unknown model, bad keyword arguments, an inconsistent input specification.
    ModelFileError
        A weights or model file that is unreadable, a whole pickled model, a state dict that does not match.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a str or path, got {type(model).__name__}")
    key = os.fspath(model)
    if isinstance(model_kwargs, str):
        try:
            model_kwargs = json.loads(model_kwargs)
        except json.JSONDecodeError as err:
            raise ValueError(f"model_kwargs must be a JSON object, got {model_kwargs!r} ({err})") from None
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs must be a JSON object (a dict), got {type(model_kwargs).__name__}")
    kwargs = dict(model_kwargs or {})
    path = Path(key).expanduser()
    source = key.startswith("timm:") or (":" in key and key not in MODEL_SPECS and not path.exists())
    if (weights is not None or kwargs) and not source:
        raise ValueError(f"--weights and --model-kwargs apply to a 'file.py:Name' or 'package.module:Name' model, "
                         f"not to {key!r}")
    if key.startswith("timm:"):
        net = _timm(key[len("timm:"):], kwargs)
    elif source:
        net = build_from_source(key, kwargs)
        if weights is not None:
            state = load_state_dict_file(weights)
            try:
                result = net.load_state_dict(state, strict=False)
            except RuntimeError as err:  # shape mismatches
                raise ModelFileError(weights, f"does not match {key}: {' '.join(str(err).split())[:300]}") from None
            if result.missing_keys or result.unexpected_keys:
                raise ModelFileError(weights, f"does not match {key}: missing keys {result.missing_keys[:5]}, "
                                              f"unexpected keys {result.unexpected_keys[:5]}")
        net.rmt_base = source_record(key, kwargs)
    elif key in MODEL_SPECS:
        net = load_model(key)
    elif path.is_dir():
        net = load_model(path)
    elif path.is_file():
        if _is_torchscript(path):
            if not allow_torchscript:
                raise ModelFileError(path, "is a TorchScript file: it can be analysed (rmt analyze) but not pruned, "
                                           "since its layers cannot be replaced; pass the Python class as "
                                           "path/to/file.py:Name --weights FILE to prune it")
            net = torch.jit.load(str(path), map_location="cpu")
            net.rmt_base = dict(kind="torchscript", dataset=None, normalization=None)
        else:
            blob = _torch_load(path)
            if isinstance(blob, dict) and blob.get("format") == FORMAT:
                net = load_model(path)
            elif isinstance(blob, dict) and blob and all(isinstance(v, torch.Tensor) for v in blob.values()):
                raise ModelFileError(path, "is a state dict (weights without an architecture): name the "
                                           "architecture as path/to/file.py:Name (or package.module:Name) and pass "
                                           "this file as --weights")
            else:
                raise ModelFileError(path, "is neither an rmt-pruned file, a state dict nor a TorchScript file")
    else:
        raise ValueError(f"model {key!r} is neither a known name ({', '.join(sorted(MODEL_SPECS))}) nor "
                         "'file.py:Name', 'package.module:Name', 'timm:NAME', an existing file or directory")
    spec = input_spec(getattr(net, "rmt_base", None), dataset, mean, std, normalize)
    if isinstance(getattr(net, "rmt_base", None), dict):
        net.rmt_base.update(spec.record())  # what a saved copy records
    return net.eval(), spec
