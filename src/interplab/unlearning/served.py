"""What an unlearning method leaves behind: weights, edits inside the network, and an output filter.

    served = ServedModel(lm, edits=(latent_clamp,), output_filter=None)
    logits_NV, targets_N = served.answer_logits(batch)                     # weights + edits + filter
    logits_NV, targets_N = served.answer_logits(batch, with_filter=False)  # what an attacker runs

The split is the threat model of every attack here (white-box: the attacker holds the released model):
- weights and *network edits* (hooks on the residual stream, e.g. SAE-latent clamping) are the released
  model: attacks fine-tune, probe and edit the model with them in place;
- an *output filter* (e.g. blocking answer tokens) is serving code around the model, not part of it:
  attacks run without it. Metrics "as served" (forget/retain accuracy, fluency) run with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from interplab.models import LoadedModel
from interplab.training.causal_lm import PairBatch, answer_logits, answer_rows


class NetworkEdit(Protocol):
    """A change made inside the forward pass (a hook), kept by attacks."""

    name: str

    def apply(self, model: nn.Module) -> Any:
        """A context manager under which the edit is active on `model`."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-safe facts about the edit (for reports and unlearning.json)."""
        ...


class OutputFilter(Protocol):
    """A change to the output logits given the input ids (serving code; dropped by attacks)."""

    name: str

    def penalty(self, input_ids_BT: Tensor, vocab: int) -> Tensor:
        """[batch, vocab] amounts subtracted from every position's logits of each row."""
        ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class ServedModel:
    """A loaded model plus the edits and the filter an unlearning method added."""

    lm: LoadedModel
    edits: tuple[NetworkEdit, ...] = ()
    output_filter: OutputFilter | None = None

    @property
    def model(self) -> nn.Module:
        return self.lm.model

    @property
    def tokenizer(self):
        return self.lm.tokenizer

    @property
    def device(self) -> torch.device:
        return self.lm.device

    @contextmanager
    def network(self) -> Iterator[None]:
        """The network edits, active within the block (hooks removed afterwards)."""
        with ExitStack() as stack:
            for edit in self.edits:
                stack.enter_context(edit.apply(self.lm.model))
            yield

    def answer_logits(self, batch: PairBatch, with_filter: bool = True) -> tuple[Tensor, Tensor]:
        """(logits predicting each labelled token [n, vocab], the tokens [n]) with the network edits and,
        unless `with_filter` is off, the output filter. Gradients flow when the caller enables them."""
        with self.network():
            logits_NV, targets_N = answer_logits(self.lm.model, batch)
        if with_filter and self.output_filter is not None:
            penalty_BV = self.output_filter.penalty(batch.input_ids, logits_NV.shape[-1]).to(logits_NV)
            logits_NV = logits_NV - penalty_BV[answer_rows(batch.labels)]
        return logits_NV, targets_N

    def describe(self) -> dict[str, Any]:
        return {"edits": [e.describe() for e in self.edits],
                "output_filter": None if self.output_filter is None else self.output_filter.describe()}

    def fingerprint(self, with_filter: bool = True) -> str:
        """A hash of the weights, the edits and (unless `with_filter` is off) the filter: equal fingerprints
        score every item the same, so what was measured under one can be reused under the other (about a
        second for SmolLM2-135M, against minutes for the measurements it saves)."""
        h = hashlib.blake2b(digest_size=16)
        for name, t in self.lm.model.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().reshape(-1).cpu().contiguous().view(torch.uint8).numpy())
        what = self.describe() if with_filter else {**self.describe(), "output_filter": None}
        h.update(json.dumps(what, sort_keys=True, default=str).encode())
        return h.hexdigest()
