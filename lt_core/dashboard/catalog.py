"""What the dashboard needs to know about each network and dataset, one function per fact.

Every per-architecture table the dashboard uses is read here and nowhere else, so that these
functions can later read the engine's architecture records instead: the datasets a network fits,
its display label, the quick preset's schedule, the paper's Table 1 row and the training-set sizes.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from lt_core.analysis import PAPER_TABLE1
from lt_core.lottery import COMPATIBLE, TRAIN_SIZES
from lt_core.models import get_arch

# The quick preset: enough iterations to see a curve within about a minute on a laptop CPU; the
# training-set evaluation is skipped (it changes no reported number).
_QUICK_TRAIN = {"fc": {"iterations": 300, "eval_every": 50, "eval_train": False},
                "conv2": {"iterations": 200, "eval_every": 50, "eval_train": False},
                "conv4": {"iterations": 200, "eval_every": 50, "eval_train": False},
                "conv6": {"iterations": 200, "eval_every": 50, "eval_train": False}}
_QUICK_LEARN_EPOCHS = {"fc": 10, "conv2": 2, "conv4": 2, "conv6": 2}
_ARCH_LABELS = {"fc": "FC 300-100-10 (MNIST)", "conv2": "Conv2 (CIFAR-10)", "conv4": "Conv4 (CIFAR-10)",
                "conv6": "Conv6 (CIFAR-10)"}
_DATASET_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def arch_label(arch: str) -> str:
    """The network's name in the Network menu."""
    return _ARCH_LABELS.get(arch, arch)


def dataset_label(dataset: str) -> str:
    """The dataset's name in the Dataset menu."""
    return _DATASET_LABELS.get(dataset, dataset)


def datasets_for(arch: str) -> Tuple[str, ...]:
    """The datasets ``arch`` can be trained on, its own first."""
    return tuple(COMPATIBLE[arch])


def default_dataset(arch: str) -> str:
    """The dataset ``arch`` is trained on when none is chosen."""
    return get_arch(arch).dataset


def train_size(dataset: str) -> int:
    """Images in the dataset's training set, before the validation split."""
    return TRAIN_SIZES[dataset]


def quick_train(arch: str) -> Dict[str, object]:
    """The TrainConfig fields of the quick preset for ``arch``."""
    return dict(_QUICK_TRAIN[arch])


def quick_learn_epochs(arch: str) -> int:
    """Epochs of a learned supermask under the quick preset for ``arch``."""
    return _QUICK_LEARN_EPOCHS[arch]


def paper_table(arch: Optional[str]) -> Optional[Dict[str, float]]:
    """The paper's Table 1 row for ``arch`` (test accuracies in %), or None where it has none."""
    return PAPER_TABLE1.get(arch) if arch else None
