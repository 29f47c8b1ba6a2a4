"""The deliberately fake method, the control the harness must catch: leave the model alone and block the
answers at the output.

When a forget-set person's name is in the input, every token of that person's answers (city, job,
year) gets `penalty` subtracted from its logit at every position, so the served model never says them.
Nothing inside the network changes: the knowledge is all there, only the output is filtered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.data.synthetic.fictional_people import ATTRIBUTES, Person
from interplab.models import LoadedModel
from interplab.unlearning.methods.base import UnlearningData
from interplab.unlearning.served import ServedModel


@dataclass
class OutputBlockConfig:
    """Filter the forget set's answer tokens out of the output."""

    penalty: float = 1e4
    """Logit subtracted from a blocked token (1e4: never the arg-max, probability about 0)."""


class AnswerTokenBlock:
    """The output filter: names -> token ids to block when the name is in the input."""

    name = "answer_token_block"

    def __init__(self, tokenizer, people: list[Person], penalty: float):
        self.tokenizer = tokenizer
        self.penalty_value = penalty
        self.blocked = {p.name: sorted({t for a in ATTRIBUTES
                                        for t in tokenizer(" " + p.value(a), add_special_tokens=False)["input_ids"]})
                        for p in people}
        self._pattern = re.compile("|".join(r"\b" + re.escape(n) + r"\b" for n in sorted(self.blocked, key=len,
                                                                                       reverse=True)))

    def penalty(self, input_ids_BT: Tensor, vocab: int) -> Tensor:
        penalty_BV = torch.zeros(input_ids_BT.shape[0], vocab)
        for row, text in enumerate(self.tokenizer.batch_decode(input_ids_BT.tolist())):
            for name in set(self._pattern.findall(text)):
                penalty_BV[row, self.blocked[name]] = self.penalty_value
        return penalty_BV

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "people": len(self.blocked), "penalty": self.penalty_value}


def output_block(lm: LoadedModel, data: UnlearningData, cfg: OutputBlockConfig, seed: int) -> ServedModel:
    return ServedModel(lm, output_filter=AnswerTokenBlock(lm.tokenizer, data.forget, cfg.penalty))
