"""Supermasks: masks that make an *untrained* network accurate (protocol sections 6, 7, 8.1).

* :mod:`.oneshot` -- one-shot masks from a trained dense run's ``(w_i, w_f)``, applied to the
  untrained network with its initial weights or signed constants (Table 1, columns 1-2);
* :mod:`.learned` -- masks learned on frozen weights through Bernoulli samples with a
  straight-through gradient, optionally with dynamic weight rescaling (Table 1, columns 3-5);
* :mod:`.methods` -- mask-learning methods by name (:func:`register_mask_method`): ``zhou`` (the
  above, the default), ``edge_popup`` (:mod:`.edge_popup`) and ``signed`` (:mod:`.signed`);
* :mod:`.learning` -- learned supermasks of any method as an experiment: trained as a stack, kept in
  the results store, reused.
"""

from .learned import LearnConfig, LearnResult, MaskLearner, masked_weights, sample_masks, sampled_masked_weights
from .methods import (DEFAULT_METHOD, MASK_METHODS, MaskMethod, MaskMethodConfig, MethodLearnResult,
                      ScoreMaskLearner, method_config, method_of, register_mask_method,
                      straight_through)
from .learning import learn_supermask, learn_supermasks
from .edge_popup import EdgePopupConfig, EdgePopupLearner, edge_popup_mask, top_k_mask
from .signed import SignedMaskConfig, SignedMaskLearner, signed_mask
from .oneshot import (DEFAULT_POWERS, WEIGHT_KINDS, SupermaskConfig, SupermaskResult, best_points, one_shot_masks,
                      one_shot_supermasks, parse_powers, signed_constants, supermask_weights)

__all__ = ["DEFAULT_METHOD", "DEFAULT_POWERS", "EdgePopupConfig", "EdgePopupLearner", "LearnConfig", "LearnResult",
           "MASK_METHODS", "MaskLearner", "MaskMethod", "MaskMethodConfig", "MethodLearnResult", "ScoreMaskLearner", "straight_through",
           "SignedMaskConfig", "SignedMaskLearner", "SupermaskConfig", "SupermaskResult", "WEIGHT_KINDS",
           "best_points", "edge_popup_mask", "learn_supermask", "learn_supermasks", "masked_weights",
           "method_config", "method_of", "one_shot_masks", "one_shot_supermasks", "parse_powers",
           "register_mask_method", "sample_masks", "sampled_masked_weights", "signed_constants", "signed_mask",
           "supermask_weights", "top_k_mask"]
