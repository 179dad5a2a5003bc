"""Output paths of a command: never an input of the same command, never another of its outputs, never a file of
the data sets, the checkpoints or the package's weights (the "no data loss" rule of the command line)."""
from __future__ import annotations

import os
from pathlib import Path


def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(p))))


def protected_roots(data_dir: str | None = None) -> list[tuple[str, Path]]:
    """(description, folder) of the folders whose files a command must never overwrite."""
    from prune.data import data_root
    from prune.models.mnist_cnn import models_root
    from prune.models.vit import WEIGHTS_DIR

    roots = [("data-set folder", data_root(data_dir)), ("checkpoint folder", models_root()),
             ("package weights folder", WEIGHTS_DIR), ("rmt-pruning cache", Path.home() / ".cache" / "rmt-pruning")]
    return [(what, _real(p)) for what, p in roots]


def check_outputs(outputs: dict[str, str | None], inputs: dict[str, str | os.PathLike] | None = None,
                  data_dir: str | None = None) -> None:
    """Refuse output paths that would lose data.

    Parameters
    ----------
    outputs : {option name (e.g. "--out"): path or None}
    inputs : {description: path} of files the command reads (the model file, its weights)

    Raises
    ------
    ValueError
        An output names a directory or an empty path, two outputs name the same file, an output is one of the
        inputs, or an output would overwrite an existing file inside a protected folder.
    """
    seen: dict[Path, str] = {}
    ins = {_real(p): what for what, p in (inputs or {}).items() if p}
    roots = protected_roots(data_dir)
    for option, value in outputs.items():
        if value is None:
            continue
        if not str(value).strip():
            raise ValueError(f"{option} must be a non-empty path")
        real = _real(value)
        if real.is_dir():
            raise ValueError(f"{option} {value!r} is a directory; name a file")
        if real in seen:
            raise ValueError(f"{option} and {seen[real]} name the same file {value!r}; give each its own path")
        seen[real] = option
        if real in ins:
            raise ValueError(f"{option} {value!r} is the {ins[real]} this command reads; write elsewhere")
        if real.exists():
            for what, root in roots:
                if real.is_relative_to(root):
                    raise ValueError(f"{option} {value!r} would overwrite a file in the {what} {root}; write "
                                     "elsewhere")
