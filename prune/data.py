"""MNIST and Fashion-MNIST from their standard IDX files, and CIFAR-10 from its python batches, without torchvision.

Files are looked up as ``<root>/<name>/<train|t10k>-<images-idx3|labels-idx1>-ubyte.gz`` with
``root`` = the ``root`` argument, else ``$RMT_DATA_DIR``, else ``~/.cache/rmt-pruning/data``.
A missing file is downloaded from the standard mirror (MNIST: the ossci-datasets S3 mirror that
torchvision uses; Fashion-MNIST: Zalando's S3 bucket) and its MD5 is checked against the
torchvision checksums of the .gz files before it is used. With ``$RMT_REQUIRE_DATA`` set nothing
is downloaded: a missing file raises ``FileNotFoundError``.

A local file is not checksummed on every load (repackaged copies, for instance Debian's
re-gzipped Fashion-MNIST, have other .gz checksums but the same bytes inside); the IDX parser
checks the magic number, the dimensions and the file length instead.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = ["load_idx_dataset", "read_idx", "data_root", "idx_path", "md5sum", "verify_md5", "download",
           "IDXFormatError", "DATASETS", "load_cifar10", "read_cifar_batch", "cifar10_label_names"]

_BASE_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
#: MD5 of the .gz files served by the URLs above (the checksums in torchvision.datasets.MNIST/FashionMNIST).
_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
DATASETS = tuple(_BASE_URLS)
_SPLITS = {"train": ("train", 60000), "test": ("t10k", 10000)}
# IDX type byte -> big-endian numpy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXFormatError(ValueError):
    """A file is not a valid (gzipped) IDX file."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$RMT_DATA_DIR``, else ``~/.cache/rmt-pruning/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("RMT_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rmt-pruning" / "data"


def _dataset_name(name: str) -> str:
    key = str(name).lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}.get(key, key)
    if key not in _BASE_URLS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    return key


def idx_path(name: str, split: str, kind: str, root: str | os.PathLike | None = None) -> Path:
    """Path of one IDX file; ``kind`` is ``"images"`` or ``"labels"``."""
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if kind not in ("images", "labels"):
        raise ValueError(f"kind must be 'images' or 'labels', got {kind!r}")
    ndim = 3 if kind == "images" else 1
    return data_root(root) / _dataset_name(name) / f"{_SPLITS[split][0]}-{kind}-idx{ndim}-ubyte.gz"


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex MD5 digest of a file's bytes."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_md5(path: str | os.PathLike, expected: str) -> None:
    """Raise ``ValueError`` unless the file's MD5 equals ``expected``."""
    got = md5sum(path)
    if got != expected.lower():
        raise ValueError(f"checksum mismatch for {path}: MD5 {got}, expected {expected}")


