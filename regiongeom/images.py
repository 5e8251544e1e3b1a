"""Image data sets from files already on the machine; nothing is downloaded.

* :func:`digits` — scikit-learn's 8 x 8 handwritten digits (they ship with
  scikit-learn), optionally upsampled to MNIST's 28 x 28 so that MNIST-shaped
  models can be tried without MNIST;
* :func:`mnist` and :func:`cifar10` — read from a folder laid out as
  torchvision leaves it (``root/MNIST/raw/*-idx?-ubyte[.gz]``,
  ``root/cifar-10-batches-py/``), without needing torchvision.

Every loader returns ``(images, labels)``: float64 images in ``[0, 1]`` of
shape ``(N, C, H, W)`` (the layout torch models take) and int64 labels.
Flatten with ``images.reshape(len(images), -1)`` for an MLP.

Examples
--------
>>> from regiongeom.images import digits
>>> x, y = digits(size=28)
>>> x.shape, x.dtype, float(x.max()), y[:5].tolist()
((1797, 1, 28, 28), dtype('float64'), 1.0, [0, 1, 2, 3, 4])
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

__all__ = ["digits", "mnist", "cifar10"]


def digits(size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as ``(N, 1, size, size)`` images in [0, 1].

    Parameters
    ----------
    size : {8, 28}
        8: the images as they are. 28: MNIST's shape, each pixel repeated
        3 x 3 (24 x 24) and a border of 2 zero pixels, as in the project's
        benchmarks.
    """
    if size not in (8, 28):
        raise ValueError(f"size must be 8 (as shipped) or 28 (MNIST's shape), got {size!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("digits() needs scikit-learn: pip install scikit-learn") from exc
    d = load_digits()
    x = d.images / 16.0
    if size == 28:
        x = np.pad(np.kron(x, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
    return x[:, None].astype(np.float64), d.target.astype(np.int64)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: big-endian header, then unsigned bytes)."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 8:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (MNIST's format)")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", count=ndim, offset=4).astype(int)
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: {body.size} bytes for shape {tuple(dims)}")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def mnist(root, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST from a torchvision folder: ``(N, 1, 28, 28)`` images in [0, 1].

    Parameters
    ----------
    root : path
        The ``root`` given to ``torchvision.datasets.MNIST`` (it holds
        ``MNIST/raw/``), or the ``raw`` folder itself.
    split : {"train", "test"}
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        imgs = _find(folder, f"{prefix}-images-idx3-ubyte")
        labs = _find(folder, f"{prefix}-labels-idx1-ubyte")
        if imgs is not None and labs is not None:
            x, y = _idx(imgs), _idx(labs)
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(f"{imgs} and {labs} do not hold matching images and labels")
            return (x[:, None] / 255.0).astype(np.float64), y.astype(np.int64)
    raise FileNotFoundError(
        f"no MNIST {split} files ({prefix}-images-idx3-ubyte[.gz], {prefix}-labels-idx1-ubyte[.gz]) under "
        f"{root}/MNIST/raw: point root at the folder torchvision downloaded MNIST to (regiongeom never "
        "downloads), or use regiongeom.images.digits(size=28)"
    )


def cifar10(root, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from a torchvision folder: ``(N, 3, 32, 32)`` images in [0, 1].

    Parameters
    ----------
    root : path
        The ``root`` given to ``torchvision.datasets.CIFAR10`` (it holds
        ``cifar-10-batches-py/``), or that folder itself.
    split : {"train", "test"}
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise FileNotFoundError(
            f"no CIFAR-10 {split} batches ({', '.join(missing)}) in {folder}: point root at the folder "
            "torchvision downloaded CIFAR-10 to (regiongeom never downloads)"
        )
    xs, ys = [], []
    for n in names:
        with open(folder / n, "rb") as f:
            # the format of the CIFAR-10 python version is a pickle: only read files you trust
            batch = pickle.load(f, encoding="bytes")
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        if data is None or labels is None:
            raise ValueError(f"{folder / n} is not a CIFAR-10 batch (no data/labels entries)")
        xs.append(np.asarray(data, np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(labels, np.int64))
    return (np.concatenate(xs) / 255.0).astype(np.float64), np.concatenate(ys)
