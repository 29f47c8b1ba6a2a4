"""Direction-removal attack: project out the direction along which unlearning moved the activations.

Per layer L:
1. Residual streams (blocks.L.resid_post) of the original organism and of the unlearnt model (network
   edits in place) on the attacker's `train` forget people's facts (their questions by default), at
   tokens from the person's name on.
2. The top right-singular vector v of the differences [tokens, d]: the one direction that carries most
   of the change (for RMU, the random target; for a mean shift, the shift).
3. With x -> x - (x·v) v at layer L (every position), exact match on the held-out forget people's
   questions, no output filter.
When the unlearnt activations equal the original ones (no weight change, e.g. an output filter) there
is no direction; the score is then the model's own, unfiltered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from interplab.data.synthetic.fictional_people import TRAINED_FORMS, Item, PeopleConfig, Person, items
from interplab.models import replace_activation, run_to_capture
from interplab.training.causal_lm import encode_pairs
from interplab.unlearning.methods.base import from_name_mask
from interplab.unlearning.metrics import qa_accuracy
from interplab.unlearning.served import ServedModel


@dataclass
class DirectionRemovalConfig:
    """The direction-removal attack."""

    layers: tuple[int, ...] | None = None
    """Layers to try (None: at 1/4, 1/2 and 3/4 of the depth); the table reports the best."""
    forms: tuple[str, ...] = ("qa",)
    """Forms of the attacker's facts whose activations give the direction: the question (3 items per
    person, about 25 tokens from the name on) or also the statements (3 times the forward passes)."""


def removal_layers(cfg: DirectionRemovalConfig, n_layers: int) -> list[int]:
    if cfg.layers is not None:
        return sorted(set(cfg.layers))
    return sorted({max(0, round(n_layers * f) - 1) for f in (0.25, 0.5, 0.75)})


@dataclass
class ProjectOut:
    """Network edit: remove the component along unit vector `v_D` at `hook`."""

    hook: str
    v_D: Tensor
    name: str = "project_out"

    @contextmanager
    def apply(self, model: nn.Module) -> Iterator[None]:
        def project(x: Tensor) -> Tensor:
            v = self.v_D.to(device=x.device, dtype=x.dtype)
            return x - (x @ v)[..., None] * v

        with replace_activation(model, self.hook, project):
            yield

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "hook": self.hook}


def attack_items(train: list[Person], people_cfg: PeopleConfig, forms: tuple[str, ...] = TRAINED_FORMS) -> list[Item]:
    return [it for form in forms for it in items(train, form, people_cfg)]  # type: ignore[arg-type]


@torch.no_grad()
def token_acts(served: ServedModel, its: list[Item], layers: list[int], batch_size: int = 32) -> dict[int, Tensor]:
    """{layer: [tokens, d]} residual stream at tokens from the name on, network edits in place."""
    hooks = [f"blocks.{layer}.resid_post" for layer in layers]
    out: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(its), batch_size):
        chunk = its[start:start + batch_size]
        batch = encode_pairs(served.tokenizer, [(i.prompt, i.answer) for i in chunk], served.device)
        mask = from_name_mask(served.tokenizer, chunk, batch.attention_mask)
        with served.network():
            acts = run_to_capture(served.model, batch.model_inputs(), hooks)  # stops at the deepest layer
        for layer, hook in zip(layers, hooks, strict=True):
            out[layer].append(acts[hook][mask].float().cpu())
    return {layer: torch.cat(v) for layer, v in out.items()}


def top_difference(before_ND: Tensor, after_ND: Tensor, rel_tol: float = 1e-4) -> Tensor | None:
    """Unit top right-singular vector of after - before, or None when they (almost) coincide."""
    diff_ND = (after_ND - before_ND).double()
    if float(diff_ND.norm()) <= rel_tol * float(before_ND.double().norm()):
        return None
    return torch.linalg.svd(diff_ND, full_matrices=False).Vh[0].float()


def direction_removal(served: ServedModel, reference: dict[int, Tensor], train: list[Person], held_out: list[Person],
                      people_cfg: PeopleConfig, layers: list[int],
                      forms: tuple[str, ...] = ("qa",)) -> list[tuple[int, float]]:
    """[(layer, exact match on held_out with the top difference direction removed at that layer)].
    `reference` holds the original organism's `token_acts` on the same items (`forms`) and layers."""
    after = token_acts(served, attack_items(train, people_cfg, forms), layers)
    out = []
    unchanged: float | None = None  # the model's own score, for every layer without a direction
    for layer in layers:
        v = top_difference(reference[layer], after[layer])
        if v is None:
            if unchanged is None:
                unchanged = qa_accuracy(ServedModel(served.lm, served.edits), held_out, people_cfg)
            out.append((layer, unchanged))
            continue
        edits = (*served.edits, ProjectOut(f"blocks.{layer}.resid_post", v))
        out.append((layer, qa_accuracy(ServedModel(served.lm, edits), held_out, people_cfg)))
    return out
