"""Supermasks: masks that make an *untrained* network accurate (protocol sections 6, 7, 8.1).

* :mod:`.oneshot` -- one-shot masks from a trained dense run's ``(w_i, w_f)``, applied to the
  untrained network with its initial weights or signed constants (Table 1, columns 1-2);
* :mod:`.learned` -- masks learned on frozen weights through Bernoulli samples with a
  straight-through gradient, optionally with dynamic weight rescaling (Table 1, columns 3-5).
"""

from .learned import (LearnConfig, LearnResult, MaskLearner, learn_supermask, learn_supermasks, masked_weights,
                      sample_masks, sampled_masked_weights)
from .oneshot import (DEFAULT_POWERS, WEIGHT_KINDS, SupermaskConfig, SupermaskResult, best_points, one_shot_masks,
                      one_shot_supermasks, parse_powers, signed_constants, supermask_weights)

__all__ = ["DEFAULT_POWERS", "LearnConfig", "LearnResult", "MaskLearner", "SupermaskConfig", "SupermaskResult",
           "WEIGHT_KINDS", "best_points", "learn_supermask", "learn_supermasks", "masked_weights", "one_shot_masks",
           "one_shot_supermasks", "parse_powers", "sample_masks", "sampled_masked_weights", "signed_constants",
           "supermask_weights"]
