"""Datasets for training and measurement, as in-memory NumPy arrays (no TensorFlow needed except
for decoding an image folder).

    fashion-mnist  the four gzipped IDX files of Debian's `dataset-fashion-mnist`
                   (/usr/share/datasets/fashion-mnist/, override with --data or
                   SCALESIM_FASHION_MNIST_DIR); 60000 train / 10000 test, 28x28x1, 10 classes
    synthetic      uniform random images and labels of a given shape, for throughput-only runs
    npz            a user .npz with arrays x_train, y_train, x_test, y_test (NHWC or NHW images,
                   uint8 in [0, 255] or float already scaled; integer labels)
    folder         <path>/<split>/<class_name>/*.png|jpg (split 'train' / 'test'), decoded with
                   TensorFlow and resized to a square side (default 32)

Images are float32 NHWC in [0, 1]; labels int32. Every rank loads the same arrays and reads its
own part of each global batch (see `batch_indices`), so no rank ever sees another's examples in a step.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DataError, UsageError

DATASETS = ("fashion-mnist", "synthetic", "npz", "folder")
SPLITS = ("train", "test")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FIX = "install it with `apt-get install dataset-fashion-mnist` or pass --data DIR"
_IDX = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class SyntheticSpec(NamedTuple):
    shape: tuple = (28, 28, 1)
    num_classes: int = 10
    train_size: int = 8192
    test_size: int = 1024
    seed: int = 0


def fashion_mnist_dir(path=None) -> Path:
    return Path(path or os.environ.get("SCALESIM_FASHION_MNIST_DIR") or FASHION_MNIST_DIR)


def load_dataset(name: str, split: str, path=None, synthetic: SyntheticSpec = SyntheticSpec(),
                 image_size: int = 32):
    """(x float32 NHWC in [0, 1], y int32) for one split. Raises DataError naming the fix."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if name == "fashion-mnist":
        return _fashion_mnist(fashion_mnist_dir(path), split)
    if name == "synthetic":
        return _synthetic(synthetic, split)
    if name == "npz":
        return _npz(path, split)
    if name == "folder":
        return _folder(path, split, image_size)
    raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def check_available(name: str, path=None) -> None:
    """Cheap pre-flight check (no loading) that the dataset can be found; DataError naming the fix."""
    if name == "fashion-mnist":
        root = fashion_mnist_dir(path)
        missing = [f for pair in _IDX.values() for f in pair if not (root / f).is_file()]
        if missing:
            raise DataError(f"Fashion-MNIST not found: {root / missing[0]} is missing; {FASHION_MNIST_FIX}")
    elif name == "npz":
        if not path:
            raise UsageError("dataset 'npz' needs --data FILE.npz (arrays x_train, y_train, x_test, y_test)")
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file (expected an .npz with x_train, y_train, x_test, y_test)")
        _npz_arrays_present(Path(path))
    elif name == "folder":
        if not path:
            raise UsageError("dataset 'folder' needs --data DIR (DIR/train/<class>/*.png, DIR/test/<class>/...)")
        if not (Path(path) / "train").is_dir():
            raise DataError(f"{Path(path) / 'train'}: no such directory (expected {path}/train/<class_name>/<images>)")
    elif name != "synthetic":
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "synthetic" and path:
        raise UsageError("dataset 'synthetic' takes no --data path")


FASHION_MNIST_TRAIN = 60000


def known_train_size(name: str, train_subset: int | None = None, synthetic_size: int | None = None) -> int | None:
    """Training examples a run will have, where that is known without reading the data (None for a
    user's npz or folder), so a batch larger than the data can be refused before any training."""
    n = {"fashion-mnist": FASHION_MNIST_TRAIN, "synthetic": synthetic_size}.get(name)
    if n is None:
        return None
    return min(n, train_subset) if train_subset else n


def num_classes_of(name: str, y_train: np.ndarray, synthetic: SyntheticSpec = SyntheticSpec()) -> int:
    if name == "synthetic":
        return synthetic.num_classes
    return int(y_train.max()) + 1 if len(y_train) else 0


# --- readers ---------------------------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format), gzipped or not, as a uint8 array of its shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})")
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({body.size} of {int(np.prod(dims))} bytes)")
    return body.reshape(dims)


def _fashion_mnist(root: Path, split: str):
    img_name, lbl_name = _IDX[split]
    for name in (img_name, lbl_name):
        if not (root / name).is_file():
            raise DataError(f"Fashion-MNIST not found: {root / name} is missing; {FASHION_MNIST_FIX}")
    x = read_idx(root / img_name)
    y = read_idx(root / lbl_name)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{root}: images {x.shape} and labels {y.shape} do not match")
    return _to_float(x[..., None]), y.astype(np.int32)


