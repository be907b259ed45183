"""lt_core: the engine of lt-explorer.

Reproduces *Deconstructing Lottery Tickets: Zeros, Signs, and the Supermask* (Zhou, Lan, Liu,
Yosinski; NeurIPS 2019): FC / Conv2 / Conv4 / Conv6 networks (and Conv8), iterative pruning with
every mask criterion, mask-1 and mask-0 policy of the paper, a results store and a CLI
(``python -m lt_core --help``).

Extension points: :func:`register_arch` (with :func:`fc_arch` / :func:`vgg_arch`),
:func:`register_criterion`, :func:`register_mask1`, :func:`register_mask0` and
:func:`register_mask_method` add names that work
wherever a built-in one does; the CLI loads modules that call them with ``--plugin MODULE``.
"""

from .archs import ARCHS, Arch, Layer, QuickSchedule, fc_arch, get_arch, register_arch, vgg_arch
from .config import ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig
from .criteria import CRITERIA, PAPER_CRITERIA, register_criterion
from .data import DATASETS, DataCorruptError, DataError, DataNotFoundError, load_dataset
from .events import RunStopped, StopToken
from .export import export_ticket, ticket_state_dict
from .lottery import ExperimentResult, run_lotteries, run_lottery, train_dense
from .models import forward, init_weights, torch_module
from .policies import MASK0_POLICIES, MASK1_POLICIES, register_mask0, register_mask1
from .pruning import compute_masks, layer_prune_fractions
from .store import DamagedFileError, StoreError, list_runs, open_run
from .supermask import (MASK_METHODS, EdgePopupConfig, LearnConfig, MaskMethodConfig, ScoreMaskLearner,
                        SignedMaskConfig, SupermaskConfig, learn_supermask, learn_supermasks, one_shot_supermasks,
                        register_mask_method, straight_through)

__all__ = [
    "ARCHS", "Arch", "CRITERIA", "ConfigError", "DATASETS", "DamagedFileError", "DataConfig", "DataCorruptError",
    "DataError", "DataNotFoundError", "EdgePopupConfig", "ExperimentResult", "Layer", "LearnConfig",
    "MASK0_POLICIES", "MASK1_POLICIES", "MASK_METHODS", "MaskMethodConfig", "ModelConfig", "PAPER_CRITERIA",
    "PruneConfig", "QuickSchedule", "RunStopped", "ScoreMaskLearner", "SignedMaskConfig", "StopToken", "StoreError",
    "SupermaskConfig", "TrainConfig", "compute_masks", "export_ticket", "fc_arch", "forward", "get_arch",
    "init_weights", "layer_prune_fractions", "learn_supermask", "learn_supermasks", "list_runs", "load_dataset",
    "one_shot_supermasks", "open_run", "register_arch", "register_criterion", "register_mask0", "register_mask1",
    "register_mask_method", "run_lotteries", "straight_through", "run_lottery", "ticket_state_dict", "torch_module", "train_dense",
    "vgg_arch",
]
__version__ = "0.1.0"