def download(url: str, dest: str | os.PathLike, md5: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file; keep it only if its MD5 is ``md5``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        verify_md5(tmp, md5)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _fetch(name: str, split: str, kind: str, root) -> Path:
    path = idx_path(name, split, kind, root)
    if path.is_file():
        return path
    if os.environ.get("RMT_REQUIRE_DATA"):
        raise FileNotFoundError(f"{path} not found and RMT_REQUIRE_DATA is set (no download); "
                                f"put the IDX file there or set RMT_DATA_DIR to its root")
    key = _dataset_name(name)
    return download(_BASE_URLS[key] + path.name, path, _MD5[key][path.name])


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzipped if its name ends in .gz) into a numpy array in native byte order.

    Raises ``IDXFormatError`` (a ``ValueError``) on a bad gzip stream, a bad magic number, or a length
    that does not match the header's dimensions.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IDXFormatError(f"{path}: not a readable gzip file ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise IDXFormatError(f"{path}: bad IDX magic number {raw[:4].hex() or '(empty)'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise IDXFormatError(f"{path}: {len(raw)} bytes, but the header's dimensions {dims} need {expected}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def load_idx_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 of MNIST or Fashion-MNIST.

    Parameters
    ----------
    name : "mnist" or "fashion-mnist" (also "fashion_mnist", "fashionmnist")
    split : "train" (60000 images) or "test" (10000 images)
    root : folder holding ``<name>/`` (default ``$RMT_DATA_DIR``, else ``~/.cache/rmt-pruning/data``)
    """
    img_path = _fetch(name, split, "images", root)
    lab_path = _fetch(name, split, "labels", root)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise IDXFormatError(f"{img_path}: expected uint8 images (n, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise IDXFormatError(f"{lab_path}: {labels.shape} labels for {images.shape[0]} images")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise IDXFormatError(f"{lab_path}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    return images, labels


# ---------------------------------------------------------------------------------------- CIFAR-10
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"  # the archive's checksum (torchvision.datasets.CIFAR10)
_CIFAR_DIR = "cifar-10-batches-py"
# Where a root may hold the batches: the standard layout, and the shared JPEG-decoded copy.
_CIFAR_LAYOUTS = (_CIFAR_DIR, f"cifar10-jpeg/{_CIFAR_DIR}")
_CIFAR_SPLITS = {"test": ("test_batch",), "train": tuple(f"data_batch_{k}" for k in range(1, 6)),
                 **{f"data_batch_{k}": (f"data_batch_{k}",) for k in range(1, 6)}}
# The only globals a CIFAR batch pickle needs: numpy's array reconstruction.
_PICKLE_ALLOWED = {("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
                   ("numpy", "ndarray"), ("numpy", "dtype")}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array-reconstruction globals: a batch file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch file")
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike) -> dict:
    """Load one CIFAR python batch (a pickled dict) with the restricted unpickler; keys are str."""
    with open(path, "rb") as fh:
        raw = _RestrictedUnpickler(fh, encoding="bytes").load()
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a CIFAR batch (a pickled dict), got {type(raw).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _cifar_dir(root) -> Path | None:
    base = data_root(root)
    for layout in _CIFAR_LAYOUTS:
        if (base / layout).is_dir():
            return base / layout
    return None


def _download_cifar(root) -> Path:
    if os.environ.get("RMT_REQUIRE_DATA"):
        raise FileNotFoundError(f"no {_CIFAR_DIR}/ under {data_root(root)} (looked for {', '.join(_CIFAR_LAYOUTS)}) "
                                f"and RMT_REQUIRE_DATA is set (no download)")
    base = data_root(root)
    archive = download(_CIFAR_URL, base / "cifar-10-python.tar.gz", _CIFAR_MD5)
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(_CIFAR_DIR + "/")
                   and "/" not in m.name[len(_CIFAR_DIR) + 1:] and ".." not in m.name]
        tar.extractall(base, members=members)
    return base / _CIFAR_DIR


def load_cifar10(split: str = "test", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from the standard python batches: (images uint8 (n, 3, 32, 32), labels int64 (n,)).

    ``split`` is "test", "train" (data_batch_1..5, all required) or one "data_batch_k". The folder
    ``cifar-10-batches-py`` is looked for under ``root`` (default ``$RMT_DATA_DIR``, else
    ``~/.cache/rmt-pruning/data``), also as ``cifar10-jpeg/cifar-10-batches-py`` (the shared
    JPEG-decoded copy); if absent it is downloaded (MD5-checked), unless ``$RMT_REQUIRE_DATA`` is
    set. Batches are read with a restricted unpickler (numpy arrays only, no arbitrary code).
    """
    if split not in _CIFAR_SPLITS:
        raise ValueError(f"split must be one of {sorted(_CIFAR_SPLITS)}, got {split!r}")
    folder = _cifar_dir(root) or _download_cifar(root)
    missing = [b for b in _CIFAR_SPLITS[split] if not (folder / b).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing} needed for split {split!r}")
    images, labels = [], []
    for name in _CIFAR_SPLITS[split]:
        batch = read_cifar_batch(folder / name)
        data = np.asarray(batch["data"], dtype=np.uint8)
        lab = np.asarray(batch["labels"], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != lab.shape[0]:
            raise ValueError(f"{folder / name}: expected data (n, 3072) and n labels, got {data.shape}, {lab.shape}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
    labels = np.concatenate(labels)
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"CIFAR-10 labels must lie in 0..9, got {labels.min()}..{labels.max()}")
    return np.concatenate(images), labels


def cifar10_label_names(root: str | os.PathLike | None = None) -> list[str]:
    """The ten class names from ``batches.meta``."""
    folder = _cifar_dir(root) or _download_cifar(root)
    return [n.decode() if isinstance(n, bytes) else n for n in read_cifar_batch(folder / "batches.meta")["label_names"]]
