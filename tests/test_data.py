"""prune.data: IDX parsing, the shared MNIST / Fashion-MNIST copies, checksums, missing and corrupt files.

No test touches the network: RMT_REQUIRE_DATA is set for every test, and downloads go to file:// URLs.
"""
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from prune.data import (IDXFormatError, data_root, download, idx_path, load_idx_dataset, md5sum, read_idx,
                        verify_md5)

SHARED = Path(os.environ.get("RMT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
# .ci/run sets RMT_REQUIRE_DATA: there a missing shared data set fails the test instead of skipping it
DATA_REQUIRED = bool(os.environ.get("RMT_REQUIRE_DATA"))


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    monkeypatch.setenv("RMT_REQUIRE_DATA", "1")


def _write_idx(path: Path, array: np.ndarray, code: int = 0x08, compress: bool = True) -> Path:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_shared_test_split(name):
    if not (SHARED / name / "t10k-images-idx3-ubyte.gz").is_file() and not DATA_REQUIRED:
        pytest.skip(f"shared data not found under {SHARED}")
    images, labels = load_idx_dataset(name, "test", root=SHARED)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert labels.min() == 0 and labels.max() == 9
    assert np.all(np.bincount(labels, minlength=10) > 800)   # every class present
    assert images.max() == 255 and images.min() == 0
    assert images.flags.writeable


def test_shared_mnist_bytes_match_readme_md5():
    """The decompressed MNIST test images equal the MD5 stated in ../shared/data/README.md."""
    path = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not path.is_file() and not DATA_REQUIRED:
        pytest.skip(f"shared data not found under {SHARED}")
    images = read_idx(path)
    header = bytes([0, 0, 8, 3]) + np.array(images.shape, dtype=">u4").tobytes()
    assert hashlib.md5(header + images.tobytes()).hexdigest() == "2646ac647ad5339dbf082846283269ea"


def test_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RMT_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("RMT_DATA_DIR")
    assert data_root() == Path.home() / ".cache" / "rmt-pruning" / "data"
    expect = tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    assert idx_path("fashion_mnist", "test", "labels", tmp_path) == expect
    assert idx_path("mnist", "train", "images", tmp_path).name == "train-images-idx3-ubyte.gz"
    with pytest.raises(ValueError, match="split"):
        idx_path("mnist", "val", "images", tmp_path)
    with pytest.raises(ValueError, match="name"):
        idx_path("cifar", "test", "images", tmp_path)


@pytest.mark.parametrize("code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                        (0x0D, np.float32), (0x0E, np.float64)])
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_roundtrip(tmp_path, code, dtype, compress):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if dtype == np.uint8:
        a = np.abs(a).astype(dtype)
    path = _write_idx(tmp_path / ("a.idx.gz" if compress else "a.idx"), a, code, compress)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)


def test_small_dataset_loads(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    _write_idx(idx_path("mnist", "test", "images", tmp_path), images)
    _write_idx(idx_path("mnist", "test", "labels", tmp_path), labels)
    x, y = load_idx_dataset("mnist", "test", root=tmp_path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels.astype(np.int64))


@pytest.mark.parametrize("corruption", ["not_gzip", "bad_magic", "truncated", "truncated_gzip", "empty"])
def test_corrupt_file_raises(tmp_path, corruption):
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    path = idx_path("mnist", "test", "images", tmp_path)
    _write_idx(path, images)
    _write_idx(idx_path("mnist", "test", "labels", tmp_path), np.zeros(4, dtype=np.uint8))
    good = gzip.decompress(path.read_bytes())
    if corruption == "not_gzip":
        path.write_bytes(b"this is not a gzip stream at all")
    elif corruption == "bad_magic":
        path.write_bytes(gzip.compress(b"\x00\x01\x08\x03" + good[4:]))
    elif corruption == "truncated":
        path.write_bytes(gzip.compress(good[:-100]))
    elif corruption == "truncated_gzip":
        path.write_bytes(path.read_bytes()[:40])
    else:
        path.write_bytes(gzip.compress(b""))
    with pytest.raises(IDXFormatError, match=str(path.name)):
        load_idx_dataset("mnist", "test", root=tmp_path)
    assert issubclass(IDXFormatError, ValueError)


def test_wrong_shapes_raise(tmp_path):
    _write_idx(idx_path("mnist", "test", "images", tmp_path), np.zeros((3, 28, 28), dtype=np.uint8))
    _write_idx(idx_path("mnist", "test", "labels", tmp_path), np.zeros(4, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="labels for 3 images"):
        load_idx_dataset("mnist", "test", root=tmp_path)
    _write_idx(idx_path("mnist", "test", "labels", tmp_path), np.full(3, 12, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="outside 0..9"):
        load_idx_dataset("mnist", "test", root=tmp_path)


def test_missing_file_with_require_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        load_idx_dataset("fashion-mnist", "test", root=tmp_path)
    assert not (tmp_path / "fashion-mnist").exists()          # nothing downloaded, nothing created


def test_checksum(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"rmt-pruning" * 1000)
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    assert md5sum(path) == digest
    verify_md5(path, digest)
    verify_md5(path, digest.upper())
    with pytest.raises(ValueError, match="checksum mismatch"):
        verify_md5(path, "0" * 32)


def test_download_verifies_md5(tmp_path):
    """download() through a file:// URL (no network): a wrong digest raises and leaves nothing behind."""
    src = tmp_path / "src.gz"
    src.write_bytes(gzip.compress(b"payload"))
    dest = tmp_path / "root" / "mnist" / "x.gz"
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(src.as_uri(), dest, "f" * 32)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert download(src.as_uri(), dest, md5sum(src)) == dest
    assert dest.read_bytes() == src.read_bytes()
