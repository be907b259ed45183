"""lt_core: the engine of lt-explorer.

Reproduces *Deconstructing Lottery Tickets: Zeros, Signs, and the Supermask* (Zhou, Lan, Liu,
Yosinski; NeurIPS 2019): FC / Conv2 / Conv4 / Conv6 networks, iterative pruning with every mask
criterion, mask-1 and mask-0 policy of the paper, a results store and a CLI
(``python -m lt_core --help``).
"""

from .config import ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig
from .criteria import CRITERIA, PAPER_CRITERIA
from .data import DATASETS, DataCorruptError, DataError, DataNotFoundError, load_dataset
from .events import RunStopped, StopToken
from .export import export_ticket, ticket_state_dict
from .lottery import ExperimentResult, run_lotteries, run_lottery, train_dense
from .models import ARCHS, forward, get_arch, init_weights, torch_module
from .policies import MASK0_POLICIES, MASK1_POLICIES
from .pruning import compute_masks, layer_prune_fractions
from .store import DamagedFileError, StoreError, list_runs, open_run
from .supermask import LearnConfig, SupermaskConfig, learn_supermask, learn_supermasks, one_shot_supermasks

__all__ = [
    "ARCHS", "CRITERIA", "ConfigError", "DATASETS", "DataConfig", "DataCorruptError", "DataError",
    "DataNotFoundError", "ExperimentResult", "MASK0_POLICIES", "MASK1_POLICIES", "ModelConfig",
    "PAPER_CRITERIA", "PruneConfig", "RunStopped", "StopToken", "TrainConfig", "compute_masks",
    "export_ticket", "forward", "get_arch", "init_weights", "layer_prune_fractions", "load_dataset",
    "run_lotteries", "run_lottery", "ticket_state_dict", "torch_module", "train_dense", "LearnConfig", "SupermaskConfig",
    "learn_supermask", "learn_supermasks", "one_shot_supermasks", "DamagedFileError", "StoreError", "list_runs",
    "open_run",
]
__version__ = "0.1.0"
