"""Loaders: shapes, fixed splits, checksums, parsers on synthetic files, clear errors."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import random
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from gpu.data import (
    checksum,
    load_cifar,
    load_digits,
    load_fashion_mnist,
    load_mnist1d,
    load_text,
    parse_idx,
)
from gpu.data import fashion_mnist as fm
from gpu.data import text as text_mod

HAS_FASHION = all((fm.DEFAULT_ROOT / f).is_file() for f in fm.FILES.values())

# Pinned SHA-256 checksums (gpu.data.checksum: dtype, shape and bytes of the four arrays). A change
# means the data a record was measured on changed: scikit-learn's bundled digits, the Debian
# package's IDX files, or the MNIST-1D generator.
DIGITS_SHA256 = "e004aea57d3a14d2c4da708fe6f7a1bbaa0f2acf86224e25730fa96bb438d4c8"
FASHION_SHA256 = "9f94f0ae04c74f6bdc662665ec68efeea3a0165ece2f24ec8dd1544d9e56033a"
MNIST1D_200_SEED3_SHA256 = "92ffc638ab8e4adda031d5f2279c69ed6b06d23c60989a525172aeea48f19af8"
MNIST1D_DEFAULT_SHA256 = "8abe506d87d42cc7a8026d38554a5d35b6b41f2d69fd4bd606ac6f92f05e88dd"


def test_digits_split_and_checksum_are_fixed() -> None:
    a, b = load_digits(), load_digits()
    assert a.x_train.shape == (1437, 8, 8, 1) and a.x_test.shape == (360, 8, 8, 1)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0
    assert a.checksum == b.checksum == checksum(a.x_train, a.y_train, a.x_test, a.y_test)
    assert a.checksum == DIGITS_SHA256
    assert set(np.unique(a.y_test)) == set(range(10))


def test_checksum_sees_dtype_shape_and_content() -> None:
    x = np.arange(6, dtype=np.float32)
    assert checksum(x) != checksum(x.reshape(2, 3))
    assert checksum(x) != checksum(x.astype(np.float64))
    y = x.copy()
    y[3] = 7
    assert checksum(x) != checksum(y)


def _idx(array: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 0x08, array.ndim])
        + struct.pack(f">{array.ndim}i", *array.shape)
        + (array.astype(np.uint8).tobytes())
    )


def test_parse_idx_roundtrip_and_errors() -> None:
    a = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(_idx(a)), a)
    with pytest.raises(ValueError, match="magic"):
        parse_idx(b"\x01\x00\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="type code"):
        parse_idx(b"\x00\x00\x07\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="data bytes"):
        parse_idx(_idx(a)[:-1])


def test_fashion_loader_on_synthetic_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (7, 28, 28)),
        "y_train": rng.integers(0, 10, 7),
        "x_test": rng.integers(0, 256, (3, 28, 28)),
        "y_test": rng.integers(0, 10, 3),
    }
    for k, name in fm.FILES.items():
        (tmp_path / name).write_bytes(gzip.compress(_idx(arrays[k])))
    ds = load_fashion_mnist(tmp_path, n_train=5)
    assert ds.x_train.shape == (5, 28, 28, 1) and ds.x_test.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(ds.x_train[..., 0], arrays["x_train"][:5] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    with pytest.raises(ValueError, match="n_train"):
        load_fashion_mnist(tmp_path, n_train=8)


def test_fashion_missing_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not HAS_FASHION, reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_real_files() -> None:
    assert load_fashion_mnist().checksum == FASHION_SHA256
    ds = load_fashion_mnist(n_test=1000)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
    # the first training labels of the published data set (ankle boot, t-shirt, t-shirt, dress, ...)
    np.testing.assert_array_equal(ds.y_train[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    assert np.bincount(ds.y_train).tolist() == [6000] * 10


def test_mnist1d_is_generated_deterministically_without_side_effects() -> None:
    # the legacy global generators are exactly what the loader must leave untouched
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    before = (random.random(), np.random.random())  # noqa: NPY002
    random.seed(123)
    np.random.seed(123)  # noqa: NPY002
    a = load_mnist1d(num_samples=200, seed=3)
    after = (random.random(), np.random.random())  # noqa: NPY002
    assert before == after  # global generators untouched
    b = load_mnist1d(num_samples=200, seed=3)
    assert a.x_train.shape == (160, 40, 1) and a.x_test.shape == (40, 40, 1)
    assert a.checksum == b.checksum == MNIST1D_200_SEED3_SHA256
    assert load_mnist1d(num_samples=200, seed=4).checksum != a.checksum


def test_mnist1d_default_checksum_and_exact_sizes() -> None:
    ds = load_mnist1d()
    assert ds.checksum == MNIST1D_DEFAULT_SHA256
    assert (len(ds.y_train), len(ds.y_test)) == (3200, 800)
    small = load_mnist1d(num_samples=30, seed=0, train_split=0.5)
    assert (len(small.y_train), len(small.y_test)) == (15, 15)  # exactly the samples asked for


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 5}, "num_samples"),
        ({"num_samples": 205}, "multiple of 10"),  # the generator would silently make 200
        ({"num_samples": 200.0}, "num_samples"),
        ({"num_samples": True}, "num_samples"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": None}, "seed"),
        ({"train_split": 1.0}, "train_split"),
        ({"train_split": "0.5"}, "train_split"),
        ({"num_samples": 10, "train_split": 0.05}, "empty split"),
    ],
)
def test_mnist1d_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_mnist1d(**{"num_samples": 200, **kwargs})


def test_mnist1d_names_a_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    # mnist1d.data imports requests at module level: without it the package itself is present
    monkeypatch.delitem(sys.modules, "mnist1d.data", raising=False)
    monkeypatch.setitem(sys.modules, "requests", None)
    with pytest.raises(FileNotFoundError, match=r"imports 'requests'.*pip install requests"):
        load_mnist1d(num_samples=20)
    monkeypatch.delitem(sys.modules, "mnist1d.data", raising=False)
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    with pytest.raises(FileNotFoundError, match="pip install mnist1d"):
        load_mnist1d(num_samples=20)


def _write_cifar(root: Path, variant: int, n: int, rng: np.random.Generator) -> dict:
    folder, train_files, test_files, label_key = {
        10: (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            ["test_batch"],
            b"labels",
        ),
        100: ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
    }[variant]
    d = root / folder
    d.mkdir()
    written = {}
    for f in train_files + test_files:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, variant, n).tolist()
        with (d / f).open("wb") as fh:
            pickle.dump({b"data": data, label_key: labels}, fh)
        written[f] = (data, labels)
    return written


@pytest.mark.parametrize("variant", [10, 100])
def test_cifar_parser_on_synthetic_batches(tmp_path: Path, variant: int) -> None:
    written = _write_cifar(tmp_path, variant, 4, np.random.default_rng(variant))
    ds = load_cifar(tmp_path, variant)
    n_train_files = 5 if variant == 10 else 1
    assert ds.x_train.shape == (4 * n_train_files, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    data, labels = written["data_batch_1" if variant == 10 else "train"]
    # row layout: 1024 red, 1024 green, 1024 blue values, each 32 rows of 32 pixels
    i, j = 5, 17
    for c in range(3):
        assert ds.x_train[0, i, j, c] == pytest.approx(data[0, c * 1024 + i * 32 + j] / 255.0)
    np.testing.assert_array_equal(ds.y_train[:4], labels)
    assert ds.num_classes == variant
    assert (
        load_cifar(tmp_path / tmp_path.iterdir().__next__().name, variant).checksum == ds.checksum
    )


def test_cifar_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_cifar(tmp_path, 10)
    with pytest.raises(ValueError, match="variant"):
        load_cifar(tmp_path, 20)
    with pytest.raises(ValueError, match=r"root must name a directory.*never downloaded"):
        load_cifar(None)
    with pytest.raises(ValueError, match="CIFAR-100"):
        load_cifar(None, 100)


def test_text_snapshot_is_hashed_and_split() -> None:
    raw = text_mod.SNAPSHOT.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == text_mod.SNAPSHOT_SHA256
    ds = load_text()
    n = len(raw.decode("utf-8"))
    assert len(ds.train) + len(ds.test) == n and len(ds.test) == round(0.1 * n)
    assert ds.decode(ds.train[:10]) == raw.decode("utf-8")[:10]
    assert ds.checksum == load_text().checksum


def test_text_from_file_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "t.txt"
    p.write_text("abcabcabcd" * 10, encoding="utf-8")
    ds = load_text(p, test_fraction=0.2)
    assert ds.vocab == ("a", "b", "c", "d") and len(ds.test) == 20
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"\xff\xfe\xfa" * 10)
    with pytest.raises(ValueError, match="UTF-8"):
        load_text(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_text(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="test_fraction"):
        load_text(p, test_fraction=0.0)
    forged = tmp_path / "snap.txt"
    forged.write_text("changed", encoding="utf-8")
    monkeypatch.setattr(text_mod, "SNAPSHOT", forged)
    with pytest.raises(ValueError, match="hash"):
        load_text()
