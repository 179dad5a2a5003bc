"""The registered pretrained checkpoints: where they come from, their SHA-256, and where they are kept.

A checkpoint ``rel`` (e.g. ``cifar10-resnet/resnet20-12fca82f.th``) is looked for in

1. the ``root`` argument, else ``$RMT_MODELS_DIR`` (an override: nothing is downloaded there);
2. ``$RMT_DATA_DIR/../models`` when the file is there (the shared layout: ``data/`` next to ``models/``);
3. the cache ``~/.cache/rmt-pruning/models`` (``$RMT_CACHE_DIR/models`` when set), downloaded on first use from
   its public origin (:data:`CHECKPOINTS`) through a temporary file, kept only if its SHA-256 matches.

Every file is checked against its SHA-256 before it is loaded (a few ms for these sizes); a mismatch is a
:class:`prune.errors.ModelFileError`. A failed download names the URL and the place to put the file by hand.
The CIFAR ResNets are Yerlan Idelbayev's (BSD-2, github.com/akamaster/pytorch_resnet_cifar10; the hex in each
file name is the first 8 digits of its SHA-256); the MNIST CNN is the FYS-8805 Collaborative-Coding exam's
``src/weights/mnist.pth`` (MIT).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from ..errors import ModelFileError

__all__ = ["CHECKPOINTS", "cache_dir", "models_root", "checkpoint_path", "sha256sum", "fetch_url"]

_AKAMASTER = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
_FYS8805 = ("https://raw.githubusercontent.com/FYS-8805-Collaborative-Coding/Collaborative-Coding-Exam/"
            "c16e1741a92e316648cee445fc6b37779e311411/src/weights/mnist.pth")

#: relative path -> (public URL, SHA-256 of the file)
CHECKPOINTS: dict[str, tuple[str, str]] = {
    "cifar10-resnet/resnet20-12fca82f.th": (
        _AKAMASTER + "resnet20-12fca82f.th", "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8"),
    "cifar10-resnet/resnet32-d509ac18.th": (
        _AKAMASTER + "resnet32-d509ac18.th", "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850"),
    "cifar10-resnet/resnet44-014dd654.th": (
        _AKAMASTER + "resnet44-014dd654.th", "014dd6541728a1c700b1642ab640e211dc6eb8ed507d70697458dc8f8a0ae2e4"),
    "cifar10-resnet/resnet56-4bfd9763.th": (
        _AKAMASTER + "resnet56-4bfd9763.th", "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367"),
    "mnist-cnn/mnist-cnn.pth": (_FYS8805, "0e58754afd96763e49f52c14877b8441cc0fff38e04adce2d2247eab68a30e8a"),
}


def cache_dir() -> Path:
    """``$RMT_CACHE_DIR/models``, else ``~/.cache/rmt-pruning/models``."""
    base = os.environ.get("RMT_CACHE_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "rmt-pruning") / "models"


def models_root(root: str | os.PathLike | None = None) -> Path:
    """The folder checkpoints are read from by default: ``root``, else ``$RMT_MODELS_DIR``, else
    ``$RMT_DATA_DIR/../models`` when it exists, else :func:`cache_dir` (where downloads go)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("RMT_MODELS_DIR"):
        return Path(os.environ["RMT_MODELS_DIR"]).expanduser()
    if os.environ.get("RMT_DATA_DIR"):
        shared = Path(os.environ["RMT_DATA_DIR"]).expanduser().parent / "models"
        if shared.is_dir():
            return shared
    return cache_dir()


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def fetch_url(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Copy ``url``'s body to ``dest`` (the download itself; tests replace it)."""
    with open(dest, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
        shutil.copyfileobj(resp, out)


def _verify(path: Path, expected: str) -> Path:
    got = sha256sum(path)
    if got != expected:
        raise ModelFileError(path, f"SHA-256 {got} differs from the registered checkpoint's {expected} "
                                   "(a corrupt or different file; delete it to download it again)")
    return path


def _download(rel: str, dest: Path) -> Path:
    url, expected = CHECKPOINTS[rel]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        try:
            fetch_url(url, Path(tmp))
        except OSError as err:  # URLError, HTTPError, timeouts are OSErrors
            raise ModelFileError(dest, f"not found and its download from {url} failed ({err}); download it by "
                                       f"hand and put it at {dest} (or set RMT_MODELS_DIR to a folder holding "
                                       f"{rel})") from err
        got = sha256sum(tmp)
        if got != expected:
            raise ModelFileError(dest, f"the download from {url} has SHA-256 {got}, expected {expected}; "
                                       f"nothing was kept (put the right file at {dest} by hand)")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def checkpoint_path(rel: str, root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The verified local file of registered checkpoint ``rel`` (see the module docstring for the search order).

    Raises
    ------
    ModelFileError
        The file is missing where ``root`` / ``$RMT_MODELS_DIR`` points, its SHA-256 is wrong, or its download failed
        (nothing is downloaded when ``download=False`` or ``$RMT_REQUIRE_DATA`` is set, as for the data sets).
    """
    if rel not in CHECKPOINTS:
        raise ValueError(f"rel must be one of {sorted(CHECKPOINTS)}, got {rel!r}")
    expected = CHECKPOINTS[rel][1]
    override = root if root is not None else os.environ.get("RMT_MODELS_DIR") or None
    if override is not None:
        path = Path(override).expanduser() / rel
        if not path.is_file():
            where = "root" if root is not None else "RMT_MODELS_DIR"
            raise ModelFileError(path, f"not found ({where} points to {Path(override).expanduser()}); download "
                                       f"{CHECKPOINTS[rel][0]} there, or unset {where} to use the cache "
                                       f"{cache_dir()}")
        return _verify(path, expected)
    if os.environ.get("RMT_DATA_DIR"):
        shared = Path(os.environ["RMT_DATA_DIR"]).expanduser().parent / "models" / rel
        if shared.is_file():
            return _verify(shared, expected)
    path = cache_dir() / rel
    if path.is_file():
        return _verify(path, expected)
    if not download or os.environ.get("RMT_REQUIRE_DATA"):
        raise ModelFileError(path, f"not found; download {CHECKPOINTS[rel][0]} and put it there")
    return _download(rel, path)
