"""MNIST and Fashion-MNIST from their standard IDX files, and CIFAR-10 from its python batches, without torchvision.

Files are looked up as ``<root>/<name>/<train|t10k>-<images-idx3|labels-idx1>-ubyte.gz`` with
``root`` = the ``root`` argument, else ``$RMT_DATA_DIR``, else ``~/.cache/rmt-pruning/data``.
A missing file is downloaded from the standard mirror (MNIST: the ossci-datasets S3 mirror that
torchvision uses; Fashion-MNIST: Zalando's S3 bucket) and its MD5 is checked against the
torchvision checksums of the .gz files before it is used. With ``$RMT_REQUIRE_DATA`` set nothing
is downloaded: a missing file raises ``FileNotFoundError``.

A local file is not checksummed on every load (repackaged copies, for instance Debian's
re-gzipped Fashion-MNIST, have other .gz checksums but the same bytes inside); the loaders validate
what they read instead: the IDX parser checks the magic number, the type code, the dimensions and the
data length (decompressing no more than the header announces), the data-set loaders the dtype, the
shapes, the value ranges and the label count, and CIFAR batches are unpickled with a restricted
unpickler after a structural pre-scan. Every bad file raises :class:`prune.errors.DataFileError`
(a ``ValueError``) whose message is "PATH: problem"; nothing is cast or clipped before it is checked.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import pickletools
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from .errors import DataFileError

__all__ = ["load_idx_dataset", "read_idx", "data_root", "idx_path", "md5sum", "verify_md5", "download",
           "IDXFormatError", "PickleRefusedError", "DataFileError", "DATASETS", "load_cifar10",
           "read_cifar_batch", "cifar10_label_names"]

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
# Deflate cannot expand more than 1032:1 (a 258-byte match costs at least 2 bits), so a gzip file of S bytes
# holds at most 1032 * S bytes: a header announcing more is refused before anything is decompressed.
_DEFLATE_MAX_RATIO = 1032
_READ_CHUNK = 1 << 22


class IDXFormatError(DataFileError):
    """A file is not a valid (gzipped) IDX file, or not the IDX file a data set needs.

    A :class:`~prune.errors.DataFileError` (so a ``ValueError``); the name is kept for compatibility.
    """


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
    """Raise :class:`~prune.errors.DataFileError` (a ``ValueError``) unless the file's MD5 equals ``expected``."""
    got = md5sum(path)
    if got != expected.lower():
        raise DataFileError(path, f"checksum mismatch: MD5 {got}, expected {expected.lower()}")


