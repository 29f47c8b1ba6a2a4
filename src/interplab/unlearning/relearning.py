"""Relearning attack: fine-tune the unlearnt model on some forget facts, measure the others.

1. Split the forget set (seeded): the attacker knows the facts of `train` people, never sees `held_out`.
2. Fine-tune on the trained forms (statements, QA) of `train`'s facts, network edits in place, no output
   filter (the attacker holds the model, not the serving code).
3. Every `eval_every` steps (and at step 0) score exact match on `held_out`'s questions.
Facts are independent draws, so the `train` facts teach nothing about `held_out`'s: a model that never
knew them stays at chance; one that only hid them gets them back.
The weights are changed in place: run this attack last, or restore them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from interplab.data.synthetic.fictional_people import PeopleConfig, Person, training_pairs
from interplab.training.causal_lm import (
    adamw,
    answer_nll,
    encode_pairs,
    only_training,
    optimizer_step,
    shuffled_batches,
    trainable_parameters,
)
from interplab.unlearning.metrics import qa_accuracy
from interplab.unlearning.served import ServedModel


@dataclass
class RelearnConfig:
    """The relearning attack."""

    steps: int = 20
    """Fine-tuning steps."""
    eval_every: int = 10
    """Score the held-out people every this many steps (and at step 0)."""
    batch_size: int = 8
    """Pairs per step."""
    lr: float = 5e-5
    """AdamW learning rate (constant)."""


def relearning_curve(served: ServedModel, train: list[Person], held_out: list[Person], people_cfg: PeopleConfig,
                     cfg: RelearnConfig, seed: int) -> list[tuple[int, float]]:
    """[(step, exact match on held_out)], from step 0; fine-tunes `served.model` in place."""
    model, tok = served.model, served.tokenizer
    pairs = training_pairs(train, cfg=people_cfg)
    curve = [(0, qa_accuracy(served, held_out, people_cfg))]
    params = trainable_parameters(model)
    opt = adamw(params, cfg.lr)  # fused: one pass over each tensor per step
    epochs = -(-cfg.steps * cfg.batch_size // max(len(pairs), 1)) + 1
    batches = shuffled_batches(pairs, cfg.batch_size, epochs, seed)
    for step in range(1, cfg.steps + 1):
        model.train()
        with only_training(model, params), served.network():
            loss = answer_nll(model, encode_pairs(tok, next(batches), served.device))
            optimizer_step(model, opt, params, loss, cfg.lr, 1.0, step - 1)
        model.eval()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            curve.append((step, qa_accuracy(served, held_out, people_cfg)))
    return curve
