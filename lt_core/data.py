"""Datasets: MNIST, Fashion-MNIST and CIFAR-10, split and held as tensors on the run's device.

Where the files are looked for (``data_dir`` from the config, else ``$LT_DATA_DIR``, else
``~/.cache/lt_core/data``):

* MNIST: ``<dir>/mnist/``, ``<dir>/MNIST/raw/`` (torchvision's layout) or ``<dir>`` itself, holding
  the four IDX files, gzipped (``train-images-idx3-ubyte.gz``...) or not. Fashion-MNIST likewise
  under ``fashion_mnist/`` or ``FashionMNIST/raw/``.
* CIFAR-10: torchvision's ``cifar-10-batches-py/`` under ``<dir>`` or ``<dir>/cifar10/``, loaded
  by ``torchvision.datasets.CIFAR10`` (which checks every file's MD5).

When the files are missing, torchvision's dataset classes download them into ``<dir>`` (their
usual layout). Without files and without network, :class:`DataNotFoundError` names the directory
and the files expected; a truncated or corrupted file raises :class:`DataCorruptError`.

The split is the original protocol's (section 2.1): ``RandomState(0).choice(N, 5000,
replace=False)`` indexes the validation images, the rest (in their original order) train; pixels
are divided by 255; no augmentation.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch



@dataclass(frozen=True)
class DatasetInfo:
    """What an architecture and a schedule need to know of a dataset before loading it."""

    train_size: int  # images in the original training set (the validation split comes out of it)
    test_size: int
    input_shape: Tuple[int, int, int]  # (C, H, W)
    classes: int


DATASET_INFO: Dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(60000, 10000, (1, 28, 28), 10),
    "fashion_mnist": DatasetInfo(60000, 10000, (1, 28, 28), 10),
    "cifar10": DatasetInfo(50000, 10000, (3, 32, 32), 10),
}
DATASETS = tuple(DATASET_INFO)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_FOLDERS = {"mnist": ("mnist", "MNIST/raw", "."), "fashion_mnist": ("fashion_mnist", "FashionMNIST/raw", ".")}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "test_batch", "batches.meta")


class DataError(RuntimeError):
    """A dataset could not be loaded."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The dataset's files are not there and could not be downloaded."""


class DataCorruptError(DataError):
    """A dataset file is truncated or does not hold what it should."""


def default_data_dir() -> Path:
    env = os.environ.get("LT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "lt_core" / "data"


def resolve_data_dir(data_dir: Optional[str]) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


# -- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataCorruptError(f"{path}: cannot be read ({exc}); the file is truncated or corrupted. "
                               "Delete it and download it again.") from exc