def download(url: str, dest: str | os.PathLike, md5: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file; keep it only if its MD5 is ``md5``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        got = md5sum(tmp)
        if got != md5.lower():  # name the file the user asked for and the URL, never the deleted temporary file
            raise DataFileError(dest, f"checksum mismatch in the download from {url}: MD5 {got}, expected "
                                      f"{md5.lower()}; nothing was saved")
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


def _read_upto(fh, n: int) -> np.ndarray:
    """Up to ``n`` bytes from ``fh`` as a uint8 array, read in chunks (memory grows only as data arrives)."""
    out = np.empty(n, dtype=np.uint8)
    pos = 0
    while pos < n:
        block = fh.read(min(_READ_CHUNK, n - pos))
        if not block:
            break
        out[pos:pos + len(block)] = np.frombuffer(block, dtype=np.uint8)
        pos += len(block)
    return out[:pos]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzipped if its name ends in .gz) into a numpy array in native byte order.

    The header (magic ``00 00 TT NN`` then ``NN`` big-endian uint32 dimensions) is read first; the data length it
    announces, ``prod(dims) * itemsize`` (Python integers, no overflow), bounds what is decompressed: at most one
    byte more is read, and a gzip file too small to hold that much (deflate expands at most 1032:1) is refused
    before decompressing anything.

    Raises :class:`IDXFormatError` (a :class:`~prune.errors.DataFileError`, so a ``ValueError``) naming the file
    on an unreadable or truncated gzip stream, a bad magic number, an unknown type code, zero dimensions, or a
    data length that differs from the header's. A missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    gz = path.suffix == ".gz"
    try:
        size = path.stat().st_size
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
                raise IDXFormatError(path, f"bad IDX magic number {magic.hex() or '(empty file)'} "
                                           "(expected 00 00 <type> <ndim>)")
            if magic[2] not in _IDX_DTYPES:
                raise IDXFormatError(path, f"unknown IDX type code 0x{magic[2]:02x} "
                                           f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
            ndim = magic[3]
            if ndim == 0:
                raise IDXFormatError(path, "IDX header announces 0 dimensions")
            head = fh.read(4 * ndim)
            if len(head) < 4 * ndim:
                raise IDXFormatError(path, f"truncated IDX header ({4 + len(head)} bytes, "
                                           f"{ndim} dimensions need {4 + 4 * ndim})")
            dims = tuple(int.from_bytes(head[4 * k:4 * k + 4], "big") for k in range(ndim))
            dtype = np.dtype(_IDX_DTYPES[magic[2]])
            nbytes = math.prod(dims) * dtype.itemsize
            total = 4 + 4 * ndim + nbytes
            bound = _DEFLATE_MAX_RATIO * size if gz else size
            if total > bound:
                raise IDXFormatError(path, f"the header's dimensions {dims} need {total} bytes, but "
                                           + (f"a gzip file of {size} bytes holds at most {bound}" if gz
                                              else f"the file has {size}"))
            try:
                body = _read_upto(fh, nbytes)
            except MemoryError:
                raise IDXFormatError(path, f"the header's dimensions {dims} need {nbytes} bytes of data, "
                                           "more than this machine can allocate") from None
            if len(body) < nbytes:
                raise IDXFormatError(path, f"truncated: {len(body)} bytes of data, the header's dimensions {dims} "
                                           f"need {nbytes}")
            if fh.read(1):
                raise IDXFormatError(path, f"longer than the header's dimensions {dims} announce "
                                           f"({nbytes} bytes of data)")
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IDXFormatError(path, f"not a readable {'gzip' if gz else 'IDX'} file ({type(exc).__name__}: {exc})"
                             ) from exc
    data = body.view(dtype).reshape(dims)
    return data if dtype.isnative else data.astype(dtype.newbyteorder("="))


def load_idx_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 of MNIST or Fashion-MNIST.

    Parameters
    ----------
    name : "mnist" or "fashion-mnist" (also "fashion_mnist", "fashionmnist")
    split : "train" (60000 images) or "test" (10000 images)
    root : folder holding ``<name>/`` (default ``$RMT_DATA_DIR``, else ``~/.cache/rmt-pruning/data``)

    Raises :class:`IDXFormatError` (a :class:`~prune.errors.DataFileError`) naming the file unless the images are
    uint8 (n, 28, 28) with n >= 1 and the labels uint8 (n,) in 0..9 (besides :func:`read_idx`'s checks).
    """
    img_path = _fetch(name, split, "images", root)
    lab_path = _fetch(name, split, "labels", root)
    images, labels = read_idx(img_path), read_idx(lab_path)
    # The format of these data sets: unsigned bytes (type 0x08), images (n, 28, 28), labels (n,) in 0..9, n >= 1.
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IDXFormatError(img_path, f"expected uint8 (IDX type 0x08) images of shape (n, 28, 28), "
                                       f"got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise IDXFormatError(img_path, "holds no images")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXFormatError(lab_path, f"expected uint8 (IDX type 0x08) labels of shape (n,), "
                                       f"got {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise IDXFormatError(lab_path, f"{labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}")
    if labels.max() > 9:
        raise IDXFormatError(lab_path, f"labels outside 0..9 (max {int(labels.max())}, "
                                       f"{int(np.count_nonzero(labels > 9))} of {labels.size})")
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------- CIFAR-10
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"  # the archive's checksum (torchvision.datasets.CIFAR10)
_CIFAR_DIR = "cifar-10-batches-py"
# Where a root may hold the batches: the standard layout, and the shared JPEG-decoded copy.
_CIFAR_LAYOUTS = (_CIFAR_DIR, f"cifar10-jpeg/{_CIFAR_DIR}")
_CIFAR_SPLITS = {"test": ("test_batch",), "train": tuple(f"data_batch_{k}" for k in range(1, 6)),
                 **{f"data_batch_{k}": (f"data_batch_{k}",) for k in range(1, 6)}}
# A CIFAR batch is at most this large (a standard batch is about 31 MB): a bigger file is refused unread.
_CIFAR_MAX_BYTES = 1 << 28

try:  # numpy >= 2 keeps the reconstruction helpers in numpy._core, numpy 1.x in numpy.core
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric


class PickleRefusedError(DataFileError, pickle.UnpicklingError):
    """A CIFAR batch pickle names a global other than numpy's array reconstruction (it could run code)."""


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler for anything outside the allowed reconstruction paths."""


class _NDArrayToken:
    """Stands for ``numpy.ndarray`` inside a batch pickle: only the reconstructors accept it, it cannot be called."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Refused("BUILD applied to numpy.ndarray")


class _Checked:
    """A fresh, immutable handle on one checked helper: callable, but a pickle's BUILD cannot change it."""

    __slots__ = ("_fn",)

    def __init__(self, fn):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args):
        return self._fn(*args)

    def __setattr__(self, name, value):
        raise _Refused("reconstruction helpers cannot be modified")

    def __setstate__(self, state):
        raise _Refused(f"BUILD applied to {self._fn.__name__}")


def _np_reconstruct(subtype, shape, dtype_code):
    # numpy's ndarray.__reduce__: _reconstruct(ndarray, (0,), b'b'); BUILD then calls ndarray.__setstate__,
    # which checks the data length against the shape. Anything else is refused.
    if not isinstance(subtype, _NDArrayToken) or tuple(shape) != (0,) or dtype_code not in (b"b", "b"):
        raise pickle.UnpicklingError("numpy _reconstruct called with other arguments than (ndarray, (0,), b'b')")
    return _np_multiarray._reconstruct(np.ndarray, (0,), b"b")


def _np_frombuffer(buf, dtype, shape, order):
    # numpy's protocol-5 reduce: frombuffer(buf, dtype).reshape(shape, order=order); in-band buffers only.
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) or not isinstance(dtype, np.dtype) \
            or not isinstance(shape, tuple) or not all(type(d) is int for d in shape) or order not in ("C", "F", "A"):
        raise pickle.UnpicklingError("numpy _frombuffer called with other arguments than (buffer, dtype, shape, "
                                     "order)")
    return _np_numeric._frombuffer(buf, dtype, shape, order)


