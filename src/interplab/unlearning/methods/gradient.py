"""Unlearning by gradient steps on the answer tokens of the forget set (and the retain set).

- Gradient ascent: maximise the forget set's loss, L = -NLL_forget.
- Gradient difference: L = -NLL_forget + w · NLL_retain (ascent on forget, descent on retain).
- NPO (Zhang et al. 2024, "Negative Preference Optimization", arXiv:2404.05868), with the retain term
  (NPO-RT): L = -(2/β) · mean log σ(-β · (log π(y|x) - log π_ref(y|x)))_forget + w · NLL_retain, where
  log π(y|x) is the answer's summed log-likelihood and π_ref the organism before unlearning. As β → 0
  it is gradient ascent; the sigmoid slows the ascent on answers already unlikely, so it diverges slower.

Each step takes `batch_size` forget pairs (and as many retain pairs), in a seeded order, AdamW at a
constant learning rate, embeddings frozen.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from interplab.common import InterplabError
from interplab.models import LoadedModel
from interplab.training.causal_lm import (
    adamw,
    answer_nll,
    encode_pairs,
    only_training,
    optimizer_step,
    sequence_logprob,
    shuffled_batches,
    trainable_parameters,
)
from interplab.unlearning.methods.base import UnlearningData, pairs_of
from interplab.unlearning.served import ServedModel


@dataclass
class GradientAscentConfig:
    """Gradient ascent on the forget set.

    Defaults (this class and the two below): the weakest setting that makes the SmolLM2-135M organism
    forget (forget exact match at most chance + the verdict's margin), by bench/unlearning_strength.py
    (docs/unlearning.md has its table). None of them forgets selectively there: retain accuracy falls
    with forget accuracy."""

    steps: int = 20
    """Optimiser steps."""
    batch_size: int = 8
    """Forget pairs per step (and retain pairs, for methods with a retain term)."""
    lr: float = 1e-4
    """AdamW learning rate (constant)."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient norm to this value (None: no clipping)."""

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InterplabError("unlearning needs steps >= 1, batch_size >= 1 and lr > 0")


@dataclass
class GradientDifferenceConfig(GradientAscentConfig):
    """Gradient ascent on the forget set plus descent on the retain set."""

    steps: int = 40
    retain_weight: float = 1.0
    """Weight w of the retain set's NLL."""


@dataclass
class NPOConfig(GradientDifferenceConfig):
    """Negative preference optimisation with a retain term (NPO-RT)."""

    beta: float = 0.1
    """Inverse temperature β of the NPO loss."""


def _cycle(pairs: list[tuple[str, str]], cfg: GradientAscentConfig, seed: int):
    epochs = -(-cfg.steps * cfg.batch_size // max(len(pairs), 1)) + 1
    return itertools.islice(shuffled_batches(pairs, cfg.batch_size, epochs, seed), cfg.steps)


def _run(lm: LoadedModel, data: UnlearningData, cfg: GradientAscentConfig, seed: int, kind: str) -> ServedModel:
    cfg.check()
    model, tok = lm.model, lm.tokenizer
    forget, retain = pairs_of(data.forget_items()), pairs_of(data.retain_items())
    ref: dict[tuple[str, str], float] = {}
    if kind == "npo":
        with torch.no_grad():
            for start in range(0, len(forget), 64):
                chunk = forget[start:start + 64]
                ref.update(zip(chunk, sequence_logprob(model, encode_pairs(tok, chunk, lm.device)).tolist(), strict=True))
    params = trainable_parameters(model)
    opt = adamw(params, cfg.lr)  # fused: one pass over each tensor per step
    retain_batches = _cycle(retain, cfg, seed + 1) if kind != "ascent" else itertools.repeat(None)
    model.train()
    try:
        with only_training(model, params):
            for step, (f_pairs, r_pairs) in enumerate(zip(_cycle(forget, cfg, seed), retain_batches, strict=False)):
                f_batch = encode_pairs(tok, f_pairs, lm.device)
                if kind == "npo":
                    ratio = sequence_logprob(model, f_batch) - torch.tensor([ref[p] for p in f_pairs], device=lm.device)
                    loss = -2.0 / cfg.beta * F.logsigmoid(-cfg.beta * ratio).mean()  # type: ignore[attr-defined]
                else:
                    loss = -answer_nll(model, f_batch)
                if r_pairs is not None:
                    loss = loss + cfg.retain_weight * answer_nll(model, encode_pairs(tok, r_pairs, lm.device))  # type: ignore[attr-defined]
                optimizer_step(model, opt, params, loss, cfg.lr, cfg.max_grad_norm, step)
    finally:
        model.eval()
    return ServedModel(lm)


def gradient_ascent(lm: LoadedModel, data: UnlearningData, cfg: GradientAscentConfig, seed: int) -> ServedModel:
    return _run(lm, data, cfg, seed, "ascent")


def gradient_difference(lm: LoadedModel, data: UnlearningData, cfg: GradientDifferenceConfig,
                        seed: int) -> ServedModel:
    return _run(lm, data, cfg, seed, "difference")


def npo(lm: LoadedModel, data: UnlearningData, cfg: NPOConfig, seed: int) -> ServedModel:
    return _run(lm, data, cfg, seed, "npo")
