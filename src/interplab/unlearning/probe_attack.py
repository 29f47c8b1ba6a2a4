"""Probe attack: can a linear probe read the forgotten attribute from the residual stream?

1. Prompts that ask for the attribute (its trained forms: the question and the statements) for every
   person; the residual stream (blocks.L.resid_post, network edits in place) at each prompt's last token,
   where the model is about to answer.
2. Per layer, a one-vs-rest logistic probe per value (interplab.probes.train_linear_probe; the class
   with the largest logit wins), trained on the retain set and the attacker's `train` forget people.
3. Accuracy on the `held_out` forget people's prompts, beside `chance`: the share of the most common
   value among them (what a constant guess scores).
A model that never learnt the held-out people cannot do better than chance at any layer; a model that
still holds their facts can, whatever its output says.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.data.synthetic.fictional_people import (
    TRAINED_FORMS,
    Attribute,
    Item,
    PeopleConfig,
    Person,
    items,
)
from interplab.models import capture
from interplab.models.hookpoints import base_model
from interplab.probes import LinearProbeConfig, train_linear_probe
from interplab.unlearning.served import ServedModel


@dataclass
class ProbeAttackConfig:
    """The probe attack."""

    attribute: str = "city"
    """Attribute the probes decode: city or job."""
    layers: tuple[int, ...] | None = None
    """Layers to probe (None: 8 layers evenly spread over the depth, the last included)."""
    C: float = 1.0
    """Inverse L2 strength of each logistic probe (scikit-learn's C)."""


def probe_layers(cfg: ProbeAttackConfig, n_layers: int) -> list[int]:
    if cfg.layers is not None:
        return sorted(set(cfg.layers))
    n = min(8, n_layers)
    return sorted({round(i * (n_layers - 1) / max(n - 1, 1)) for i in range(n)})


@torch.no_grad()
def last_token_acts(served: ServedModel, its: list[Item], layers: list[int], batch_size: int = 32) -> dict[int, Tensor]:
    """{layer: [n_items, d]} residual stream at each prompt's last token, network edits in place."""
    hooks = [f"blocks.{layer}.resid_post" for layer in layers]
    out: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(its), batch_size):
        inputs = _right_padded(served, [it.prompt for it in its[start:start + batch_size]])
        last_B = inputs["attention_mask"].sum(1) - 1
        rows_B = torch.arange(len(last_B), device=last_B.device)
        with served.network(), capture(served.model, hooks) as acts:
            base_model(served.model)(**inputs)  # no unembedding: only the residual stream is read
        for layer, hook in zip(layers, hooks, strict=True):
            out[layer].append(acts[hook][rows_B, last_B].float().cpu())
    return {layer: torch.cat(v) for layer, v in out.items()}


def _right_padded(served: ServedModel, prompts: list[str]) -> dict[str, Tensor]:
    ids = served.tokenizer(prompts, add_special_tokens=True)["input_ids"]
    length = max(len(i) for i in ids)
    pad = served.tokenizer.pad_token_id or 0
    input_ids = torch.tensor([i + [pad] * (length - len(i)) for i in ids], device=served.device)
    mask = torch.tensor([[1] * len(i) + [0] * (length - len(i)) for i in ids], device=served.device)
    return {"input_ids": input_ids, "attention_mask": mask}


def _prompts(people: list[Person], attribute: Attribute, cfg: PeopleConfig) -> list[Item]:
    return [it for form in TRAINED_FORMS for it in items(people, form, cfg, (attribute,))]


def fit_one_vs_rest(x_ND: Tensor, labels: list[str], classes: list[str], C: float) -> list:
    y = torch.tensor([classes.index(v) for v in labels])
    # float32 and a loose tolerance: 8 classes x 8 layers of fits per model, and the argmax of the logits
    # (all that is read) settles long before the last digits of the weights do
    cfg = LinearProbeConfig(C=C, device="cpu", dtype="float32", max_iter=100, tol=1e-4)
    return [train_linear_probe(x_ND, (y == k).long(), cfg)
            if 0 < int((y == k).sum()) < len(y) else None for k in range(len(classes))]


def predict_one_vs_rest(probes: list, x_ND: Tensor) -> Tensor:
    scores = [p.logits(x_ND).double() if p is not None else torch.full((len(x_ND),), -1e9, dtype=torch.float64)
              for p in probes]
    return torch.stack(scores, 1).argmax(1)


def probe_attack(served: ServedModel, known: list[Person], held_out: list[Person], people_cfg: PeopleConfig,
                 cfg: ProbeAttackConfig, n_layers: int) -> tuple[list[tuple[int, float]], float]:
    """([(layer, held-out accuracy)], chance) of probes trained on `known` people."""
    attribute: Attribute = cfg.attribute  # type: ignore[assignment]
    layers = probe_layers(cfg, n_layers)
    train_its, test_its = _prompts(known, attribute, people_cfg), _prompts(held_out, attribute, people_cfg)
    values = {p.name: p.value(attribute) for p in known + held_out}
    train_y, test_y = [values[i.person] for i in train_its], [values[i.person] for i in test_its]
    classes = sorted(set(train_y))
    acts_train, acts_test = last_token_acts(served, train_its, layers), last_token_acts(served, test_its, layers)
    target = torch.tensor([classes.index(v) if v in classes else -1 for v in test_y])
    result = []
    for layer in layers:
        probes = fit_one_vs_rest(acts_train[layer], train_y, classes, cfg.C)
        result.append((layer, float((predict_one_vs_rest(probes, acts_test[layer]) == target).float().mean())))
    chance = max(test_y.count(v) for v in set(test_y)) / len(test_y)
    return result, chance