def _np_dtype(obj, align=False, copy=False):
    # numpy's dtype.__reduce__: dtype('u1', False, True); BUILD then calls dtype.__setstate__.
    if not isinstance(obj, str) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise pickle.UnpicklingError("numpy dtype called with other arguments than (str, bool, bool)")
    return np.dtype(obj, align=align, copy=copy)


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    # Protocols 0-2 write bytes as _codecs.encode(str, 'latin1'): only that (no other codec, no other input).
    if type(text) is not str or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode is allowed only as encode(str, 'latin1') (protocol-2 bytes)")
    return text.encode("latin1")


def _empty_bytes(*args):
    # Protocols 0-2 write b'' as bytes(): only that (bytes(n) would allocate n bytes).
    if args:
        raise pickle.UnpicklingError("bytes() is allowed only without arguments (protocol-2 empty bytes)")
    return b""


# The only globals a CIFAR batch pickle may name, protocols 0 to 5, numpy 1.x and 2.x: numpy's array and dtype
# reconstruction and the two helpers protocol 2 uses for bytes. Each maps to a checked wrapper, never to an object
# the pickle could call with arguments of its choice.
_PICKLE_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy", "ndarray"): None,  # the token above
    ("numpy", "dtype"): _np_dtype,
    ("_codecs", "encode"): _codecs_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array-reconstruction globals: a batch file cannot run code."""

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key not in _PICKLE_ALLOWED:
            raise _Refused(f"global {module}.{name} is not allowed in a CIFAR batch file (it could run code)")
        fn = _PICKLE_ALLOWED[key]
        return _NDArrayToken() if fn is None else _Checked(fn)


# Limits of the opcode pre-scan: a CIFAR batch pickle has about 3*10^4 opcodes and nests about 6 levels deep.
_PICKLE_MAX_OPCODES = 2_000_000
_PICKLE_MAX_DEPTH = 100
_MARK = -1
_BUILDERS = {"TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "LIST", "DICT", "FROZENSET"}   # new object from items
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}     # first item changed in place


def _pickle_depth_problem(raw: bytes) -> str | None:
    """Why this pickle must not be unpickled (too many opcodes, nesting too deep or cyclic), or None.

    The unpickler itself is iterative, but hashing a tuple nested a million levels deep (a dict key) overflows
    the C stack and kills the interpreter. This simulates the pickle machine's stack on object ids, with the
    memo, and keeps for each object an upper bound of its nesting depth, raised when a mutating opcode (APPEND,
    SETITEM, BUILD, ...) adds children and propagated to the objects that contain it; a cycle raises it without
    bound. Nothing is executed or allocated beyond the opcode arguments.
    """
    stack: list[int] = []
    marks: list[int] = []
    memo: dict = {}
    depth: list[int] = []
    parents: list[list[int]] = []

    def new(children) -> int:
        oid = len(depth)
        depth.append(1 + max((depth[c] for c in children), default=-1))
        parents.append([])
        for c in children:
            parents[c].append(oid)
        return oid

    def raise_depth(oid: int, children) -> bool:
        work = [(oid, 1 + max((depth[c] for c in children), default=-1))]
        for c in children:
            parents[c].append(oid)
        while work:
            o, d = work.pop()
            if d <= depth[o]:
                continue
            depth[o] = d
            if d > _PICKLE_MAX_DEPTH:
                return False
            work.extend((q, d + 1) for q in parents[o])
        return True

    def pop_to_mark() -> list[int]:
        if not marks:
            raise ValueError("no MARK on the stack")
        k = marks.pop()
        items = stack[k:]
        del stack[k:]
        return items

    try:
        for count, (op, arg, _pos) in enumerate(pickletools.genops(raw)):
            if count >= _PICKLE_MAX_OPCODES:
                return f"more than {_PICKLE_MAX_OPCODES} pickle opcodes (a CIFAR batch has about 3*10^4)"
            name = op.name
            if name in ("PROTO", "FRAME", "STOP"):
                continue
            if name == "MARK":
                marks.append(len(stack))
            elif name == "POP_MARK":
                pop_to_mark()
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif name == "DUP":
                stack.append(stack[-1])
            elif name == "POP":
                stack.pop()
            elif name in _BUILDERS:
                if name in ("TUPLE", "LIST", "DICT", "FROZENSET"):
                    items = pop_to_mark()
                else:
                    n = int(name[-1])
                    items = stack[len(stack) - n:] if n else []
                    if len(items) != n:
                        raise ValueError("stack underflow")
                    del stack[len(stack) - n:]
                stack.append(new(items))
            elif name in _MUTATORS:
                items = pop_to_mark() if name in ("APPENDS", "SETITEMS", "ADDITEMS") else \
                    [stack.pop() for _ in range(2 if name == "SETITEM" else 1)]
                if not raise_depth(stack[-1], items):
                    return f"objects nested deeper than {_PICKLE_MAX_DEPTH} levels (or a cycle)"
            else:  # any other opcode: generic stack effect (before -> after) from pickletools' description
                before, after = op.stack_before, op.stack_after
                items = pop_to_mark() if pickletools.stackslice in before else []
                n = len([b for b in before if b not in (pickletools.markobject, pickletools.stackslice)])
                if n:
                    if len(stack) < n:
                        raise ValueError("stack underflow")
                    items += stack[len(stack) - n:]
                    del stack[len(stack) - n:]
                for _ in after:
                    stack.append(new(items))
            if stack and depth[stack[-1]] > _PICKLE_MAX_DEPTH:
                return f"objects nested deeper than {_PICKLE_MAX_DEPTH} levels"
    except (ValueError, IndexError, KeyError) as exc:
        return f"not a well-formed pickle ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def read_cifar_batch(path: str | os.PathLike) -> dict:
    """Load one CIFAR python batch (a pickled dict) with the restricted unpickler; keys are str.

    Accepts the pickles numpy arrays are written with under protocols 0 to 5 (in-band buffers), and nothing that
    names another global. Raises :class:`~prune.errors.DataFileError` naming the file for an unreadable, truncated
    or oversized pickle or one that is not a dict (:class:`PickleRefusedError`, also a ``pickle.UnpicklingError``,
    for a refused global). The values are not validated here: :func:`load_cifar10` does that.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > _CIFAR_MAX_BYTES:
            raise DataFileError(path, f"{size} bytes, larger than any CIFAR batch ({_CIFAR_MAX_BYTES} at most)")
        raw_bytes = path.read_bytes()
    except IsADirectoryError as exc:
        raise DataFileError(path, f"not a file ({exc.strerror})") from None
    except PermissionError as exc:
        raise DataFileError(path, f"cannot be read ({exc.strerror})") from None
    if not raw_bytes:
        raise DataFileError(path, "empty file (not a CIFAR batch)")
    problem = _pickle_depth_problem(raw_bytes)
    if problem is not None:
        raise DataFileError(path, f"not a CIFAR batch: {problem}")
    try:
        raw = _RestrictedUnpickler(io.BytesIO(raw_bytes), encoding="bytes").load()
    except _Refused as exc:
        raise PickleRefusedError(path, str(exc)) from None
    except RecursionError:
        raise DataFileError(path, "not a CIFAR batch (pickle nested too deeply)") from None
    except MemoryError:
        raise DataFileError(path, "not a CIFAR batch (pickle asks for more memory than this machine has)") from None
    except Exception as exc:  # noqa: BLE001 - only checked numpy/bytes helpers ran; any failure means a bad file
        problem = str(exc) or type(exc).__name__
        raise DataFileError(path, f"not a readable CIFAR batch pickle ({type(exc).__name__}: {problem[:200]})") from None
    if not isinstance(raw, dict):
        raise DataFileError(path, f"not a CIFAR batch (a pickled dict), got {type(raw).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _exact_integers(path: Path, what: str, a, lo: int, hi: int, shape_ok, shape_text: str) -> np.ndarray:
    """``a`` as a numpy array (not yet cast) if its values are exact integers in [lo, hi] and its shape passes ``shape_ok``.

    Integer arrays are range-checked; float arrays must also be finite and integral; any other dtype (bool,
    complex, object, strings, records, dates) is refused. Nothing is cast before it is checked.
    """
    if isinstance(a, np.ndarray):
        arr = a
    elif isinstance(a, (list, tuple)):
        try:
            arr = np.asarray(a)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise DataFileError(path, f"{what} is not a flat list of numbers ({type(exc).__name__}: "
                                      f"{str(exc)[:120]})") from None
    else:
        raise DataFileError(path, f"{what} must be a numpy array or a list, got {type(a).__name__}")
    if not shape_ok(arr.shape):
        raise DataFileError(path, f"{what} has shape {arr.shape}, expected {shape_text}")
    if arr.dtype.kind not in "uif":
        raise DataFileError(path, f"{what} has dtype {arr.dtype}, expected integers (or floats holding integers)")
    if arr.size == 0:
        return arr
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            raise DataFileError(path, f"{what} holds {arr.size - int(np.count_nonzero(finite))} NaN or infinite "
                                      f"values")
        if not np.array_equal(arr, np.floor(arr)):
            example = arr[arr != np.floor(arr)][0].item()
            raise DataFileError(path, f"{what} holds non-integer values (e.g. {example!r})")
    amin, amax = arr.min().item(), arr.max().item()
    if amin < lo or amax > hi:
        raise DataFileError(path, f"{what} holds values outside {lo}..{hi} (min {amin}, max {amax})")
    return arr


def _check_cifar_batch(path: Path, batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 3, 32, 32), labels int64 (n,)) of one batch, after checking every value."""
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        keys = [k if isinstance(k, str) else type(k).__name__ for k in list(batch)[:8]]
        raise DataFileError(path, f"not a CIFAR-10 batch: no {' or '.join(repr(k.encode()) for k in missing)} key "
                                  f"(keys: {keys})")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray):
        raise DataFileError(path, f"b'data' must be a numpy array, got {type(data).__name__}")
    data = _exact_integers(path, "b'data'", data, 0, 255, lambda s: len(s) == 2 and s[1] == 3072, "(n, 3072)")
    n = data.shape[0]
    if n == 0:
        raise DataFileError(path, "holds no images (b'data' has shape (0, 3072))")
    labels = _exact_integers(path, "b'labels'", labels, 0, 9, lambda s: len(s) == 1, "(n,)")
    if labels.shape[0] != n:
        raise DataFileError(path, f"{labels.shape[0]} labels for {n} images")
    return data.astype(np.uint8, copy=False).reshape(n, 3, 32, 32), labels.astype(np.int64)


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
    set. Batches are read with a restricted unpickler (numpy arrays only, no arbitrary code), and every value is
    checked: b'data' an (n, 3072) array of exact integers in 0..255 (an integer dtype, or floats that hold exact
    integers), b'labels' n exact integers in 0..9, n >= 1. Anything else raises
    :class:`~prune.errors.DataFileError` naming the batch file; nothing is cast before it is checked.
    """
    if split not in _CIFAR_SPLITS:
        raise ValueError(f"split must be one of {sorted(_CIFAR_SPLITS)}, got {split!r}")
    folder = _cifar_dir(root) or _download_cifar(root)
    missing = [b for b in _CIFAR_SPLITS[split] if not (folder / b).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing} needed for split {split!r}")
    images, labels = [], []
    for name in _CIFAR_SPLITS[split]:
        x, y = _check_cifar_batch(folder / name, read_cifar_batch(folder / name))
        images.append(x)
        labels.append(y)
    if len(images) == 1:
        return images[0], labels[0]
    return np.concatenate(images), np.concatenate(labels)


def cifar10_label_names(root: str | os.PathLike | None = None) -> list[str]:
    """The ten class names from ``batches.meta``."""
    folder = _cifar_dir(root) or _download_cifar(root)
    path = folder / "batches.meta"
    names = read_cifar_batch(path).get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10 or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataFileError(path, "b'label_names' must be a list of 10 names")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
