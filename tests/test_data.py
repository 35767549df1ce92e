"""Dataset loaders (real Fashion-MNIST IDX files, npz, synthetic) and per-rank batch slicing."""
import gzip
import struct

import numpy as np
import pytest

from scalesim.errors import DataError, UsageError
from scalesim.train import data


def test_fashion_mnist_counts_from_real_files():
    x, y = data.load_dataset("fashion-mnist", "train")
    assert x.shape == (60000, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y).tolist() == [6000] * 10
    xt, yt = data.load_dataset("fashion-mnist", "test")
    assert xt.shape == (10000, 28, 28, 1)
    assert np.bincount(yt).tolist() == [1000] * 10


def test_missing_fashion_mnist_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset("fashion-mnist", "train", tmp_path)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.check_available("fashion-mnist", tmp_path / "nowhere")


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_reader_round_trip_and_truncation(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    assert np.array_equal(data.read_idx(tmp_path / "a.gz"), arr)
    with gzip.open(tmp_path / "b.gz", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x01\x02")
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(tmp_path / "b.gz")


def test_npz_loader(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, x_train=rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8), y_train=np.arange(20) % 4,
             x_test=rng.random((6, 8, 8)).astype(np.float32), y_test=np.arange(6) % 4)
    x, y = data.load_dataset("npz", "train", p)
    assert x.shape == (20, 8, 8, 3) and x.max() <= 1.0 and y.tolist() == (np.arange(20) % 4).tolist()
    xt, _ = data.load_dataset("npz", "test", p)
    assert xt.shape == (6, 8, 8, 1)
    with pytest.raises(DataError, match="no such file"):
        data.load_dataset("npz", "train", tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 4, 4)))
    with pytest.raises(DataError, match="missing array"):
        data.load_dataset("npz", "train", tmp_path / "bad.npz")
    with pytest.raises(UsageError):
        data.load_dataset("npz", "train")


def test_synthetic_and_unknown():
    spec = data.SyntheticSpec(shape=(16, 16, 3), num_classes=5, train_size=100, test_size=10)
    x, y = data.load_dataset("synthetic", "train", synthetic=spec)
    assert x.shape == (100, 16, 16, 3) and y.max() < 5
    with pytest.raises(UsageError, match="unknown dataset"):
        data.load_dataset("cifar-1000", "train")


def test_shard_covers_every_example_once():
    x, y = np.arange(103), np.arange(103)
    parts = [data.shard(x, y, r, 4)[0] for r in range(4)]
    assert np.array_equal(np.concatenate(parts), x)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_rank_batches_concatenate_to_the_global_batch():
    perm = data.epoch_permutation(100, epoch=3, seed=1)
    assert np.array_equal(perm, data.epoch_permutation(100, epoch=3, seed=1))   # same on every rank
    assert not np.array_equal(perm, data.epoch_permutation(100, epoch=4, seed=1))
    G, n = 24, 4
    for step in range(data.steps_per_epoch(100, G)):
        pieces = [data.batch_indices(perm, step, G, r, n) for r in range(n)]
        assert np.array_equal(np.concatenate(pieces), perm[step * G:(step + 1) * G])


def test_image_folder(tmp_path):
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                img = tf.constant(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
                (tmp_path / split / cls / f"{i}.png").write_bytes(tf.io.encode_png(img).numpy())
    x, y = data.load_dataset("folder", "train", tmp_path, image_size=8)
    assert x.shape == (6, 8, 8, 3) and 0 <= x.min() and x.max() <= 1 and y.tolist() == [0, 0, 0, 1, 1, 1]
    xt, yt = data.load_dataset("folder", "test", tmp_path, image_size=8)
    assert xt.shape == (2, 8, 8, 3) and yt.tolist() == [0, 1]
    with pytest.raises(DataError):
        data.load_dataset("folder", "train", tmp_path / "nothing")
