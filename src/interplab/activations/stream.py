"""Training batches straight from forward passes: several hooks at once, nothing cached to disk.

What sparsify's trainer does for all layers in one pass over the data, as a resumable stream:

1. Tokenize and pack the texts once into [n_seq, ctx] windows (`tokenize_and_pack`).
2. Each epoch visits the sequences in an order drawn from (seed, epoch), in windows of
   `window_seqs` sequences. A window is run through the model in batches of `forward_batch`
   sequences (stopping after the last hooked layer), capturing every input hook (and target hook).
3. The window's kept tokens are stacked [n, M, d] (M hooks), permuted by a generator seeded from
   (seed, epoch, window), and cut into batches of `batch_size` rows; a window's last partial batch is
   dropped, so batches never span windows. Kept: real tokens that the activation stores' exclusion
   rule keeps (exclusion.py: attention sinks and special tokens out, for causal LMs by default; the
   norm limit is applied per forward batch at every hook, and a token must pass it at all of them,
   so every member sees the same tokens).
4. Each element is x [B, M, d] (one hook: [B, d]), or the pair (x, y) when target hooks are given,
   the shape `fit` takes for an `SAEGroup` (or a single SAE / transcoder).

The position is (epoch, window, batch within the window): `load_state_dict` recomputes only that
window's forward passes, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.activations.cache import CacheConfig
from interplab.common import InterplabError
from interplab.data.text import PackedTokens, tokenize_and_pack
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel

_EPOCH_MIX = 1_000_003
_WINDOW_MIX = 7_919


@dataclass
class StreamConfig:
    """How batches are drawn from forward passes."""

    batch_size: int = 4096
    """Token rows per training batch."""
    context_size: int = 128
    """Tokens per sequence window."""
    window_seqs: int = 64
    """Sequences whose tokens are mixed together (memory: window_seqs × ctx × hooks × d floats)."""
    forward_batch: int = 8
    """Sequences per forward pass."""
    seed: int = 0
    """Seed of the sequence order and the permutation within each window."""
    epochs: int | None = None
    """Passes over the texts; None streams forever (the trainer decides when to stop)."""
    max_tokens: int | None = None
    """Use at most this many token positions of the texts (rounded up to whole sequences)."""
    exclude_sinks: bool | None = None
    """Leave out attention sinks as activation stores do (first position, special tokens, tokens above
    10x the median norm); None: yes for causal LMs, no for encoders."""

    def check(self) -> None:
        if min(self.batch_size, self.context_size, self.window_seqs, self.forward_batch) < 1:
            raise InterplabError("batch_size, context_size, window_seqs and forward_batch must be positive")


class ForwardStream:
    """Iterable of training batches from `hooks` (and `target_hooks`) of `lm` over `texts`."""

    def __init__(self, lm: LoadedModel, texts: Sequence[str], hooks: Sequence[str],
                 target_hooks: Sequence[str] | None = None, cfg: StreamConfig | None = None):
        self.lm, self.cfg = lm, cfg or StreamConfig()
        self.cfg.check()
        self.hooks, self.targets = list(hooks), list(target_hooks or [])
        if not self.hooks or (self.targets and len(self.targets) != len(self.hooks)):
            raise InterplabError("give one or more hooks, and as many target hooks (or none)")
        max_seq = None if self.cfg.max_tokens is None else max(1, -(-self.cfg.max_tokens // self.cfg.context_size))
        self.packed: PackedTokens = tokenize_and_pack(lm.tokenizer, texts, self.cfg.context_size, lm.is_causal,
                                                      max_seq=max_seq)
        # the stores' rule with their default settings (cache.py), so streamed and cached training agree
        self.rule = CacheConfig(exclude_sinks=self.cfg.exclude_sinks).exclusion_rule(lm.tokenizer, lm.is_causal)
        self.epoch, self.window, self.batch_in_window = 0, 0, 0
        if self.n_windows() == 0 or self._window_tokens(0, 0) < self.cfg.batch_size:
            raise InterplabError(f"a window of {self.cfg.window_seqs} sequences holds fewer than batch_size="
                                 f"{self.cfg.batch_size} tokens; raise window_seqs or lower batch_size")

    def n_windows(self) -> int:
        return -(-len(self.packed.input_ids) // self.cfg.window_seqs)

    def batches_per_epoch(self) -> int:
        return sum(self._window_tokens(0, w) // self.cfg.batch_size for w in range(self.n_windows()))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "window": self.window, "batch": self.batch_in_window,
                "seed": self.cfg.seed, "batch_size": self.cfg.batch_size, "hooks": self.hooks,
                "targets": self.targets, "n_seq": len(self.packed.input_ids)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "batch_size", "hooks", "targets", "n_seq"):
            if state.get(key) != self.state_dict()[key]:
                raise InterplabError(f"stream state has {key}={state.get(key)!r}, this stream "
                                     f"{self.state_dict()[key]!r}; resume with the same data and settings")
        self.epoch, self.window, self.batch_in_window = int(state["epoch"]), int(state["window"]), int(state["batch"])

    def _order(self, epoch: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.cfg.seed * _EPOCH_MIX + epoch)
        return torch.randperm(len(self.packed.input_ids), generator=gen)

    def _window_seqs(self, epoch: int, w: int) -> Tensor:
        return self._order(epoch)[w * self.cfg.window_seqs: (w + 1) * self.cfg.window_seqs]

    def _window_tokens(self, epoch: int, w: int) -> int:
        """Tokens of a window that rules 1-2 keep (rule 3, the norm limit, may drop a few more)."""
        seqs = self._window_seqs(epoch, w)
        return int(self.rule.keep_mask(self.packed.input_ids[seqs], self.packed.attention_mask[seqs]).sum())

    def _window_rows(self, epoch: int, w: int) -> tuple[Tensor, Tensor | None]:
        """Real-token rows of one window, permuted: x [n, M, d] and targets [n, M, d] or None."""
        seqs = self._window_seqs(epoch, w)
        names = self.hooks + self.targets
        xs, ys = [], []
        for s in range(0, len(seqs), self.cfg.forward_batch):
            idx = seqs[s: s + self.cfg.forward_batch]
            mask, ids = self.packed.attention_mask[idx], self.packed.input_ids[idx]
            batch = {"input_ids": ids.to(self.lm.device), "attention_mask": mask.to(self.lm.device, dtype=torch.long)}
            acts = run_to_capture(self.lm.model, batch, names)
            keep = self._keep(ids, mask, [acts[h] for h in names])
            xs.append(torch.stack([acts[h][keep] for h in self.hooks], 1).float().cpu())
            if self.targets:
                ys.append(torch.stack([acts[h][keep] for h in self.targets], 1).float().cpu())
        x = torch.cat(xs)
        gen = torch.Generator().manual_seed((self.cfg.seed * _EPOCH_MIX + epoch) * _WINDOW_MIX + w)
        perm = torch.randperm(len(x), generator=gen)
        return x[perm], (torch.cat(ys)[perm] if ys else None)

    def _keep(self, ids: Tensor, mask: Tensor, acts: list[Tensor]) -> Tensor:
        """[b, ctx] tokens to train on: kept by the rule at every hook (on the model's device)."""
        ids, mask = ids.to(self.lm.device), mask.to(self.lm.device)
        if self.rule.is_empty:
            return mask.bool()
        keep = self.rule.keep_mask(ids, mask, acts[0])
        for a in acts[1:]:
            keep &= self.rule.keep_mask(ids, mask, a)
        return keep

    def _element(self, x: Tensor, y: Tensor | None) -> Tensor | tuple[Tensor, Tensor]:
        if len(self.hooks) == 1:
            x, y = x[:, 0], (None if y is None else y[:, 0])
        return x if y is None else (x, y)

    def __iter__(self) -> Iterator[Tensor | tuple[Tensor, Tensor]]:
        B = self.cfg.batch_size
        while self.cfg.epochs is None or self.epoch < self.cfg.epochs:
            while self.window < self.n_windows():
                x, y = self._window_rows(self.epoch, self.window)
                while (self.batch_in_window + 1) * B <= len(x):
                    sl = slice(self.batch_in_window * B, (self.batch_in_window + 1) * B)
                    self.batch_in_window += 1
                    yield self._element(x[sl], None if y is None else y[sl])
                self.window, self.batch_in_window = self.window + 1, 0
            self.epoch, self.window = self.epoch + 1, 0
