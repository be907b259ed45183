"""One place for what a configuration means in practice: the dataset, the run's length and the
learning rate.

``None`` in a config means "the architecture's protocol value" (its record in :mod:`lt_core.archs`);
:func:`lt_core.store.keys.canonical` maps an explicit value equal to that default back to ``None``
when it names a run, so ``--dataset mnist`` for FC or ``--lr 1.2e-3`` finds the default's stored run.
"""

from __future__ import annotations

from .archs import get_arch
from .config import ConfigError, DataConfig, ModelConfig, TrainConfig
from .data import DATASET_INFO


def dataset_name(data: DataConfig, model: ModelConfig) -> str:
    """The dataset a run uses: the one asked for (it must fit the network), else the network's own."""
    return get_arch(model.arch).dataset_for(data.dataset)


def train_images(data: DataConfig, model: ModelConfig) -> int:
    """Training images after the validation split is held out."""
    return DATASET_INFO[dataset_name(data, model)].train_size - data.val_size


def _iterations(owner: str, batch_size: int, n_train: int, epochs: int) -> int:
    per_epoch = n_train // batch_size
    if per_epoch == 0:
        raise ConfigError(f"{owner}.batch_size: {batch_size} is larger than the {n_train} training images")
    return epochs * per_epoch


def total_iterations(data: DataConfig, model: ModelConfig, train: TrainConfig) -> int:
    """A training run's length: ``iterations`` if set, else epochs x floor(N_train / batch)."""
    if train.iterations is not None:
        return train.iterations
    return _iterations("TrainConfig", train.batch_size, train_images(data, model),
                       train.epochs or get_arch(model.arch).epochs)


def learn_iterations(data: DataConfig, model: ModelConfig, learn) -> int:
    """A learned supermask's length (``learn``: a :class:`lt_core.supermask.LearnConfig`):
    ``iterations`` if set, else epochs (default: the record's ``learn_epochs``) x floor(N_train / batch)."""
    if learn.iterations is not None:
        return learn.iterations
    return _iterations("LearnConfig", learn.batch_size, train_images(data, model),
                       learn.epochs or get_arch(model.arch).learn_epochs)


def learning_rate(model: ModelConfig, train: TrainConfig) -> float:
    """Adam's learning rate: the one asked for, else the paper's for the network."""
    return train.lr if train.lr is not None else get_arch(model.arch).lr
