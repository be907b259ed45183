"""The tooltips of the dashboard's controls: what each choice means in the paper's terms."""

from lt_core import ARCHS, CRITERIA, MASK0_POLICIES, MASK1_POLICIES

TIPS = {
    "arch": "The network and its dataset (paper section 2): FC is LeNet 300-100-10 on MNIST; Conv2, Conv4 and "
            "Conv6 are the VGG-like convolutional networks on CIFAR-10 (Conv8, deeper, is from the follow-up "
            "supermask papers).",
    "dataset": "The dataset the network is trained and tested on (5,000 training images are held out for "
               "validation / early stopping).",
    "preset": "Sets the controls to reproduce one of the paper's figures or Table 1's columns: quick (one seed, 5 "
              "rounds, the quick schedule: the figure's shape within minutes) or the paper's schedule (24 rounds, "
              "5 seeds drawn as a mean line with a min-max band). Press Run afterwards.",
    "mode": "Lottery rounds: iterative pruning, retraining after every round (sections 2-4). One-shot supermask: a "
            "mask computed once from the trained dense network and applied to the untrained network, with no "
            "training (section 5, Table 1 'Mask'). Learned supermask: only a Bernoulli mask over frozen weights is "
            "trained (section 5.2, Table 1 'Learned').",
    "criteria": "Mask criterion M(w_i, w_f): the score deciding which weights a round keeps, from the initial "
                "weights w_i and the final weights w_f (section 2, Figure 2). large_final is the original lottery "
                "ticket; large_final_same_sign is the supermask criterion. Select several (Ctrl/Shift-click) to race "
                "them side by side.",
    "mask1": "Select several (Ctrl/Shift-click) to race them side by side. Mask-1 action: what the kept weights (mask value 1) restart from before retraining (section 3): "
             "rewind to w_i (the lottery ticket), reinit, reshuffle or constant, and their sign-keeping variants.",
    "mask0": "Select several (Ctrl/Shift-click) to race them side by side. Mask-0 action: what the pruned weights (mask value 0) do (section 4): set to zero (the lottery "
             "ticket), frozen at their initial value, or frozen at zero when they moved toward zero during training.",
    "rounds": "Pruning rounds after the dense round 0. Each round prunes 20% of the remaining hidden FC weights "
              "(10% of the output layer; 10-15% of conv weights), so about 0.8^k of the weights remain after k rounds.",
    "w_init": "Use the initial weights w_i under the mask (Table 1 'Mask, Init' / 'Learned, Init').",
    "w_sc": "Use signed constants: every weight replaced by its layer's initial standard deviation times sign(w_i) "
            "(Table 1 'S.C.').",
    "dwr": "Dynamic weight rescaling (learned supermasks): every forward pass scales a layer's masked weights by "
           "its weight count over the number of ones in the sampled mask (section 5.2, Table 1 'DWR').",
    "family": "Learned supermask: which mask-learning family trains the masks. zhou: Zhou et al.'s Bernoulli-sampled "
              "masks (the paper's); edge_popup: Ramanujan et al. 2020, the top keep fraction of scores per layer; "
              "signed: Koster et al. 2022, masks of +1 / 0 / -1 (keep, hide, invert); and any family registered "
              "with register_mask_method. Its settings are its config's defaults, the length the Schedule's.",
    "keep": "Fractions of each layer's weights an edge-popup mask keeps (0 < k <= 1), e.g. 0.05, 0.1, 0.3, 0.5: "
            "one run per fraction (times seeds and weights), trained side by side.",
    "supermask_weights": "Which weights the one-shot supermask is applied to, without any training: the initial "
                         "weights w_i and/or signed constants (Table 1 'Mask, Init' and 'Mask, S.C.').",
    "learned_weights": "Which frozen weights the learned supermask is trained over: the initial weights w_i and/or "
                       "signed constants (Table 1 'Learned, Init' and 'Learned, S.C.').",
    "schedule": "Quick: a short run (FC: 300 iterations, evaluation every 50) that draws a curve within about a "
                "minute on a laptop CPU. Paper: the paper's schedule (FC: Adam 1.2e-3, batch 60, 55 epochs; learned "
                "masks: SGD lr 100, 2000 epochs). Custom: the number of epochs below.",
    "epochs": "Epochs of the custom schedule (one epoch = one pass over the 55,000 MNIST or 45,000 CIFAR-10 "
              "training images).",
    "seeds": "Seed(s): initialisation, data order and mask tie-breaks. Several (e.g. 0, 1, 2 or 0-3) give one line "
             "per setting: the mean over the seeds, with a band from the lowest to the highest (as the paper's "
             "figures).",
    "device": "Where the networks train: the CPU, or a CUDA GPU when one is present (auto picks CUDA if present).",
    "run": "Start, or resume: the same settings reuse the finished rounds in the results store and continue an "
           "interrupted round from its checkpoint.",
    "stop": "Stop at the next training step. Finished rounds stay in the results store; Run resumes.",
    "mask_run": "Which run's masks to show: lottery rounds, one-shot supermasks, learned supermasks (their expected "
                "mask: each weight kept with probability sigma(score)); live, stored for these settings, or overlaid.",
    "mask_round": "Which pruning round's mask to show (round 0 is the dense network); for a one-shot supermask, "
                  "the prune power p (each layer keeps base^p of its weights).",
    "mask_criterion": "The criterion of the one-shot supermask shown.",
    "mask_layer": "Layer whose per-unit kept fraction is shown (per filter for conv layers, per neuron for dense "
                  "layers).",
    "mask_follow": "Show the newest finished round while a run is in progress.",
    "runs": "Finished and unfinished runs in the results store (the same store the command line and the "
            "notebooks use). Select one or more to overlay them (dashed) on the plots.",
    "refresh": "Scan the results store again.",
    "overlay": "Draw the selected stored runs on the plots, dashed.",
    "clear": "Remove all overlays from the plots.",
    "export": "Write the data of the current plots (live runs, overlays, references) to a CSV file in the results "
              "store and offer it for download.",
}



def control_tip(name: str) -> str:
    """The tooltip of control ``name``. The network, policy and criterion tips spell out the registered
    choices, read when the control is built (so names that user code registered before are included)."""
    choices = {"arch": lambda: (f"{a.name}: {a.label}" for a in ARCHS.values()),
               "mask1": lambda: (f"{p.name}: {p.description}" for p in MASK1_POLICIES.values()),
               "mask0": lambda: (f"{p.name}: {p.description}" for p in MASK0_POLICIES.values()),
               "criteria": lambda: (f"{c.name} = {c.formula}" for c in CRITERIA.values())}
    text = TIPS.get(name, "")
    return text + " " + "; ".join(choices[name]()) + "." if name in choices else text
