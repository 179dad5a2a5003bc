"""Build a model from a recorded source: a class or factory ``Name`` in ``path/to/file.py:Name`` or ``package.module:Name``.

**Importing the file or module runs its code**: name only code you trust. :func:`build_from_source` is what both
:func:`prune.models.resolve.resolve_model` (a MODEL string) and :mod:`prune.io` (a saved file whose base is
``{"kind": "module", "source": ...}``) call; it imports nothing from either, so neither import goes back up.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Mapping

from torch import nn

from ..errors import ModelFileError

__all__ = ["import_object", "build_from_source"]


def _file_module(path: Path):
    """Import a .py file as a module (name derived from its absolute path, so two files never collide)."""
    path = path.resolve()
    name = f"rmt_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelFileError(path, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, str(path.parent))  # its sibling imports work as when run as a script
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(path.parent))
    return module


def import_object(source: str):
    """The object ``Name`` of ``path/to/file.py:Name`` or ``package.module:Name`` (runs the module's code)."""
    where, sep, attr = source.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError(f"model source must be 'path/to/file.py:Name' or 'package.module:Name', got {source!r}")
    if where.endswith(".py"):
        path = Path(where).expanduser()
        if not path.is_file():
            raise ValueError(f"model source {source!r}: {where} is not a file")
        module = _file_module(path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise ValueError(f"model source {source!r}: cannot import module {where!r} ({err})") from err
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"model source {source!r}: {where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def build_from_source(source: str, kwargs: Mapping | None = None) -> nn.Module:
    """``Name(**kwargs)`` of ``source`` (a class or a factory), which must be an ``nn.Module``."""
    kwargs = dict(kwargs or {})
    obj = import_object(source)
    if not callable(obj):
        raise TypeError(f"model source {source!r} names a {type(obj).__name__}, not a class or factory")
    try:
        model = obj(**kwargs)
    except TypeError as err:
        raise TypeError(f"model source {source!r} could not be called with keyword arguments {kwargs}: {err}") from err
    if not isinstance(model, nn.Module):
        raise TypeError(f"model source {source!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model
