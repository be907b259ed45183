"""A plug-in that registers a mask-learning method of its own (``learn-mask --plugin <this file> --method
sign_gate``): each weight is kept where its score is above ``gate``, with the straight-through gradient."""

from dataclasses import dataclass
from typing import Optional

import lt_core
from lt_core.config import check_range, no_hash


@dataclass(frozen=True, repr=False)
class SignGateConfig(lt_core.MaskMethodConfig):
    gate: float = 0.0
    seed: int = 0
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 128
    epochs: int = 1
    iterations: Optional[int] = None
    eval_every: Optional[int] = None
    device: str = no_hash("auto")

    def validate(self) -> None:
        check_range("SignGateConfig", "gate", self.gate, -1.0, 1.0)


def _gate(scores, gate):
    return (scores > gate).to(scores.dtype)


class SignGateLearner(lt_core.ScoreMaskLearner):
    def mask(self, name, scores):
        return lt_core.straight_through(_gate, scores, self.configs[0].gate)


if "sign_gate" not in lt_core.MASK_METHODS:
    lt_core.register_mask_method("sign_gate", SignGateConfig, SignGateLearner, "keep the weights of positive score")
