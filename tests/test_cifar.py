"""prune.data.load_cifar10: the shared batches, the restricted unpickler, missing and malformed files."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from prune.data import cifar10_label_names, load_cifar10, read_cifar_batch

SHARED = Path(os.environ.get("RMT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
DATA_REQUIRED = bool(os.environ.get("RMT_REQUIRE_DATA"))  # set by .ci/run: missing data fails, not skips


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    monkeypatch.setenv("RMT_REQUIRE_DATA", "1")


def _shared_or_skip():
    if not (SHARED / "cifar10-jpeg" / "cifar-10-batches-py" / "test_batch").is_file() and not DATA_REQUIRED:
        pytest.skip(f"shared CIFAR-10 not found under {SHARED}")
    return SHARED


@pytest.mark.parametrize("split", ["test", "data_batch_1"])
def test_shared_batches(split):
    images, labels = load_cifar10(split, root=_shared_or_skip())
    assert images.shape == (10000, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 1000))
    assert 60 < images.mean() < 200  # real images, not zeros
    assert cifar10_label_names(root=SHARED)[0] == "airplane" and len(cifar10_label_names(root=SHARED)) == 10


def test_train_split_needs_all_five_batches():
    with pytest.raises(FileNotFoundError, match="data_batch_2"):
        load_cifar10("train", root=_shared_or_skip())


class _Pwn:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (str(self.target),))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "test_batch"
    evil.write_bytes(pickle.dumps({b"data": _Pwn(marker), b"labels": [0]}))
    with pytest.raises(pickle.UnpicklingError, match="os|posix|makedirs"):
        read_cifar_batch(evil)
    assert not marker.exists()


def _write_batch(folder: Path, name: str, data, labels):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=4))


def test_malformed_batches_raise(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_batch(folder, "test_batch", np.zeros((3, 100), dtype=np.uint8), [0, 1, 2])
    with pytest.raises(ValueError, match="3072"):
        load_cifar10("test", root=tmp_path)
    _write_batch(folder, "test_batch", np.zeros((2, 3072), dtype=np.uint8), [0, 11])
    with pytest.raises(ValueError, match="0..9"):
        load_cifar10("test", root=tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="not a CIFAR batch"):
        load_cifar10("test", root=tmp_path)


def test_valid_synthetic_batch_round_trips(tmp_path):
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    _write_batch(tmp_path / "cifar-10-batches-py", "test_batch", data, [3, 7])
    images, labels = load_cifar10("test", root=tmp_path)
    np.testing.assert_array_equal(images.reshape(2, -1), data)
    np.testing.assert_array_equal(labels, [3, 7])


def test_missing_and_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="RMT_REQUIRE_DATA"):
        load_cifar10("test", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_cifar10("validation", root=tmp_path)
