import gzip
import hashlib
import pickle
import shutil
import urllib.error

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd

from lt_core import data
from lt_core.data import DataCorruptError, DataNotFoundError, load_dataset, validation_indices

from .conftest import DATA_DIR, needs_mnist


@pytest.fixture(autouse=True)
def _fresh_cache():
    data._ARRAY_CACHE.clear()
    data._DEVICE_CACHE.clear()
    yield
    data._DEVICE_CACHE.clear()


def test_validation_indices_are_numpys_legacy_choice():
    idx = validation_indices(60000, 5000, 0)
    expected = np.random.RandomState(0).choice(60000, 5000, replace=False)
    assert np.array_equal(idx, expected)
    np.random.seed(0)  # the original code's form: global seed then np.random.choice
    assert np.array_equal(idx, np.random.choice(60000, 5000, replace=False))
    assert len(set(idx.tolist())) == 5000


@needs_mnist
def test_mnist_loads_from_shared_gz_files():
    ds = load_dataset("mnist", data_dir=str(DATA_DIR))
    assert ds.train.x.shape == (55000, 1, 28, 28) and ds.val.x.shape == (5000, 1, 28, 28)
    assert ds.test.x.shape == (10000, 1, 28, 28)
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    assert float(ds.train.x.min()) == 0.0 and float(ds.train.x.max()) == 1.0
    assert sorted(ds.test.y.unique().tolist()) == list(range(10))
    # the validation split is exactly the images at RandomState(0).choice, in that order
    arrays = data.load_arrays("mnist", str(DATA_DIR))
    idx = validation_indices(60000)
    assert torch.equal(ds.val.y, torch.from_numpy(arrays["train_y"][idx].astype(np.int64)))
    keep = np.setdiff1d(np.arange(60000), idx)
    assert torch.equal(ds.train.x[:3] * 255, torch.from_numpy(arrays["train_x"][keep[:3]]).float())
    # mean pixel of the canonical MNIST training set
    assert float(torch.cat([ds.train.x, ds.val.x]).mean()) == pytest.approx(0.1307, abs=5e-4)


def _copy_mnist(dst):
    dst.mkdir(parents=True)
    for name in data.IDX_FILES.values():
        shutil.copy(DATA_DIR / "mnist" / f"{name}.gz", dst / f"{name}.gz")


@needs_mnist
def test_truncated_gz_file_is_a_clear_error(tmp_path):
    _copy_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: 100_000])
    with pytest.raises(DataCorruptError, match="train-images-idx3-ubyte.gz.*truncated or corrupted"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)


def test_idx_with_wrong_length_is_a_clear_error(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    header = bytes([0, 0, 8, 1]) + (60000).to_bytes(4, "big")
    for name in data.IDX_FILES.values():
        with gzip.open(folder / f"{name}.gz", "wb") as fh:
            fh.write(header + bytes(10))
    with pytest.raises(DataCorruptError, match="not a valid MNIST IDX file"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)


@needs_mnist
def test_checksum_file_beside_the_data_is_checked(tmp_path):
    _copy_mnist(tmp_path / "mnist")
    shutil.copy(DATA_DIR / "mnist" / "SHA256SUMS", tmp_path / "mnist" / "SHA256SUMS")
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-1] + bytes([(raw[-1] + 1) % 10])))  # one label changed
    with pytest.raises(DataCorruptError, match="SHA-256"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)


@needs_mnist
def test_plain_file_beside_a_checksum_list_of_gzipped_files_is_refused(tmp_path):
    _copy_mnist(tmp_path / "mnist")
    shutil.copy(DATA_DIR / "mnist" / "SHA256SUMS", tmp_path / "mnist" / "SHA256SUMS")
    gz = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    raw = gzip.decompress(gz.read_bytes())
    gz.unlink()
    labels = np.frombuffer(raw[8:], dtype=np.uint8).copy()
    np.random.RandomState(0).shuffle(labels)  # shuffled labels: a plausible, wrong file
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(raw[:8] + labels.tobytes())
    with pytest.raises(DataCorruptError) as err:
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    assert "train-labels-idx1-ubyte: cannot be checked" in str(err.value)
    assert "lists only train-labels-idx1-ubyte.gz" in str(err.value)


