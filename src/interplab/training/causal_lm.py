"""Fine-tune a causal LM on (prompt, answer) text, with the loss on the answer tokens only.

    batch = encode_pairs(tokenizer, [("Q: Where does Tamsin Vorel live?\\nA:", " Lisbon")])
    answer_logprobs(model, batch)            # [batch, seq] log p(token) on answer tokens, 0 elsewhere
    finetune_on_pairs(model, tokenizer, pairs, FinetuneConfig(epochs=8))

Prompt and answer are tokenized apart and joined, so the answer's tokens are exactly those of the
answer text whatever the prompt (the prompt carries the tokenizer's special tokens, the answer none).
Batches are right-padded; positions follow the real tokens, so a sequence scores the same alone or in
any batch. The training loop is plain AdamW over the shuffled pairs, epoch by epoch, seeded: the
same pairs and config give the same weights.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from interplab.common import InterplabError, get_logger
from interplab.models.hookpoints import base_model
from interplab.training.schedules import lr_at

log = get_logger(__name__)

Pair = tuple[str, str]
T = TypeVar("T")
IGNORE = -100
"""Label of positions that are not scored (prompt and padding)."""


class PairBatch(NamedTuple):
    """Token ids of prompt + answer pairs, right-padded."""

    input_ids: Tensor
    """[batch, seq] token ids."""
    attention_mask: Tensor
    """[batch, seq] 1 on real tokens, 0 on padding."""
    labels: Tensor
    """[batch, seq] the token id on answer tokens, IGNORE elsewhere (already aligned to the ids, not shifted)."""

    def model_inputs(self) -> dict[str, Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def encode_pairs(tokenizer, pairs: Sequence[Pair], device: torch.device | str | None = None) -> PairBatch:
    """Tokenize (prompt, answer) pairs into one right-padded batch."""
    if not pairs:
        raise InterplabError("no (prompt, answer) pairs to encode")
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=True)["input_ids"]
    answers = tokenizer([a for _, a in pairs], add_special_tokens=False)["input_ids"]
    if any(len(a) == 0 for a in answers):
        raise InterplabError("an answer tokenizes to nothing; every pair needs a non-empty answer")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    length = max(len(p) + len(a) for p, a in zip(prompts, answers, strict=True))
    ids = torch.full((len(pairs), length), pad if pad is not None else 0, dtype=torch.long)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    labels = torch.full((len(pairs), length), IGNORE, dtype=torch.long)
    for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
        n = len(p) + len(a)
        ids[i, :n] = torch.tensor(p + a)
        mask[i, :n] = 1
        labels[i, len(p):n] = torch.tensor(a)
    return PairBatch(ids.to(device), mask.to(device), labels.to(device))


def encode_texts(tokenizer, texts: Sequence[str], max_tokens: int,
                 device: torch.device | str | None = None) -> PairBatch:
    """Plain texts (each cut to its first `max_tokens` tokens) as a right-padded batch whose labels are
    every token, for perplexity."""
    if not texts:
        raise InterplabError("no texts to encode")
    rows = [ids[:max_tokens] for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad if pad is not None else 0, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, IGNORE))
    return PairBatch(ids.to(device), mask.to(device), labels.to(device))


def answer_logits(model: nn.Module, batch: PairBatch) -> tuple[Tensor, Tensor]:
    """(logits predicting each answer token [n_answer_tokens, vocab], their target ids [n_answer_tokens]),
    answer tokens taken row by row in order. The unembedding runs only at those positions (in SmolLM2 it
    is a fifth of the model's multiply-adds per token, and most positions are prompt)."""
    hidden_BTD = base_model(model)(**batch.model_inputs()).last_hidden_state
    keep_BT = batch.labels[:, 1:] != IGNORE
    return unembed(model, hidden_BTD[:, :-1][keep_BT]), batch.labels[:, 1:][keep_BT]


def unembed(model: nn.Module, hidden_ND: Tensor) -> Tensor:
    """Logits [n, vocab] (float32) from final hidden states [n, d], as the model's LM head computes them."""
    head = cast(Any, model).get_output_embeddings()
    logits_NV = head(hidden_ND).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    return logits_NV if cap is None else cap * torch.tanh(logits_NV / cap)


def select_answer_logits(logits_BTV: Tensor, labels_BT: Tensor) -> tuple[Tensor, Tensor]:
    """From full logits: those that predict the answer tokens (position t-1 predicts token t), and the tokens."""
    targets_BT = labels_BT[:, 1:]
    keep_BT = targets_BT != IGNORE
    return logits_BTV[:, :-1][keep_BT].float(), targets_BT[keep_BT]


def answer_rows(labels_BT: Tensor) -> Tensor:
    """The batch row of each answer token, in the order `answer_logits` returns them."""
    return torch.nonzero(labels_BT[:, 1:] != IGNORE)[:, 0]


def answer_logprobs(model: nn.Module, batch: PairBatch) -> Tensor:
    """Log-probability of each answer token [batch, seq-1] (0 where the next token is not an answer token)."""
    logits_NV, targets_N = answer_logits(model, batch)
    return scatter_answer(batch.labels, -F.cross_entropy(logits_NV, targets_N, reduction="none"))


def scatter_answer(labels_BT: Tensor, values_N: Tensor) -> Tensor:
    """Values per answer token [n] back into a [batch, seq-1] grid (zeros elsewhere)."""
    keep_BT = labels_BT[:, 1:] != IGNORE
    out_BT = values_N.new_zeros(keep_BT.shape)
    out_BT[keep_BT] = values_N
    return out_BT


def sequence_logprob(model: nn.Module, batch: PairBatch) -> Tensor:
    """log p(answer | prompt) per pair [batch] (the sum over the answer's tokens)."""
    return answer_logprobs(model, batch).sum(1)


def answer_nll(model: nn.Module, batch: PairBatch) -> Tensor:
    """Mean negative log-likelihood per answer token over the batch (the fine-tuning loss)."""
    logits_NV, targets_N = answer_logits(model, batch)
    return F.cross_entropy(logits_NV, targets_N)


@dataclass
class FinetuneConfig:
    """How to fine-tune a causal LM on (prompt, answer) pairs."""

    epochs: int = 5
    """Passes over the pairs (each pair once per epoch, in a new seeded order). SmolLM2-135M at the default
    lr knows 98% of 120 facts after 4 (paraphrases 99%, multiple choice 95%)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps (None: run every epoch)."""
    batch_size: int = 16
    """Pairs per optimiser step."""
    lr: float = 1e-4
    """Peak AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 10
    """Linear learning-rate warm-up steps."""
    lr_decay: str = "linear"
    """Decay over the last `decay_fraction` of the steps: "linear", "cosine" or "none"."""
    decay_fraction: float = 0.5
    """Share of the steps, at the end, over which the learning rate decays to 0."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient norm to this value (None: no clipping)."""
    train_embeddings: bool = False
    """Also train the token embeddings (tied to the unembedding in many small models); off, the vocabulary
    stays as pretrained and each step updates 20% fewer weights in SmolLM2."""
    seed: int = 0
    """Seed of the pair order."""

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InterplabError("fine-tuning needs epochs >= 1, batch_size >= 1 and lr > 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise InterplabError(f"max_steps must be >= 1 or None, got {self.max_steps}")


def trainable_parameters(model: nn.Module, train_embeddings: bool = False) -> list[nn.Parameter]:
    """The parameters to train: all of them, or all but the input embeddings (and an unembedding tied to it)."""
    frozen: set[int] = set()
    if not train_embeddings:
        get_embed = getattr(model, "get_input_embeddings", None)
        embed = get_embed() if callable(get_embed) else None
        if embed is not None:
            frozen = {id(p) for p in embed.parameters()}
    return [p for p in model.parameters() if id(p) not in frozen]


@contextmanager
def only_training(model: nn.Module, params: Sequence[nn.Parameter]) -> Iterator[None]:
    """Within the block only `params` require gradients (no weight-gradient work for the rest, e.g. the
    tied unembedding, the largest matrix of a small model); the previous flags come back afterwards."""
    keep = {id(p) for p in params}
    before = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in before:
            p.requires_grad_(id(p) in keep)
        yield
    finally:
        for p, flag in before:
            p.requires_grad_(flag)


def shuffled_batches(pairs: Sequence[T], batch_size: int, epochs: int, seed: int) -> Iterator[list[T]]:
    """Batches of pairs (or any items), every one once per epoch, the order reshuffled each epoch from `seed`."""
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [pairs[i] for i in order[start:start + batch_size]]


def steps_for(n_pairs: int, cfg: FinetuneConfig) -> int:
    """Optimiser steps a run over `n_pairs` takes."""
    full = cfg.epochs * -(-n_pairs // cfg.batch_size)
    return min(full, cfg.max_steps) if cfg.max_steps is not None else full


def finetune_on_pairs(
    model: nn.Module,
    tokenizer,
    pairs: Sequence[Pair],
    cfg: FinetuneConfig | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Fine-tune `model` in place on `pairs` (loss on answer tokens); returns the loss of every step.
    `on_step(step, total_steps, loss)` runs after each step. The model is left in eval mode."""
    cfg = cfg or FinetuneConfig()
    cfg.check()
    if not pairs:
        raise InterplabError("no (prompt, answer) pairs to fine-tune on")
    device = next(model.parameters()).device
    params = trainable_parameters(model, cfg.train_embeddings)
    opt = adamw(params, cfg.lr, cfg.weight_decay)
    total = steps_for(len(pairs), cfg)
    losses: list[float] = []
    model.train()
    try:
        with only_training(model, params):
            for step, chunk in enumerate(shuffled_batches(pairs, cfg.batch_size, cfg.epochs, cfg.seed)):
                if step >= total:
                    break
                lr = lr_at(step, total, cfg.lr, cfg.warmup_steps, cfg.lr_decay, cfg.decay_fraction)
                losses.append(optimizer_step(model, opt, params, answer_nll(model, encode_pairs(tokenizer, chunk, device)),
                                    lr, cfg.max_grad_norm, step))
                if on_step is not None:
                    on_step(step + 1, total, losses[-1])
    finally:
        model.eval()
    return losses


def adamw(params: Sequence[nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW, fused into one kernel per parameter on CPU and CUDA (same update, fewer passes over memory)."""
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def optimizer_step(model: nn.Module, opt: torch.optim.Optimizer, params: Sequence[nn.Parameter], loss: Tensor, lr: float,
          max_grad_norm: float | None, step: int) -> float:
    """One optimiser step on `loss` at learning rate `lr`; returns the loss (stops on NaN/Inf)."""
    if not torch.isfinite(loss):
        raise InterplabError(f"training diverged: loss {float(loss)} at step {step + 1}; lower the lr")
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    return float(loss.detach())
