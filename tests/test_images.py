"""Image loaders: digits from scikit-learn, MNIST and CIFAR-10 from torchvision-style folders."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from regiongeom.images import cifar10, digits, mnist


def test_digits_sizes():
    x8, y = digits()
    x28, y28 = digits(size=28)
    assert x8.shape == (1797, 1, 8, 8) and x28.shape == (1797, 1, 28, 28)
    np.testing.assert_array_equal(y, y28)
    # each pixel repeated 3 x 3 inside a zero border of 2
    np.testing.assert_array_equal(x28[:, :, 2:26:3, 2:26:3], x8)
    assert x28[:, :, :2].max() == 0 and x28[:, :, 26:].max() == 0
    assert 0.0 <= x8.min() and x8.max() == 1.0
    with pytest.raises(ValueError, match="size must be 8"):
        digits(size=16)


def _write_idx(path, arr, compress):
    head = bytes([0, 0, 8, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    data = head + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_a_torchvision_folder(tmp_path, compress):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs, labs = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)
    _write_idx(raw / "t10k-images-idx3-ubyte", imgs, compress)
    _write_idx(raw / "t10k-labels-idx1-ubyte", labs, compress)
    x, y = mnist(tmp_path, split="test")
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float64
    np.testing.assert_array_equal(x[:, 0] * 255, imgs)
    np.testing.assert_array_equal(y, labs)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        mnist(tmp_path, split="train")
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0b\x01")
    _write_idx(raw / "train-labels-idx1-ubyte", labs, False)
    with pytest.raises(ValueError, match="not an IDX file"):
        mnist(tmp_path)


def test_cifar10_from_a_torchvision_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (4, 3072)).astype(np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": [3, 1, 4, 1]}, f)
    x, y = cifar10(tmp_path, split="test")
    assert x.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal((x * 255).round().astype(np.uint8).reshape(4, -1), data)
    assert y.tolist() == [3, 1, 4, 1]
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        cifar10(tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        cifar10(tmp_path, split="val")