@needs_mnist
def test_gzipped_file_is_checked_against_a_list_of_plain_files(tmp_path):
    for copy in ("good", "bad"):  # two folders: loaded arrays are cached per folder
        folder = tmp_path / copy / "mnist"
        _copy_mnist(folder)
        lines = [f"{hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()}  {p.name[:-3]}"
                 for p in sorted(folder.glob("*.gz"))]
        (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    load_dataset("mnist", data_dir=str(tmp_path / "good"), download=False)  # good copies pass
    tmp_path = tmp_path / "bad"
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-1] + bytes([(raw[-1] + 1) % 10])))
    with pytest.raises(DataCorruptError, match="SHA-256"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)


def test_missing_files_without_download_name_dir_and_files(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    msg = str(err.value)
    assert str(tmp_path / "mnist") in msg
    for name in data.IDX_FILES.values():
        assert f"{name}.gz" in msg


def test_missing_files_and_no_network_is_a_clear_error(tmp_path, monkeypatch):
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive",
                        lambda url, *a, **k: offline(url))
    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive",
                        lambda url, *a, **k: offline(url))
    with pytest.raises(DataNotFoundError, match="could not be downloaded") as err:
        load_dataset("fashion_mnist", data_dir=str(tmp_path))
    assert calls, "the torchvision download path was not tried"
    assert str(tmp_path / "fashion_mnist") in str(err.value)


@needs_mnist
def test_torchvision_layout_uncompressed_loads(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.IDX_FILES.values():
        (raw / name).write_bytes(gzip.decompress((DATA_DIR / "mnist" / f"{name}.gz").read_bytes()))
    ds = load_dataset("mnist", data_dir=str(tmp_path), download=False)
    # torchvision's own class reads the same files and agrees
    tv = tvd.MNIST(str(tmp_path), train=False, download=False)
    assert torch.equal(ds.test.y, tv.targets)
    assert torch.equal((ds.test.x[:, 0] * 255).round().to(torch.uint8), tv.data)


# -- CIFAR-10: a small fixture in torchvision's format, loaded through torchvision's class --------

def write_cifar_fixture(root, per_batch=12, seed=0):
    rng = np.random.RandomState(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        x = rng.randint(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.randint(0, 10, size=per_batch)]
        images[name] = (x, y)
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": x, "labels": y, "batch_label": name}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, fh)
    return folder, images


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_fixture(tmp_path, monkeypatch):
    folder, images = write_cifar_fixture(tmp_path)
    # torchvision checks each file against CIFAR-10's published MD5s: point it at the fixture's
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")]
                                                    for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                              "md5": _md5(folder / "batches.meta")})
    return tmp_path, folder, images


def test_cifar_fixture_loads_through_torchvision(cifar_fixture):
    root, folder, images = cifar_fixture
    ds = load_dataset("cifar10", data_dir=str(root), download=False, val_size=10)
    assert ds.train.x.shape == (50, 3, 32, 32) and ds.val.x.shape == (10, 3, 32, 32)
    assert ds.test.x.shape == (12, 3, 32, 32)
    x0, y0 = images["test_batch"]
    # CIFAR rows are channel-major 3x32x32: the tensor is NCHW, divided by 255
    assert torch.equal((ds.test.x * 255).round().to(torch.uint8).reshape(12, -1), torch.from_numpy(x0))
    assert ds.test.y.tolist() == y0
    idx = validation_indices(60, 10, 0)
    all_y = sum((images[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert ds.val.y.tolist() == [all_y[i] for i in idx]


def test_cifar_corrupted_file_is_a_clear_error(cifar_fixture):
    root, folder, _ = cifar_fixture
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataCorruptError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=str(root), download=False, val_size=10)


def test_cifar_real_checksums_reject_a_foreign_file(tmp_path):
    write_cifar_fixture(tmp_path)
    with pytest.raises(DataCorruptError, match="checksum"):
        load_dataset("cifar10", data_dir=str(tmp_path), download=False, val_size=10)


def test_cifar_missing_names_folder_and_files(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", data_dir=str(tmp_path), download=False)
    assert "cifar-10-batches-py" in str(err.value) and "data_batch_1" in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_data_dir_falls_back_to_env_then_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LT_DATA_DIR", str(tmp_path / "env"))
    assert data.resolve_data_dir(None) == tmp_path / "env"
    assert data.resolve_data_dir(str(tmp_path / "given")) == tmp_path / "given"
    monkeypatch.delenv("LT_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.resolve_data_dir(None) == tmp_path / "cache" / "lt_core" / "data"
