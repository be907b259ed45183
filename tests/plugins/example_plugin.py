"""An example plugin: what a researcher's own module registers (``python -m lt_core ... --plugin <this file>``).

* ``product_magnitude``: a layer-wise criterion, keep the weights with the largest ``|w_i * w_f|``;
* ``global_magnitude``: a network-wide criterion, ``|w_f|`` ranked across all layers at once;
* ``negated``: a mask-1 policy, kept weights restart from their initial values with the sign flipped;
* ``freeze_final``: a mask-0 policy, pruned weights frozen at their final values;
* ``fc50``: a small FC network, 784-50-10 on MNIST.
"""

import torch

import lt_core

NAMES = {"criterion": ("product_magnitude", "global_magnitude"), "mask1": ("negated",), "mask0": ("freeze_final",),
         "arch": ("fc50",)}

lt_core.register_criterion("product_magnitude", lambda w_i, w_f, kept, gen: (w_i * w_f).abs(),
                           "keep the weights with the largest |w_i * w_f|", formula="|w_i w_f|")
lt_core.register_criterion("global_magnitude",
                           lambda w_i, w_f, kept, gen: {name: w.abs() for name, w in w_f.items()},
                           "keep the largest final weights of the whole network", formula="|w_f| (global)",
                           scope="network")
lt_core.register_mask1("negated", lambda w, mask, alpha, gen: -w, "initial values with the sign flipped")


def freeze_final(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
    """Pruned weights keep their final values, frozen; kept weights start from ``start``."""
    return start, torch.where(mask, torch.zeros_like(w_f), w_f)


lt_core.register_mask0("freeze_final", freeze_final, "pruned weights frozen at their final values")
lt_core.register_arch(lt_core.fc_arch("fc50", [50, 10], dataset="mnist", lr=1.2e-3, epochs=5,
                                      label="FC 784-50-10 (MNIST)"))
