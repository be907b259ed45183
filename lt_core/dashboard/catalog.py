"""What the dashboard needs to know about each network and dataset, one function per fact.

Every per-architecture fact the dashboard uses is read here, from the engine's architecture records
(:mod:`lt_core.archs`) and dataset facts (:data:`lt_core.data.DATASET_INFO`): the datasets a network
fits, its display label, the quick preset's schedule, the paper's Table 1 row, training-set sizes.
"""

from __future__ import annotations

import functools
from typing import Dict, List, Optional, Tuple

from lt_core.archs import ARCHS, get_arch
from lt_core.data import DATASET_INFO

_DATASET_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def arch_label(arch: str) -> str:
    """The network's name in the Network menu (its record's label)."""
    return get_arch(arch).label if arch in ARCHS else arch


def dataset_label(dataset: str) -> str:
    """The dataset's name in the Dataset menu."""
    return _DATASET_LABELS.get(dataset, dataset)


def datasets_for(arch: str) -> Tuple[str, ...]:
    """The datasets ``arch`` can be trained on, its own first."""
    return tuple(get_arch(arch).datasets)


def default_dataset(arch: str) -> str:
    """The dataset ``arch`` is trained on when none is chosen."""
    return get_arch(arch).dataset


def train_size(dataset: str) -> int:
    """Images in the dataset's training set, before the validation split."""
    return DATASET_INFO[dataset].train_size


def quick_train(arch: str) -> Dict[str, object]:
    """The TrainConfig fields of the quick preset for ``arch`` (from its record)."""
    return dict(get_arch(arch).quick.train_fields())


def quick_learn_epochs(arch: str) -> int:
    """Epochs of a learned supermask under the quick preset for ``arch`` (from its record)."""
    return int(get_arch(arch).quick.learn_fields()["epochs"])


def paper_table(arch: Optional[str]) -> Optional[Dict[str, float]]:
    """The paper's Table 1 row for ``arch`` (test accuracies in %), or None where it has none (a network
    the paper does not report on, or one not registered in this session, e.g. a plugin's stored run)."""
    return dict(get_arch(arch).paper_table1) if arch in ARCHS and get_arch(arch).paper_table1 else None


@functools.lru_cache(maxsize=None)
def _families_reference():
    from lt_core.paper import questions  # the families notebook's constants (imported on first use: pandas)

    return questions.SIGNED_PAPER_FC, questions.FAMILIES


def paper_family_points(arch: Optional[str]) -> List[Tuple[str, float, float]]:
    """The mask families' papers' values for ``arch`` as points ``(label, % kept, accuracy %)``:
    the signed-supermask paper's FCN result (the families notebook's constant); none for a network
    they do not report on."""
    (acc, kept), _ = _families_reference()
    if arch != "fc":
        return []
    return [(f"Koster et al. 2022, signed, FC: {acc}% at {kept}% kept", kept, acc)]


def paper_family_levels(arch: Optional[str]) -> List[Tuple[str, float]]:
    """Zhou et al.'s Table 1 learned-mask accuracies for ``arch`` as ``(label, accuracy %)``: the paper
    does not give their % kept, so they are levels, not points."""
    paper = paper_table(arch) or {}
    words = {"learned_init": "init", "learned_signed_constant": "S.C.", "learned_dwr": "DWR"}
    return [(f"Zhou et al. Table 1, learned {w}: {paper[c]:g}% (no % kept)", paper[c])
            for c, w in words.items() if c in paper]