def parse_idx(data: bytes, *, expect_ndim: int, expect_count: int, path: Path) -> np.ndarray:
    """Parse an IDX ubyte file (big-endian header), checking its header against what MNIST holds."""
    def bad(why: str) -> DataCorruptError:
        return DataCorruptError(f"{path}: not a valid MNIST IDX file ({why}); the file is truncated or "
                                "corrupted. Delete it and download it again.")

    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise bad("bad magic number")
    ndim = data[3]
    if ndim != expect_ndim:
        raise bad(f"{ndim} dimensions, expected {expect_ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise bad("header cut short")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if dims[0] != expect_count or dims[1:] not in ([], [28, 28]):
        raise bad(f"shape {dims}, expected [{expect_count}" + (", 28, 28]" if ndim == 3 else "]"))
    size = int(np.prod(dims))
    if len(data) - header != size:
        raise bad(f"{len(data) - header} bytes of data, expected {size}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _check_sha256(folder: Path, path: Path) -> None:
    """Check ``path`` against the folder's ``SHA256SUMS``, whatever its compression.

    The list may name the gzipped file or the plain one. A plain file whose list names only the
    gzipped one cannot be checked and is refused (a swapped-in plain file is how a damaged copy
    would slip through); a gzipped file whose list names only the plain one is checked by its
    content. Without a ``SHA256SUMS`` nothing is checked (the IDX headers still are).
    """
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return
    expected = {}
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            expected[parts[1].lstrip("*")] = parts[0].lower()
    plain = path.name[:-3] if path.suffix == ".gz" else path.name
    if path.name in expected:
        listed, digest = path.name, hashlib.sha256(path.read_bytes()).hexdigest()
    elif plain in expected:
        listed, digest = plain, hashlib.sha256(_read_bytes(path)).hexdigest()
    elif f"{plain}.gz" in expected:
        raise DataCorruptError(f"{path}: cannot be checked, {sums} lists only {plain}.gz; put the gzipped file "
                               f"back, or add {path.name}'s SHA-256 to {sums.name}")
    else:
        return
    if digest != expected[listed]:
        raise DataCorruptError(f"{path}: SHA-256 {digest} does not match {sums} ({expected[listed]}); "
                               "the file is corrupted. Replace it with a good copy.")


def _find_idx_folder(root: Path, dataset: str) -> Optional[Path]:
    for sub in IDX_FOLDERS[dataset]:
        folder = (root / sub).resolve() if sub != "." else root
        if all(_idx_path(folder, name) is not None for name in IDX_FILES.values()):
            return folder
    return None


def _idx_path(folder: Path, name: str) -> Optional[Path]:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _expected_idx_message(root: Path, dataset: str) -> str:
    files = ", ".join(f"{n}.gz" for n in IDX_FILES.values())
    folders = " or ".join(str(root / s) if s != "." else str(root) for s in IDX_FOLDERS[dataset])
    return (f"{dataset}: dataset files not found in {folders}, and they could not be downloaded. "
            f"Put the four IDX files ({files}; gzipped or not) in {root / IDX_FOLDERS[dataset][0]}, "
            f"or set the data directory (--data-dir, DataConfig.data_dir or LT_DATA_DIR) to the folder that holds "
            f"'{IDX_FOLDERS[dataset][0]}/'.")


def _download_failure(exc: BaseException) -> str:
    """Why a download failed, on one line: torchvision reports every mirror it tried over several
    lines ending with the last one's error (e.g. ``<urlopen error [Errno -2] Name or service not known>``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"download failed: {lines[-1].strip('<>') if lines else type(exc).__name__}"


@contextlib.contextmanager
def _removed_if_left_empty(folders):
    """Folders that do not exist yet and that a failed download creates are removed again if empty, so
    a failure leaves the data directory as it was."""
    new = [Path(f) for f in folders if not Path(f).exists()]
    try:
        yield
    except BaseException:
        for folder in reversed(new):
            with contextlib.suppress(OSError):  # not empty (a partial download is kept), or gone
                folder.rmdir()
        raise


def _download_idx(root: Path, dataset: str) -> None:
    from torchvision import datasets as tvd

    cls = tvd.MNIST if dataset == "mnist" else tvd.FashionMNIST
    with _removed_if_left_empty([*root.parents][::-1] + [root, root / cls.__name__, root / cls.__name__ / "raw"]):
        for train in (True, False):
            cls(str(root), train=train, download=True)


def load_idx_arrays(root: Path, dataset: str, download: bool) -> Dict[str, np.ndarray]:
    folder = _find_idx_folder(root, dataset)
    if folder is None and download:
        try:
            _download_idx(root, dataset)
        except Exception as exc:  # network down, host unreachable, bad checksum...
            raise DataNotFoundError(f"{_expected_idx_message(root, dataset)} ({_download_failure(exc)})") from exc
        folder = _find_idx_folder(root, dataset)
    if folder is None:
        raise DataNotFoundError(_expected_idx_message(root, dataset))
    info = DATASET_INFO[dataset]
    counts = {"train": info.train_size, "test": info.test_size}
    out = {}
    for key, name in IDX_FILES.items():
        path = _idx_path(folder, name)
        _check_sha256(folder, path)
        split, what = key.split("_")
        out[key] = parse_idx(_read_bytes(path), expect_ndim=3 if what == "images" else 1,
                             expect_count=counts[split], path=path)
    for split in ("train", "test"):
        labels = out[f"{split}_labels"]
        if labels.max() > 9:
            raise DataCorruptError(f"{folder}: {split} labels hold values above 9; the label file is corrupted")
    return {"train_x": out["train_images"][:, None], "train_y": out["train_labels"],
            "test_x": out["test_images"][:, None], "test_y": out["test_labels"]}


# -- CIFAR-10 ------------------------------------------------------------------------------------

def _cifar_root(root: Path) -> Optional[Path]:
    for candidate in (root, root / "cifar10"):
        if (candidate / CIFAR_FOLDER).is_dir():
            return candidate
    return None


def load_cifar_arrays(root: Path, download: bool) -> Dict[str, np.ndarray]:
    from torchvision import datasets as tvd

    base = _cifar_root(root)
    expected = (f"cifar10: dataset files not found in {root / CIFAR_FOLDER}, and they could not be "
                f"downloaded. Put torchvision's CIFAR-10 folder '{CIFAR_FOLDER}/' (files "
                f"{', '.join(CIFAR_FILES)}) in {root}, or set the data directory (--data-dir, DataConfig.data_dir or "
                "LT_DATA_DIR) to the folder that holds it.")
    if base is None:
        if not download:
            raise DataNotFoundError(expected)
        try:
            with _removed_if_left_empty([*root.parents][::-1] + [root]):
                tvd.CIFAR10(str(root), train=True, download=True)
        except Exception as exc:
            raise DataNotFoundError(f"{expected} ({_download_failure(exc)})") from exc
        base = root
    folder = base / CIFAR_FOLDER
    missing = [name for name in CIFAR_FILES if not (folder / name).is_file()]
    if missing:
        raise DataNotFoundError(f"cifar10: {folder} lacks {', '.join(missing)}. " + expected)
    try:
        train = tvd.CIFAR10(str(base), train=True, download=False)
        test = tvd.CIFAR10(str(base), train=False, download=False)
    except Exception as exc:
        from torchvision.datasets.utils import check_integrity

        bad = [name for name, md5 in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list
               if not check_integrity(str(folder / name), md5)]
        raise DataCorruptError(f"cifar10: {folder}: file(s) {', '.join(bad) or '?'} failed torchvision's "
                               f"checksum or could not be read ({exc}); they are truncated or corrupted. "
                               "Delete the folder and download it again.") from exc
    return {"train_x": train.data.transpose(0, 3, 1, 2), "train_y": np.asarray(train.targets, np.uint8),
            "test_x": test.data.transpose(0, 3, 1, 2), "test_y": np.asarray(test.targets, np.uint8)}


# -- splits on the device ------------------------------------------------------------------------

@dataclass
class Split:
    x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    y: torch.Tensor  # (N,) int64
    # (N, C, H, W) uint8 with x == pixels / 255 exactly: a quarter of the bytes to gather batches from
    pixels: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return self.y.shape[0]


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split

    @property
    def splits(self) -> Dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}


def standardize_images(x: torch.Tensor) -> torch.Tensor:
    """Each image of ``x`` (N, C, H, W) shifted and scaled to mean 0 and standard deviation 1 over its
    own pixels: ``(x - mean) / max(std, 1 / sqrt(C*H*W))``, the std the population one (the rule of
    TensorFlow's ``tf.image.per_image_standardization``; the floor keeps a blank image finite)."""
    flat = x.reshape(len(x), -1)
    mean = flat.mean(1, keepdim=True)
    std = flat.var(1, unbiased=False, keepdim=True).sqrt().clamp_min(flat.shape[1] ** -0.5)
    return ((flat - mean) / std).view(x.shape)


def standardized(ds: Dataset) -> Dataset:
    """``ds`` with every image standardised (:func:`standardize_images`); same splits, same labels."""
    return Dataset(ds.name, *(Split(standardize_images(s.x), s.y) for s in (ds.train, ds.val, ds.test)))


def validation_indices(n: int, val_size: int = 5000, seed: int = 0) -> np.ndarray:
    """The original protocol's validation indices: numpy's legacy ``RandomState(seed).choice``."""
    return np.random.RandomState(seed).choice(n, val_size, replace=False)


_ARRAY_CACHE: Dict[Tuple[str, str], Dict[str, np.ndarray]] = {}
_DEVICE_CACHE: Dict[tuple, Dataset] = {}


def load_arrays(dataset: str, data_dir: Optional[str] = None, download: bool = True) -> Dict[str, np.ndarray]:
    """Raw uint8 arrays ``train_x, train_y, test_x, test_y`` (images NCHW), cached per process."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset: unknown value {dataset!r}; allowed values: {', '.join(DATASETS)}")
    root = resolve_data_dir(data_dir)
    key = (dataset, str(root))
    if key not in _ARRAY_CACHE:
        if dataset == "cifar10":
            _ARRAY_CACHE[key] = load_cifar_arrays(root, download)
        else:
            _ARRAY_CACHE[key] = load_idx_arrays(root, dataset, download)
    return _ARRAY_CACHE[key]


def load_dataset(dataset: str, *, data_dir: Optional[str] = None, download: bool = True,
                 val_size: int = 5000, val_seed: int = 0, device="cpu") -> Dataset:
    """The train / val / test splits of ``dataset`` as float tensors on ``device``."""
    device = torch.device(device)
    key = (dataset, str(resolve_data_dir(data_dir)), val_size, val_seed, str(device))
    if key in _DEVICE_CACHE:
        return _DEVICE_CACHE[key]
    arrays = load_arrays(dataset, data_dir, download)
    n = arrays["train_x"].shape[0]
    if val_size >= n:
        raise ValueError(f"DataConfig.val_size: {val_size} must be smaller than the {n} training images")
    val_idx = validation_indices(n, val_size, val_seed)
    keep = np.ones(n, dtype=bool)
    keep[val_idx] = False

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        pixels = torch.from_numpy(np.array(x, copy=True)).to(device)
        return Split(pixels.to(torch.float32).div_(255.0), torch.from_numpy(y.astype(np.int64)).to(device), pixels)

    ds = Dataset(dataset,
                 train=split(arrays["train_x"][keep], arrays["train_y"][keep]),
                 val=split(arrays["train_x"][val_idx], arrays["train_y"][val_idx]),
                 test=split(arrays["test_x"], arrays["test_y"]))
    _DEVICE_CACHE.clear()  # keep one resident dataset: the splits are large
    _DEVICE_CACHE[key] = ds
    return ds
