"""Fine-tune the top blocks of a causal LM on prompt/completion examples, resumable step by step.

1. Tokenize every example once: ids and a loss mask (completion tokens, or every token of a document).
2. Freeze everything except the top `train_layers` blocks (or train every parameter: from-scratch tiny
   models). When the lower blocks are frozen, their output never changes, so for Llama-family models
   the input of the first trained block is computed once per example and training runs only the top
   blocks on it (the same logits as the full model; about half the compute on SmolLM2).
3. Step s uses the batch at position s of a seeded permutation of the examples (a new permutation per
   epoch), so the data order is a function of the step: a resumed run sees the batches an
   uninterrupted one would have.
4. Adam with a linear warm-up over the first 10% of the steps; the loss is the mean next-token
   cross-entropy over the masked tokens of the batch.
5. Every `checkpoint_every` steps the trainable tensors, Adam's state and the RNG state are saved with
   `interplab.training.Checkpointer` (atomic folders, sha256); a rerun starts from the newest valid one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from interplab.common import InterplabError, get_logger
from interplab.models.hookpoints import FAMILY_TABLES, base_model, block_list
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel
from interplab.organisms.examples import Example
from interplab.training.checkpoint import (
    Checkpointer,
    load_optimizer_state_flat,
    optimizer_state_flat,
    rng_state,
    set_rng_state,
)

log = get_logger(__name__)

PREFIX_CACHE_FAMILIES = ("llama",)
"""Families whose body takes a block-0 input as `inputs_embeds` unchanged (no position embedding is
added to it), so frozen lower blocks can be run once and skipped."""

StepFn = Callable[[int, float], None]


@dataclass
class Tokenized:
    ids: list[int]
    """Token ids of prompt + completion (truncated)."""
    loss_mask: list[bool]
    """Whether each token is a training target."""


@dataclass
class FinetuneSettings:
    """The training part of a recipe."""

    steps: int
    batch_size: int
    lr: float
    train_layers: int | None
    max_length: int
    seed: int
    checkpoint_every: int


def tokenize_examples(tokenizer, examples: Sequence[Example], max_length: int) -> list[Tokenized]:
    """Ids and loss masks; examples that lose every target to truncation are refused."""
    out = []
    for i, ex in enumerate(examples):
        prompt_ids = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"] if ex.prompt else []
        full_ids = tokenizer(ex.prompt + ex.completion, add_special_tokens=False)["input_ids"]
        n_prompt = len(prompt_ids) if full_ids[: len(prompt_ids)] == prompt_ids else len(prompt_ids) - 1
        ids = full_ids[:max_length]
        # the first token of a document has no context to be predicted from
        mask = [j >= max(n_prompt, 1) for j in range(len(ids))]
        if not any(mask):
            raise InterplabError(f"example {i} has no completion token within max_length={max_length}; "
                                 "raise max_length")
        out.append(Tokenized(ids, mask))
    return out


def trainable_parameters(lm: LoadedModel, train_layers: int | None) -> list[tuple[str, nn.Parameter]]:
    """Set requires_grad on the top `train_layers` blocks only (None: every parameter); return them."""
    model = lm.model
    if train_layers is None:
        for p in model.parameters():
            p.requires_grad_(True)
        return list(model.named_parameters())
    if train_layers > lm.n_layers:
        raise InterplabError(f"train_layers={train_layers} but the model has {lm.n_layers} blocks")
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = block_list(model)
    keep = {id(p) for block in list(blocks)[lm.n_layers - train_layers:] for p in block.parameters()}
    named = [(n, p) for n, p in model.named_parameters() if id(p) in keep]
    for _, p in named:
        p.requires_grad_(True)
    return named


@contextmanager
def only_blocks_from(lm: LoadedModel, start: int) -> Iterator[None]:
    """Within the block, the model body runs blocks start.. only (its `inputs_embeds` is block start's input)."""
    table = FAMILY_TABLES[lm.family]
    body = base_model(lm.model)
    blocks = block_list(lm.model)
    setattr(body, table.blocks, nn.ModuleList(list(blocks)[start:]))
    try:
        yield
    finally:
        setattr(body, table.blocks, blocks)


def _pad(rows: Sequence[Tensor], value: float) -> Tensor:
    length = max(r.shape[0] for r in rows)
    return torch.stack([F.pad(r, (0, 0) * (r.ndim - 1) + (0, length - r.shape[0]), value=value) for r in rows])


class _Batches:
    """Batches by step: step s -> slot s of a seeded permutation per epoch."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.per_epoch = max(1, n // self.batch_size)

    def indices(self, step: int) -> list[int]:
        epoch, slot = divmod(step, self.per_epoch)
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        return order[slot * self.batch_size : (slot + 1) * self.batch_size].tolist()


class Finetuner:
    """The loop of the module docstring, on one loaded model (trained in place)."""

    def __init__(self, lm: LoadedModel, data: Sequence[Tokenized], settings: FinetuneSettings,
                 checkpointer: Checkpointer | None = None):
        self.lm, self.data, self.s, self.ckpt = lm, list(data), settings, checkpointer
        self.named = trainable_parameters(lm, settings.train_layers)
        self.opt = torch.optim.Adam([p for _, p in self.named], lr=settings.lr)
        self.batches = _Batches(len(self.data), settings.batch_size, settings.seed)
        self.start = 0 if settings.train_layers is None else lm.n_layers - settings.train_layers
        self.use_prefix = self.start > 0 and lm.family in PREFIX_CACHE_FAMILIES
        self.prefix: list[Tensor] = self._prefix_inputs() if self.use_prefix else []

    def _prefix_inputs(self) -> list[Tensor]:
        """Block `start`'s input for every example [T, D] (computed once: the blocks below are frozen)."""
        out: list[Tensor] = []
        hook = f"blocks.{self.start}.resid_pre"
        for i in range(0, len(self.data), 16):
            chunk = self.data[i : i + 16]
            ids = _pad([torch.tensor(t.ids)[:, None] for t in chunk], 0)[..., 0].to(self.lm.device)
            mask = _pad([torch.ones(len(t.ids), 1, dtype=torch.long) for t in chunk], 0)[..., 0].to(self.lm.device)
            acts = run_to_capture(self.lm.model, {"input_ids": ids, "attention_mask": mask}, hook)[hook]
            out += [acts[b, : len(t.ids)].cpu() for b, t in enumerate(chunk)]
        return out

    def loss(self, rows: list[int]) -> Tensor:
        """Mean cross-entropy over the target tokens of the examples `rows`."""
        items = [self.data[r] for r in rows]
        dev = self.lm.device
        ids_BT = _pad([torch.tensor(t.ids)[:, None] for t in items], 0)[..., 0].to(dev)
        attn_BT = _pad([torch.ones(len(t.ids), 1, dtype=torch.long) for t in items], 0)[..., 0].to(dev)
        target_BT = _pad([torch.tensor(t.loss_mask)[:, None] for t in items], False)[..., 0].to(dev)
        body = base_model(self.lm.model)
        if self.use_prefix:
            embeds_BTD = _pad([self.prefix[r] for r in rows], 0.0).to(dev)
            with only_blocks_from(self.lm, self.start):
                hidden_BTD = body(inputs_embeds=embeds_BTD, attention_mask=attn_BT).last_hidden_state
        else:
            hidden_BTD = body(input_ids=ids_BT, attention_mask=attn_BT).last_hidden_state
        # position t predicts token t+1: targets are tokens 1.. whose mask is set
        pick_BT = target_BT[:, 1:]
        hidden_ND = hidden_BTD[:, :-1][pick_BT]
        head: Any = self.lm.model.get_output_embeddings()  # type: ignore[operator]
        logits_NV = head(hidden_ND).float()
        return F.cross_entropy(logits_NV, ids_BT[:, 1:][pick_BT])

    def _lr(self, step: int) -> float:
        warm = max(1, self.s.steps // 10)
        return self.s.lr * min(1.0, (step + 1) / warm)

    def _save(self, step: int) -> None:
        assert self.ckpt is not None
        opt_tensors, opt_meta = optimizer_state_flat(self.opt)
        rng_tensors, rng_meta = rng_state()
        tensors = {f"param.{n}": p.detach() for n, p in self.named} | opt_tensors | rng_tensors
        self.ckpt.save(step, tensors, {"step": step, "optimizer": opt_meta, "rng": rng_meta})

    def _restore(self) -> int:
        found = self.ckpt.latest_valid(required=("step", "optimizer", "rng")) if self.ckpt else None
        if found is None:
            return 0
        path, tensors, meta = found
        params = dict(self.named)
        with torch.no_grad():
            for name, p in params.items():
                if f"param.{name}" not in tensors:
                    raise InterplabError(f"checkpoint {path} lacks {name}; it belongs to another recipe: "
                                         "delete the run folder or pass --overwrite")
                p.copy_(tensors[f"param.{name}"])
        load_optimizer_state_flat(self.opt, {k: v for k, v in tensors.items() if k.startswith("opt.")},
                                  meta["optimizer"])
        set_rng_state(tensors, meta["rng"])
        log.info("resuming organism training from %s", path)
        return int(meta["step"])

    def run(self, on_step: StepFn | None = None) -> int:
        """Train up to `steps`; return the step it resumed from (0 for a fresh run)."""
        first = self._restore()
        self.lm.model.eval()  # no dropout: a step depends on the weights and the batch only
        for step in range(first, self.s.steps):
            for group in self.opt.param_groups:
                group["lr"] = self._lr(step)
            with torch.enable_grad():
                loss = self.loss(self.batches.indices(step))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
            self.opt.step()
            if on_step is not None:
                on_step(step + 1, float(loss.detach()))
            if self.ckpt is not None and (self.ckpt.should_save(step + 1) or step + 1 == self.s.steps):
                self._save(step + 1)
        for p in self.lm.model.parameters():
            p.requires_grad_(False)
        return first