def _synthetic(spec: SyntheticSpec, split: str):
    n = spec.train_size if split == "train" else spec.test_size
    rng = np.random.default_rng(spec.seed + (0 if split == "train" else 1))
    x = rng.random((n, *spec.shape), dtype=np.float32)
    y = rng.integers(0, spec.num_classes, n).astype(np.int32)
    return x, y


def _npz(path, split: str):
    if not path:
        raise UsageError("dataset 'npz' needs --data FILE.npz (arrays x_train, y_train, x_test, y_test)")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file (expected an .npz with x_train, y_train, x_test, y_test)")
    _npz_arrays_present(p)
    try:
        with np.load(p, allow_pickle=False) as f:
            x, y = f[f"x_{split}"], f[f"y_{split}"]
    except Exception as e:  # noqa: BLE001 - EOFError, BadZipFile, a damaged member ...
        raise DataError(f"{p}: not a readable .npz ({str(e) or type(e).__name__})") from None
    if len(y) == 0:
        raise DataError(f"{p}: y_{split} holds no examples")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{p}: need x_{split} as N x H x W [x C] and y_{split} as N labels; "
                        f"got {x.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise DataError(f"{p}: y_{split} must hold non-negative integer class labels")
    return _to_float(x), y.astype(np.int32)


def _npz_arrays_present(p: Path) -> None:
    """Reads only the archive's directory, so the launcher can check before starting ranks."""
    try:
        with np.load(p, allow_pickle=False) as f:
            if not hasattr(f, "files"):   # a plain .npy array, not an archive
                raise ValueError("a single array, not an .npz archive")
            missing = [k for k in NPZ_ARRAYS if k not in f.files]
    except Exception as e:  # noqa: BLE001 - EOFError (empty), BadZipFile, OSError, ValueError ...
        raise DataError(f"{p}: not a readable .npz ({str(e) or type(e).__name__})") from None
    if missing:
        raise DataError(f"{p}: missing array {', '.join(missing)} (need {', '.join(NPZ_ARRAYS)})")


def _folder(path, split: str, size: int):
    if not path:
        raise UsageError("dataset 'folder' needs --data DIR (DIR/train/<class>/*.png, DIR/test/<class>/...)")
    root = Path(path) / split
    if not root.is_dir():
        raise DataError(f"{root}: no such directory (expected {Path(path)}/{split}/<class_name>/<images>)")
    # Class ids come from the train split's sorted folder names, so both splits agree.
    classes = sorted(d.name for d in (Path(path) / "train").iterdir() if d.is_dir()) \
        if (Path(path) / "train").is_dir() else []
    files, labels = [], []
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name in classes:
            for f in sorted(d.iterdir()):
                if f.suffix.lower() in IMAGE_EXTS:
                    files.append(f)
                    labels.append(classes.index(d.name))
    if not files:
        raise DataError(f"{root}: no images found in class sub-folders")
    import tensorflow as tf

    out = np.empty((len(files), size, size, 3), np.float32)
    for i, f in enumerate(files):
        img = tf.io.decode_image(tf.io.read_file(str(f)), channels=3, expand_animations=False)
        out[i] = tf.image.resize(tf.image.convert_image_dtype(img, tf.float32), (size, size)).numpy()
    return out, np.asarray(labels, np.int32)


def _to_float(x: np.ndarray) -> np.ndarray:
    if np.issubdtype(x.dtype, np.integer):
        return (x.astype(np.float32) / 255.0)
    return x.astype(np.float32, copy=False)


# --- sharding --------------------------------------------------------------------------------
def shard(x, y, rank: int, size: int):
    """Rank's contiguous part of a dataset (used for sharded evaluation). Parts differ in length by
    at most one example, and together cover every example exactly once."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} not in [0, {size})")
    lo, hi = len(x) * rank // size, len(x) * (rank + 1) // size
    return x[lo:hi], y[lo:hi]


def subset(x, y, n: int | None, seed: int = 0):
    """A fixed class-agnostic random subset of n examples (all if n is None or >= len)."""
    if n is None or n >= len(x):
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
    return x[idx], y[idx]


def steps_per_epoch(num_examples: int, global_batch: int) -> int:
    """Full global batches per epoch (the remainder is dropped, so every rank sees equal batches)."""
    return num_examples // global_batch


def epoch_permutation(num_examples: int, epoch: int, seed: int = 0) -> np.ndarray:
    """The same permutation on every rank (same seed), i.e. a fresh random partition of the
    training set across workers each epoch (Goyal et al. 2017, Sec. 3)."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batch_indices(perm: np.ndarray, step: int, global_batch: int, rank: int, size: int) -> np.ndarray:
    """Indices of rank's local batch within global batch `step`: the rank-th contiguous slice, so
    concatenating the ranks' batches in rank order gives the global batch."""
    local = global_batch // size
    start = step * global_batch + rank * local
    return perm[start:start + local]
