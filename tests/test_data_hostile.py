"""Hostile and careless data files (issue 11, part 5): every loader validates what it reads.

Each case is a regression test: the loaders used to cast without checking (float CIFAR data times 300 wrapped
around, NaN became 0, label 3.7 became 3), to refuse valid batches pickled with protocol 2 or 5, to decompress a
gzip fully before checking its length, and to fail with messages naming neither file nor problem ("Ran out of
input", "cannot reshape array of size 0", ``KeyError: 'data'``, an MD5 mismatch naming a deleted temporary file).
Now every bad file raises :class:`prune.errors.DataFileError` whose message is "PATH: problem", and no pickle
payload ever runs.

The two hypothesis tests at the end corrupt the real shared files (MNIST t10k labels and images, CIFAR-10
test_batch) and check that the loader returns validated arrays or raises ``DataFileError``, never anything else;
they print how many cases ran per outcome. ``FILE_TARGETS`` exposes them to ``benchmarks/fuzz.py``-style drivers.
"""
from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import tempfile
import tracemalloc
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prune.data import (IDXFormatError, PickleRefusedError, download, idx_path, load_cifar10, load_idx_dataset,
                        md5sum, read_cifar_batch, read_idx, verify_md5)
from prune.errors import DataFileError

SHARED = Path(os.environ.get("RMT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
DATA_REQUIRED = bool(os.environ.get("RMT_REQUIRE_DATA"))
MNIST_IMAGES = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"
MNIST_LABELS = SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz"
CIFAR_TEST = SHARED / "cifar10-jpeg" / "cifar-10-batches-py" / "test_batch"
# examples per file fuzz test (raise it for a longer campaign: RMT_FILE_FUZZ_EXAMPLES=2000)
FUZZ_EXAMPLES = int(os.environ.get("RMT_FILE_FUZZ_EXAMPLES", "0")) or None


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    monkeypatch.setenv("RMT_REQUIRE_DATA", "1")


def _need(path: Path) -> Path:
    if not path.is_file():
        if DATA_REQUIRED:
            pytest.fail(f"{path} is missing and RMT_REQUIRE_DATA is set")
        pytest.skip(f"{path} not found")
    return path


def _idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _assert_names(exc: pytest.ExceptionInfo, path: Path, problem: str) -> None:
    """A DataFileError whose message is 'PATH: problem' for this file."""
    err = exc.value
    assert isinstance(err, DataFileError) and isinstance(err, ValueError)
    assert err.path == str(path) and str(err).startswith(f"{path}: ")
    assert exc.match(problem)


def test_idx_format_error_is_a_data_file_error():
    assert issubclass(IDXFormatError, DataFileError) and issubclass(IDXFormatError, ValueError)
    err = IDXFormatError("/x/y.gz", "bad")
    assert str(err) == "/x/y.gz: bad" and err.path == "/x/y.gz" and err.problem == "bad"


# ------------------------------------------------------------------------------------------------------- IDX files
_GOOD = _idx_bytes(np.arange(4 * 28 * 28, dtype=np.int64).astype(np.uint8).reshape(4, 28, 28))
_IDX_CASES = {
    # name: (file bytes, expected problem)
    "empty_gzip": (gzip.compress(b""), "magic"),
    "not_gzip": (b"this is not a gzip stream at all", "gzip"),
    "truncated_gzip": (gzip.compress(_GOOD)[:40], "gzip"),
    "trailing_garbage": (gzip.compress(_GOOD) + b"garbage!", "gzip"),
    "bad_crc": (gzip.compress(_GOOD)[:-8] + b"\0\0\0\0" + gzip.compress(_GOOD)[-4:], "gzip"),
    "bad_magic": (gzip.compress(b"\x00\x01\x08\x03" + _GOOD[4:]), "magic"),
    "unknown_type_code": (gzip.compress(b"\x00\x00\x0a\x03" + _GOOD[4:]), "type code 0x0a"),
    "zero_dimensions": (gzip.compress(b"\x00\x00\x08\x00"), "0 dimensions"),
    "truncated_header": (gzip.compress(b"\x00\x00\x08\x03\x00\x00\x00\x04\x00"), "truncated IDX header"),
    # (2^16)^4 = 2^64 wraps to 0 in int64: the old parser accepted the length, then "cannot reshape array of size 0"
    "dims_overflow_int64": (gzip.compress(b"\x00\x00\x08\x04" + b"\x00\x01\x00\x00" * 4), "need 1844674407370955"),
    "dims_huge": (gzip.compress(b"\x00\x00\x0e\x03" + b"\xff\xff\xff\xff" * 3 + b"\0" * 64), "holds at most"),
    "short_data": (gzip.compress(_GOOD[:-784]), "truncated: 2352 bytes of data"),
    "long_data": (gzip.compress(_GOOD + b"\0"), "longer than the header"),
}


@pytest.mark.parametrize("case", sorted(_IDX_CASES))
def test_corrupt_idx_names_file_and_problem(tmp_path, case):
    content, problem = _IDX_CASES[case]
    path = idx_path("mnist", "test", "images", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(DataFileError) as exc:
        read_idx(path)
    _assert_names(exc, path, problem)
    assert isinstance(exc.value, IDXFormatError)
    (path.parent / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(DataFileError) as exc:
        load_idx_dataset("mnist", "test", root=tmp_path)
    _assert_names(exc, path, problem)


def test_uncompressed_idx_length_checked_against_file_size(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x00\x00\x08\x02\x00\x01\x00\x00\x00\x01\x00\x00" + b"\0" * 10)   # announces 2^32 bytes
    with pytest.raises(DataFileError) as exc:
        read_idx(path)
    _assert_names(exc, path, "the file has 22")


def _gzip_of_zeros(header: bytes, n_zeros: int) -> bytes:
    """A gzip stream of ``header`` then ``n_zeros`` zero bytes, built in 1 MiB steps (never all in memory)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts, block = [comp.compress(header)], bytes(1 << 20)
    for _ in range(n_zeros >> 20):
        parts.append(comp.compress(block))
    parts.append(comp.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def bomb_body():
    return 96 << 20   # 96 MiB of zeros: about 95 KB of gzip


@pytest.mark.parametrize("header,problem", [
    (b"\x00\x00\x08\x02\x00\x00\x00\x0a\x00\x00\x00\x0a", "longer than the header"),            # announces 100 bytes
    (b"\x00\x00\x08\x02\x7f\xff\xff\xff\x7f\xff\xff\xff", "holds at most"),                   # announces 4.6e18 bytes
])
def test_gzip_bomb_decompression_is_capped_by_the_header(tmp_path, bomb_body, header, problem):
    """A 95 KB gzip that inflates to 96 MiB: refused after reading at most what the header announces (+1 byte)."""
    path = tmp_path / "bomb-idx2-ubyte.gz"
    path.write_bytes(_gzip_of_zeros(header, bomb_body))
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(DataFileError) as exc:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _assert_names(exc, path, problem)
    assert peak < 8 << 20, f"peak {peak} bytes traced while refusing a gzip bomb"


@pytest.mark.parametrize("case,bad,problem", [
    ("images_32x32", "images", r"\(n, 28, 28\), got uint8 \(3, 32, 32\)"),
    ("images_flat", "images", r"\(n, 28, 28\), got uint8 \(3, 784\)"),
    ("images_int16", "images", r"uint8 .* got int16"),
    ("images_float", "images", r"uint8 .* got float64"),
    ("no_images", "images", "holds no images"),
    ("labels_float_3.7", "labels", r"uint8 .* got float32"),
    ("labels_int32", "labels", r"uint8 .* got int32"),
    ("labels_2d", "labels", r"labels of shape \(n,\), got uint8 \(3, 1\)"),
    ("labels_12", "labels", r"outside 0..9 \(max 12"),
    ("labels_count", "labels", "4 labels for 3 images"),
])
def test_named_dataset_shapes_dtypes_and_labels(tmp_path, case, bad, problem):
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([1, 2, 3], np.uint8)
    icode = lcode = 0x08
    if case == "images_32x32":
        images = np.zeros((3, 32, 32), np.uint8)
    elif case == "images_flat":
        images = np.zeros((3, 784), np.uint8)
    elif case == "images_int16":
        images, icode = images.astype(np.int16), 0x0B
    elif case == "images_float":
        images, icode = images.astype(np.float64), 0x0E
    elif case == "no_images":
        images, labels = np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)
    elif case == "labels_float_3.7":
        labels, lcode = np.array([1.0, 3.7, 2.0], np.float32), 0x0D     # the old loader made this 3
    elif case == "labels_int32":
        labels, lcode = labels.astype(np.int32), 0x0C
    elif case == "labels_2d":
        labels = labels.reshape(3, 1)
    elif case == "labels_12":
        labels = np.array([1, 12, 3], np.uint8)
    elif case == "labels_count":
        labels = np.array([1, 2, 3, 4], np.uint8)
    ipath, lpath = idx_path("mnist", "test", "images", tmp_path), idx_path("mnist", "test", "labels", tmp_path)
    ipath.parent.mkdir(parents=True)
    ipath.write_bytes(gzip.compress(_idx_bytes(images, icode)))
    lpath.write_bytes(gzip.compress(_idx_bytes(labels, lcode)))
    with pytest.raises(DataFileError) as exc:
        load_idx_dataset("mnist", "test", root=tmp_path)
    _assert_names(exc, ipath if bad == "images" else lpath, problem)


# ------------------------------------------------------------------------------------------------------- downloads
def test_verify_md5_raises_data_file_error(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x")
    with pytest.raises(DataFileError) as exc:
        verify_md5(path, "0" * 32)
    _assert_names(exc, path, f"checksum mismatch: MD5 {md5sum(path)}, expected 0{{32}}")


def test_download_md5_mismatch_names_destination_and_url(tmp_path):
    src = tmp_path / "served.gz"
    src.write_bytes(gzip.compress(b"payload"))
    dest = tmp_path / "root" / "mnist" / "t10k-images-idx3-ubyte.gz"
    with pytest.raises(DataFileError) as exc:
        download(src.as_uri(), dest, "f" * 32)
    _assert_names(exc, dest, f"checksum mismatch in the download from {src.as_uri()}")
    assert ".part" not in str(exc.value) and "nothing was saved" in str(exc.value)
    assert list(dest.parent.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- CIFAR batches
def _batch(folder: Path, data, labels, protocol: int = 4, name: str = "test_batch", **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels, **extra}, protocol=protocol))
    return path


_RNG = np.random.default_rng(11)
_PIX = _RNG.integers(0, 256, size=(3, 3072)).astype(np.uint8)


def _nan_data():
    d = _PIX.astype(np.float64)
    d[1, 5] = np.nan
    return d


_CIFAR_BAD = {
    # name: (data, labels, expected problem); the old loader cast the first ones silently
    "float_times_300": (_PIX.astype(np.float64) * 300, [1, 2, 3], r"outside 0..255 \(min 0.0, max 76500.0\)"),
    "nan_pixel": (_nan_data(), [1, 2, 3], "1 NaN or infinite"),
    "inf_pixel": (np.where(_PIX == _PIX[0, 0], np.inf, _PIX.astype(np.float32)), [1, 2, 3], "NaN or infinite"),
    "fractional_pixel": (_PIX + np.float64(0.5), [1, 2, 3], "non-integer values"),
    "int64_256": (np.where(_PIX == _PIX[0, 0], 256, _PIX.astype(np.int64)), [1, 2, 3], "outside 0..255"),
    "negative_pixel": (_PIX.astype(np.int16) - 1, [1, 2, 3], "outside 0..255"),
    "label_3.7": (_PIX, [1, 3.7, 2], r"b'labels' holds non-integer values \(e.g. 3.7"),
    "label_10": (_PIX, [1, 10, 2], r"b'labels' holds values outside 0..9"),
    "label_negative": (_PIX, np.array([1, -1, 2]), r"b'labels' holds values outside 0..9"),
    "label_nan": (_PIX, [1.0, float("nan"), 2.0], "NaN"),
    "label_huge_int": (_PIX, [1, 2**70, 2], "b'labels' has dtype object"),
    "label_strings": (_PIX, [b"cat", b"dog", b"car"], "b'labels' has dtype"),
    "label_nested": (_PIX, [[1], [2], [3]], r"b'labels' has shape \(3, 1\), expected \(n,\)"),
    "label_ragged": (_PIX, [1, [2, 3], 4], "b'labels' is not a flat list"),
    "label_dict": (_PIX, {0: 1}, "must be a numpy array or a list"),
    "label_count": (_PIX, [1, 2], "2 labels for 3 images"),
    "complex_data": (_PIX.astype(np.complex64), [1, 2, 3], "b'data' has dtype complex64"),
    "bool_data": (_PIX > 3, [1, 2, 3], "b'data' has dtype bool"),
    "object_data": (_PIX.astype(object), [1, 2, 3], "b'data' has dtype object"),
    "string_data": (np.full((3, 3072), "a"), [1, 2, 3], "b'data' has dtype <U1"),
    "data_list": (_PIX.tolist(), [1, 2, 3], "b'data' must be a numpy array"),
    "data_3d": (_PIX.reshape(3, 3, 1024), [1, 2, 3], r"shape \(3, 3, 1024\), expected \(n, 3072\)"),
    "data_short_rows": (_PIX[:, :100], [1, 2, 3], r"shape \(3, 100\), expected \(n, 3072\)"),
    "empty_batch": (np.zeros((0, 3072), np.uint8), [], "holds no images"),
}


@pytest.mark.parametrize("case", sorted(_CIFAR_BAD))
def test_cifar_values_are_checked_not_cast(tmp_path, case):
    data, labels, problem = _CIFAR_BAD[case]
    path = _batch(tmp_path / "cifar-10-batches-py", data, labels)
    with pytest.raises(DataFileError) as exc:
        load_cifar10("test", root=tmp_path)
    _assert_names(exc, path, problem)


def test_cifar_bad_values_stop_load_inputs(tmp_path):
    """The path `rmt prune resnet20` takes: prune.evaluate.load_inputs refuses instead of scoring wrapped pixels."""
    from prune.evaluate import load_inputs

    path = _batch(tmp_path / "cifar-10-batches-py", _PIX.astype(np.float64) * 300, [1, 2, 3])
    with pytest.raises(DataFileError) as exc:
        load_inputs("cifar10", "test", root=tmp_path)
    _assert_names(exc, path, "outside 0..255")


@pytest.mark.parametrize("labels", [[1.0, 3.0, 9.0], np.array([1, 3, 9], np.uint8), np.array([1.0, 3.0, 9.0]),
                                    (1, 3, 9)])
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32, np.float64, ">u2"])
def test_cifar_exact_integers_of_any_numeric_dtype_load(tmp_path, dtype, labels):
    _batch(tmp_path / "cifar-10-batches-py", _PIX.astype(dtype), labels)
    images, y = load_cifar10("test", root=tmp_path)
    assert images.dtype == np.uint8 and images.shape == (3, 3, 32, 32) and y.dtype == np.int64
    np.testing.assert_array_equal(images.reshape(3, -1), _PIX)
    np.testing.assert_array_equal(y, [1, 3, 9])


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_cifar_every_pickle_protocol_loads(tmp_path, protocol, layout):
    """numpy writes arrays with _reconstruct (protocols 0-4, and 5 for non-contiguous arrays), _frombuffer
    (protocol 5) and _codecs.encode for bytes (protocols 0-2): each loads, bit-identical."""
    data = {"C": _PIX, "F": np.asfortranarray(_PIX), "strided": np.repeat(_PIX, 2, axis=1)[:, ::2]}[layout]
    _batch(tmp_path / "cifar-10-batches-py", data, [0, 5, 9], protocol=protocol)
    images, labels = load_cifar10("test", root=tmp_path)
    np.testing.assert_array_equal(images.reshape(3, -1), _PIX)
    np.testing.assert_array_equal(labels, [0, 5, 9])


@pytest.mark.parametrize("protocol,old,new", [(2, b"numpy._core.multiarray", b"numpy.core.multiarray"),
                                              (4, b"numpy._core.multiarray", b"numpy.core.multiarray"),
                                              (5, b"numpy._core.numeric", b"numpy.core.numeric")])
def test_cifar_numpy1_module_names_load(tmp_path, protocol, old, new):
    """Pickles written by numpy 1.x name numpy.core.* (the original CIFAR-10 batches do)."""
    import pickletools

    raw = pickle.dumps({b"data": _PIX, b"labels": [1, 2, 3]}, protocol=protocol)
    if protocol == 2:
        raw = raw.replace(old + b"\n", new + b"\n")             # GLOBAL 'module\nname\n'
    else:                                                       # SHORT_BINUNICODE, then re-framed
        raw = pickletools.optimize(raw.replace(bytes([0x8C, len(old)]) + old, bytes([0x8C, len(new)]) + new))
    assert new in raw and old not in raw
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(raw)
    images, labels = load_cifar10("test", root=tmp_path)
    np.testing.assert_array_equal(images.reshape(3, -1), _PIX)


def test_cifar_out_of_band_pickle_refused(tmp_path):
    buffers = []
    raw = pickle.dumps({b"data": _PIX, b"labels": [1, 2, 3]}, protocol=5, buffer_callback=buffers.append)
    assert buffers
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir()
    path.write_bytes(raw)
    with pytest.raises(DataFileError) as exc:
        load_cifar10("test", root=tmp_path)
    _assert_names(exc, path, "out-of-band")


# ---- pickle payloads: none may run, in any protocol
def _short_unicode(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _arg(v, protocol: int) -> bytes:
    if isinstance(v, int):
        return f"I{v}\n".encode() if protocol == 0 else b"J" + v.to_bytes(4, "little", signed=True)
    if protocol == 0:
        return f"V{v}\n".encode()
    return _short_unicode(v) if protocol >= 4 else b"X" + len(v.encode()).to_bytes(4, "little") + v.encode()


def _call_pickle(module: str, name: str, *args, protocol: int) -> bytes:
    """A pickle calling module.name(*args), written by hand (GLOBAL for protocols 0-3, STACK_GLOBAL for 4-5)."""
    head = b"" if protocol < 2 else b"\x80" + bytes([protocol])
    glob = (_short_unicode(module) + _short_unicode(name) + b"\x93" if protocol >= 4
            else f"c{module}\n{name}\n".encode())
    return head + glob + b"(" + b"".join(_arg(v, protocol) for v in args) + b"tR."


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(marker: Path, protocol: int) -> dict[str, bytes]:
    touch = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    p = protocol
    return {
        "os.system": _call_pickle("os", "system", touch, protocol=p),
        "posix.system": _call_pickle("posix", "system", touch, protocol=p),
        "builtins.eval": _call_pickle("builtins", "eval", code, protocol=p),
        "__builtin__.eval": _call_pickle("__builtin__", "eval", code, protocol=p),
        "builtins.exec": _call_pickle("builtins", "exec", code, protocol=p),
        "builtins.getattr": _call_pickle("builtins", "getattr", "os", "system", protocol=p),
        "subprocess.getoutput": _call_pickle("subprocess", "getoutput", touch, protocol=p),
        "subprocess.Popen": _call_pickle("subprocess", "Popen", touch, protocol=p),
        "numpy.testing.runstring": _call_pickle("numpy.testing._private.utils", "runstring", code, protocol=p),
        "numpy.dotted_name": _call_pickle("numpy", "dtype.__class__", "x", protocol=p),
        # the same, reached by real reducers, nested inside an otherwise valid batch (refused mid-stream)
        "nested_os_system": pickle.dumps({b"data": _PIX, b"labels": _Reduce(os.system, (touch,))}, p),
        "nested_subprocess": pickle.dumps({b"data": _Reduce(subprocess.check_call, (["touch", str(marker)],)),
                                           b"labels": [0]}, p),
        "nested_eval": pickle.dumps({b"data": _PIX, b"labels": _Reduce(eval, (code,))}, p),
        # the allowed globals, called outside numpy's reconstruction paths
        "allowed_codecs_rot13": _call_pickle("_codecs", "encode", "abc", "rot13", protocol=p),
        "allowed_codecs_utf8": _call_pickle("_codecs", "encode", "abc", "utf-8", protocol=p),
        "allowed_codecs_int": _call_pickle("_codecs", "encode", 5, "latin1", protocol=p),
        "allowed_bytes_alloc": _call_pickle("builtins", "bytes", 2**31 - 1, protocol=p),
        "allowed_ndarray_called": _call_pickle("numpy", "ndarray", 2**31 - 1, protocol=p),
        "allowed_dtype_of_int": _call_pickle("numpy", "dtype", 5, protocol=p),
        "allowed_reconstruct_other_shape": _call_pickle("numpy._core.multiarray", "_reconstruct", 7, protocol=p),
        "allowed_frombuffer_junk": _call_pickle("numpy._core.numeric", "_frombuffer", "x", "u1", protocol=p),
    }


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_no_pickle_payload_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, raw in _payloads(marker, protocol).items():
        path = folder / "test_batch"
        path.write_bytes(raw)
        with pytest.raises(DataFileError) as exc:
            load_cifar10("test", root=tmp_path)
        assert exc.value.path == str(path), name
        assert not marker.exists(), f"payload {name} (protocol {protocol}) ran"
        if not name.startswith("allowed"):
            assert isinstance(exc.value, PickleRefusedError), (name, str(exc.value))
            assert isinstance(exc.value, pickle.UnpicklingError)
            assert "not allowed" in str(exc.value), (name, str(exc.value))


def test_build_cannot_modify_the_allowed_helpers(tmp_path):
    """BUILD (setstate / setattr) on an allowed global would change it for later loads: refused."""
    path = tmp_path / "b"
    for target in (b"_codecs\nencode\n", b"numpy\nndarray\n", b"numpy\ndtype\n"):
        path.write_bytes(b"\x80\x02c" + target + b"N}X\x0c\x00\x00\x00__defaults__(X\x01\x00\x00\x00xts\x86b.")
        with pytest.raises(DataFileError):
            read_cifar_batch(path)
    # still works afterwards
    _batch(tmp_path / "cifar-10-batches-py", _PIX, [1, 2, 3], protocol=2)
    assert load_cifar10("test", root=tmp_path)[0].shape == (3, 3, 32, 32)


_DEEP_SCRIPT = """
import sys
from prune.data import read_cifar_batch
from prune.errors import DataFileError
try:
    read_cifar_batch(sys.argv[1])
except DataFileError as exc:
    print("DataFileError:", exc)
"""


@pytest.mark.parametrize("case", ["tuple_key", "tuple_in_frozenset", "nested_lists", "self_list", "build_cycle"])
def test_deeply_nested_pickle_cannot_crash_the_interpreter(tmp_path, case):
    """Hashing a dict key nested 10^6 levels overflowed the C stack (segmentation fault, exit -11) even in the
    restricted unpickler; a pre-scan of the opcodes bounds the nesting (100) and refuses cycles."""
    n = 1_000_000
    raw = {
        "tuple_key": b"\x80\x02}" + b")" + b"\x85" * n + b"K\x01s.",
        "tuple_in_frozenset": b"\x80\x04(" + b")" + b"\x85" * n + b"\x91.",
        "nested_lists": b"\x80\x02}X\x06\x00\x00\x00labels" + b"(" * n + b"l" * n + b"s.",
        "self_list": b"\x80\x02]q\x00h\x00a.",
        # two dtypes whose states contain each other: a cycle through BUILD
        "build_cycle": b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87Rq\x00"
                       b"cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87Rq\x01"
                       b"h\x00h\x01\x85bh\x01h\x00\x85b0h\x00h\x01\x86.",
    }[case]
    path = tmp_path / "test_batch"
    path.write_bytes(raw)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run([os.sys.executable, "-c", _DEEP_SCRIPT, str(path)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, (res.returncode, res.stderr[-500:])
    assert res.stdout.startswith(f"DataFileError: {path}: not a CIFAR batch: objects nested deeper than 100"), \
        res.stdout + res.stderr[-500:]


@pytest.mark.parametrize("case,problem", [
    ("empty", "empty file"),                       # was EOFError "Ran out of input", no file named
    ("truncated", "not a well-formed pickle"),
    ("not_a_dict", "not a CIFAR batch \\(a pickled dict\\), got list"),
    ("no_data_key", "no b'data' key"),
    ("no_labels_key", "no b'labels' key"),
    ("no_keys", "no b'data' or b'labels' key"),
    ("directory", "not a file"),
])
def test_cifar_unreadable_batches_name_file_and_problem(tmp_path, case, problem):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    path = folder / "test_batch"
    good = pickle.dumps({b"data": _PIX, b"labels": [1, 2, 3]}, protocol=4)
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif case == "not_a_dict":
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif case == "no_data_key":
        path.write_bytes(pickle.dumps({b"labels": [1, 2, 3], b"filenames": []}))
    elif case == "no_labels_key":
        path.write_bytes(pickle.dumps({b"data": _PIX}))
    elif case == "no_keys":
        path.write_bytes(pickle.dumps({}))
    else:
        path.mkdir()
    with pytest.raises(DataFileError) as exc:
        load_cifar10("test", root=tmp_path) if case != "directory" else read_cifar_batch(path)
    _assert_names(exc, path, problem)


def test_cifar_label_names_checked(tmp_path):
    from prune.data import cifar10_label_names

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    path = folder / "batches.meta"
    path.write_bytes(pickle.dumps({b"num_cases_per_batch": 10000}, protocol=2))
    with pytest.raises(DataFileError) as exc:
        cifar10_label_names(root=tmp_path)
    _assert_names(exc, path, "label_names")


# ------------------------------------------------------------------------------------- fuzz of the real shared files
def _pos(n: int):
    """An index in [0, n), biased towards the header and the tail where the structure is."""
    return st.one_of(st.integers(0, min(n - 1, 40)), st.integers(max(0, n - 64), n - 1), st.integers(0, n - 1))


def _apply(raw: bytes, op: tuple) -> bytes:
    kind = op[0]
    if kind == "truncate":
        return raw[: op[1]]
    if kind == "flip":
        b = bytearray(raw)
        b[op[1]] ^= 1 << op[2]
        return bytes(b)
    if kind == "xor":
        b = bytearray(raw)
        start, length, key = op[1], op[2], op[3]
        seg = np.frombuffer(bytes(b[start:start + length]), np.uint8) ^ np.uint8(key)
        b[start:start + length] = seg.tobytes()
        return bytes(b)
    if kind == "set":
        b = bytearray(raw)
        b[op[1]:op[1] + len(op[2])] = op[2]
        return bytes(b)
    if kind == "append":
        return raw + op[1]
    if kind == "insert":
        return raw[: op[1]] + op[2] + raw[op[1]:]
    raise AssertionError(op)


def _byte_ops(n: int):
    return st.one_of(
        st.tuples(st.just("truncate"), _pos(n)),
        st.tuples(st.just("flip"), _pos(n), st.integers(0, 7)),
        st.tuples(st.just("xor"), _pos(n), st.integers(1, 4096), st.integers(1, 255)),
        st.tuples(st.just("set"), _pos(n), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=64)),
        st.tuples(st.just("insert"), _pos(n), st.binary(min_size=1, max_size=16)),
    )


_IDX_HEADER_FIELDS = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 3), st.binary(min_size=1, max_size=1)),        # magic, type code, ndim
    st.tuples(st.just("set"), st.sampled_from([4, 8, 12]),
              st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 27, 29, 9999, 10001, 2**16, 2**31]))
              .map(lambda v: v.to_bytes(4, "big"))),
)


@st.composite
def _idx_case(draw):
    """(which file, layer, op): layer 'raw' edits the decompressed IDX (recompressed), 'gz' the .gz bytes."""
    which = draw(st.sampled_from(["labels", "images"]))
    layer = draw(st.sampled_from(["raw", "gz"]))
    n = _REAL["idx"][which][layer].__len__() if "idx" in _REAL else 10_000
    op = draw(_IDX_HEADER_FIELDS) if layer == "raw" and draw(st.booleans()) else draw(_byte_ops(n))
    return which, layer, op


_REAL: dict = {}


def _real_idx() -> dict:
    if "idx" not in _REAL:
        out = {}
        for which, path in (("labels", _need(MNIST_LABELS)), ("images", _need(MNIST_IMAGES))):
            gz = path.read_bytes()
            out[which] = {"gz": gz, "raw": gzip.decompress(gz)}
        _REAL["idx"] = out
    return _REAL["idx"]


def idx_file_call(case) -> str:
    """Write the real MNIST t10k pair with one file corrupted, load it; 'ok' after checking the arrays, or
    'DataFileError'. Any other exception propagates (a crash)."""
    which, layer, op = case
    real = _real_idx()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mnist"
        folder.mkdir()
        for kind in ("labels", "images"):
            dest = idx_path("mnist", "test", kind, tmp)
            if kind != which:
                dest.write_bytes(real[kind]["gz"])
            elif layer == "gz":
                dest.write_bytes(_apply(real[kind]["gz"], op))
            else:
                dest.write_bytes(gzip.compress(_apply(real[kind]["raw"], op), compresslevel=1))
        try:
            images, labels = load_idx_dataset("mnist", "test", root=tmp)
        except DataFileError as exc:
            assert str(exc).startswith(f"{exc.path}: ") and exc.path.startswith(tmp)
            return "DataFileError"
    assert images.dtype == np.uint8 and images.ndim == 3 and images.shape[1:] == (28, 28) and len(images) > 0
    assert labels.dtype == np.int64 and labels.shape == (len(images),)
    assert labels.min() >= 0 and labels.max() <= 9
    return "ok"


def _real_cifar() -> dict:
    if "cifar" not in _REAL:
        raw = _need(CIFAR_TEST).read_bytes()
        _REAL["cifar"] = {"bytes": raw, "batch": pickle.loads(raw, encoding="bytes")}
    return _REAL["cifar"]


_DTYPES = [np.uint8, np.int8, np.int16, ">i4", np.int64, np.uint64, np.float16, np.float32, ">f8", np.bool_,
           np.complex64, object, "U3", "S2"]


@st.composite
def _cifar_case(draw):
    """('bytes', op) edits the real file; ('pickle', protocol, edits) re-pickles (a slice of) the real batch."""
    if draw(st.booleans()):
        n = len(_REAL["cifar"]["bytes"]) if "cifar" in _REAL else 30_000_000
        return ("bytes", draw(_byte_ops(n)))
    protocol = draw(st.integers(0, 5))
    count = draw(st.sampled_from([None, 1, 2, 100, 1000]))          # None: the whole real batch
    edits = draw(st.lists(st.one_of(
        st.tuples(st.just("dtype"), st.sampled_from(range(len(_DTYPES))), st.sampled_from([1, 300, -1, 0.5, 1e40])),
        st.tuples(st.just("nan"), st.integers(0, 999)),
        st.tuples(st.just("label_shift"), st.sampled_from([0.5, 1, 10, -1, 3.7])),
        st.tuples(st.just("label_type"), st.sampled_from(["ndarray", "float", "tuple", "str", "bytes", "2d"])),
        st.tuples(st.just("drop_label"), st.just(0)),
        st.tuples(st.just("drop_key"), st.sampled_from([b"data", b"labels"])),
        st.tuples(st.just("reshape"), st.sampled_from([(-1, 3, 1024), (-1, 1536), (-1,)])),
        st.tuples(st.just("order"), st.sampled_from(["F", "strided"])),
    ), max_size=3))
    if count is None:                       # the full batch only with cheap edits (no 30M-element float copies)
        edits = [e for e in edits if e[0] not in ("dtype", "nan")]
    return ("pickle", protocol, count, edits)


def _edit_batch(batch: dict, count, edits) -> dict:
    out = dict(batch)
    data = out[b"data"] if count is None else out[b"data"][:count]
    labels = list(out[b"labels"]) if count is None else list(out[b"labels"][:count])
    for kind, arg, *rest in edits:
        if kind == "dtype":
            if _DTYPES[arg] in ("U3", "S2", object):      # a few images only: these pickle per element
                data, labels = data[:2].astype(_DTYPES[arg]), labels[:2]
            else:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    data = (data.astype(np.float64) * rest[0]).astype(_DTYPES[arg])
        elif kind == "nan":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = data.astype(np.complex128).real if data.dtype.kind == "c" else data.astype(np.float64)
            data.flat[arg % data.size] = np.nan
        elif kind == "label_shift":
            try:
                labels = np.asarray(labels) + arg
            except Exception:  # noqa: BLE001 - building the input (str labels cannot be shifted): leave them
                pass
        elif kind == "label_type":
            labels = {"ndarray": lambda v: np.array(v), "float": lambda v: np.array(v, np.float64),
                      "tuple": tuple, "str": lambda v: [str(x) for x in v], "bytes": lambda v: [b"1"] * len(v),
                      "2d": lambda v: np.array(v).reshape(-1, 1)}[arg](labels)
        elif kind == "drop_label":
            labels = list(labels)[1:]
        elif kind == "reshape" and data.ndim == 2:
            data = data.reshape(*arg)
        elif kind == "order":
            data = np.asfortranarray(data) if arg == "F" else np.repeat(data, 2, axis=-1)[..., ::2]
    out[b"data"], out[b"labels"] = data, labels
    for kind, arg, *rest in edits:
        if kind == "drop_key":
            out.pop(arg, None)
    return out


def cifar_file_call(case) -> str:
    """Write a corrupted or re-pickled real CIFAR-10 test_batch, load it; 'ok' after checking, or 'DataFileError'."""
    real = _real_cifar()
    if case[0] == "bytes":
        content = _apply(real["bytes"], case[1])
    else:
        _, protocol, count, edits = case
        content = pickle.dumps(_edit_batch(real["batch"], count, edits), protocol=protocol)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar-10-batches-py"
        folder.mkdir()
        (folder / "test_batch").write_bytes(content)
        try:
            images, labels = load_cifar10("test", root=tmp)
        except DataFileError as exc:
            assert str(exc).startswith(f"{exc.path}: ") and exc.path == str(folder / "test_batch")
            return "DataFileError"
    assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[1:] == (3, 32, 32) and len(images) > 0
    assert labels.dtype == np.int64 and labels.shape == (len(images),)
    assert labels.min() >= 0 and labels.max() <= 9
    return "ok"


#: name -> (strategy, call): the file fuzz targets, for drivers such as benchmarks/fuzz.py
FILE_TARGETS = {"idx_file": (_idx_case(), idx_file_call), "cifar_file": (_cifar_case(), cifar_file_call)}


def _run_fuzz(name: str, examples: int) -> Counter:
    strategy, call = FILE_TARGETS[name]
    counts: Counter = Counter()

    def one(case):
        counts[call(case)] += 1

    settings(max_examples=examples, deadline=None, database=None,
             suppress_health_check=list(HealthCheck))(given(strategy)(one))()
    print(f"\nfile fuzz {name}: {sum(counts.values())} cases, {dict(counts)}")
    return counts


def test_fuzz_real_idx_files():
    _real_idx()
    n = FUZZ_EXAMPLES or 120
    counts = _run_fuzz("idx_file", n)
    assert sum(counts.values()) >= n // 2 and counts["DataFileError"] > 0


def test_fuzz_real_cifar_batch():
    _real_cifar()
    n = FUZZ_EXAMPLES or 40
    counts = _run_fuzz("cifar_file", n)
    assert sum(counts.values()) >= n // 2 and counts["DataFileError"] > 0
