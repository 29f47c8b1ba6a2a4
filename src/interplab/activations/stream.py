"""Training batches straight from forward passes: several hooks at once, nothing cached to disk.

What sparsify's trainer does for all layers in one pass over the data, as a resumable stream:

1. Tokenize and pack the texts once into [n_seq, ctx] windows (`tokenize_and_pack`).
2. Each epoch visits the sequences in an order drawn from (seed, epoch), in windows of
   `window_seqs` sequences. A window is run through the model in batches of `forward_batch`
   sequences (stopping after the last hooked layer), capturing every input hook (and target hook).
3. Attention sinks are left out by the rule activation stores use (activations/exclusion.py: the
   first position, special tokens, tokens above `max_norm_ratio` times the median norm). The norm
   test runs on every hook (inputs and targets) per forward batch, and a token is kept only if every
   hook keeps it, so the rows of all layers stay aligned.
4. With `normalize`, every hook's rows are multiplied by one number, sqrt(d) / mean ‖row‖ measured on
   the kept tokens of the first window (SAELens's `expected_average_only_in`, here for the targets
   too): MLP outputs of SmolLM2 have norms of 20-170 against ~3 at the inputs, so with unit-norm
   decoder rows the encoder would have to grow 100-fold before latents could reach them. `scales`
   holds the numbers; whoever saves what was trained folds them back (`fold_transcoder_scales_`).
5. The window's kept tokens are stacked [n, M, d] (M hooks), permuted by a generator seeded from
   (seed, epoch, window), and cut into batches of `batch_size` rows; a window's last partial batch is
   dropped, so batches never span windows.
6. Each element is x [B, M, d] (one hook: [B, d]), or the pair (x, y) when target hooks are given,
   the shape `fit` takes for an `SAEGroup` (or a single SAE / transcoder).

The position is (epoch, window, batch within the window) plus the scales: `load_state_dict` recomputes
only that window's forward passes, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.activations.exclusion import ExclusionRule
from interplab.common import InterplabError, get_logger
from interplab.data.text import PackedTokens, tokenize_and_pack
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel

log = get_logger(__name__)

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
    normalize: bool = True
    """Scale each hook's activations to mean norm sqrt(d) (one number per hook, from the first window)."""
    exclude_sinks: bool | None = None
    """Leave attention sinks out (the activation store's rule, activations/exclusion.py); None: yes for
    causal LMs, no for encoders."""
    sink_positions: int = 1
    """Sinks: the first real tokens of every row (1: position 0, the attention sink)."""
    exclude_special_tokens: bool = True
    """Sinks: also the tokenizer's special tokens (BOS/EOS/pad) wherever they are."""
    max_norm_ratio: float | None = 10.0
    """Sinks: also tokens above this multiple of the median norm at any hook (massive activations)."""

    def check(self) -> None:
        if min(self.batch_size, self.context_size, self.window_seqs, self.forward_batch) < 1:
            raise InterplabError("batch_size, context_size, window_seqs and forward_batch must be positive")

    def exclusion_rule(self, tokenizer: Any, is_causal: bool) -> ExclusionRule:
        """The positions left out (an empty rule when sinks are kept)."""
        if not (is_causal if self.exclude_sinks is None else self.exclude_sinks):
            return ExclusionRule()
        return ExclusionRule.for_tokenizer(tokenizer, self.sink_positions, self.exclude_special_tokens,
                                           self.max_norm_ratio)


class ForwardStream:
    """Iterable of training batches from `hooks` (and `target_hooks`) of `lm` over `texts`."""

    def __init__(self, lm: LoadedModel, texts: Sequence[str], hooks: Sequence[str],
                 target_hooks: Sequence[str] | None = None, cfg: StreamConfig | None = None):
        self.lm, self.cfg = lm, cfg or StreamConfig()
        self.cfg.check()
        self.hooks, self.targets = list(hooks), list(target_hooks or [])
        if not self.hooks or (self.targets and len(self.targets) != len(self.hooks)):
            raise InterplabError("give one or more hooks, and as many target hooks (or none)")
        self.exclusion = self.cfg.exclusion_rule(lm.tokenizer, lm.is_causal)
        max_seq = None if self.cfg.max_tokens is None else max(1, -(-self.cfg.max_tokens // self.cfg.context_size))
        self.packed: PackedTokens = tokenize_and_pack(lm.tokenizer, texts, self.cfg.context_size, lm.is_causal,
                                                      max_seq=max_seq)
        self.epoch, self.window, self.batch_in_window = 0, 0, 0
        self._scales: dict[str, float] | None = None
        self._cached: tuple[tuple[int, int], Tensor, Tensor | None] | None = None
        self.n_real = self.n_kept = 0  # tokens seen / kept so far (for logs)
        first = int(self.packed.attention_mask[self._window_seqs(0, 0)].sum())
        if first < self.cfg.batch_size:
            raise InterplabError(f"a window of {self.cfg.window_seqs} sequences holds {first} tokens, fewer than "
                                 f"batch_size={self.cfg.batch_size}; raise window_seqs or lower batch_size")

    def n_windows(self) -> int:
        return -(-len(self.packed.input_ids) // self.cfg.window_seqs)

    @property
    def scales(self) -> dict[str, float]:
        """hook -> the factor its activations are multiplied by (all 1.0 without `normalize`)."""
        if self._scales is None:
            names = self.hooks + self.targets
            if not self.cfg.normalize:
                self._scales = {h: 1.0 for h in names}
            else:
                x, y = self._raw_rows(0, 0)
                rows = x if y is None else torch.cat([x, y], 1)
                norms = torch.linalg.vector_norm(rows, dim=-1).mean(0)  # [M]
                self._scales = {h: float(rows.shape[-1] ** 0.5 / max(float(n), 1e-12))
                                for h, n in zip(names, norms, strict=True)}
        return self._scales

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "window": self.window, "batch": self.batch_in_window,
                "seed": self.cfg.seed, "batch_size": self.cfg.batch_size, "hooks": self.hooks,
                "targets": self.targets, "n_seq": len(self.packed.input_ids), "scales": self.scales,
                "exclusion": self.exclusion.to_json()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = {"seed": self.cfg.seed, "batch_size": self.cfg.batch_size, "hooks": self.hooks,
                "targets": self.targets, "n_seq": len(self.packed.input_ids), "exclusion": self.exclusion.to_json()}
        for key, value in mine.items():
            if state.get(key) != value:
                raise InterplabError(f"stream state has {key}={state.get(key)!r}, this stream "
                                     f"{value!r}; resume with the same data and settings")
        self.epoch, self.window, self.batch_in_window = int(state["epoch"]), int(state["window"]), int(state["batch"])
        self._scales = {str(k): float(v) for k, v in state["scales"].items()}

    def _order(self, epoch: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.cfg.seed * _EPOCH_MIX + epoch)
        return torch.randperm(len(self.packed.input_ids), generator=gen)

    def _window_seqs(self, epoch: int, w: int) -> Tensor:
        return self._order(epoch)[w * self.cfg.window_seqs: (w + 1) * self.cfg.window_seqs]

    def _keep(self, ids: Tensor, mask: Tensor, acts: dict[str, Tensor]) -> Tensor:
        """[b, S] bool: real tokens every hook keeps under the exclusion rule."""
        keep = self.exclusion.keep_mask(ids, mask)
        if self.exclusion.max_norm_ratio is not None:
            for h in self.hooks + self.targets:
                keep &= self.exclusion.keep_mask(ids, mask, acts[h])
        return keep

    def _raw_rows(self, epoch: int, w: int) -> tuple[Tensor, Tensor | None]:
        """Kept-token rows of one window, unscaled and in sequence order: x [n, M, d], targets or None."""
        if self._cached is not None and self._cached[0] == (epoch, w):
            return self._cached[1], self._cached[2]
        seqs = self._window_seqs(epoch, w)
        names = self.hooks + self.targets
        xs, ys = [], []
        n_real = n_kept = 0
        for s in range(0, len(seqs), self.cfg.forward_batch):
            idx = seqs[s: s + self.cfg.forward_batch]
            mask = self.packed.attention_mask[idx].to(self.lm.device)
            ids = self.packed.input_ids[idx].to(self.lm.device)
            acts = run_to_capture(self.lm.model, {"input_ids": ids, "attention_mask": mask.long()}, names)
            keep = self._keep(ids, mask, acts)
            n_real, n_kept = n_real + int(mask.sum()), n_kept + int(keep.sum())
            xs.append(torch.stack([acts[h][keep] for h in self.hooks], 1).float().cpu())
            if self.targets:
                ys.append(torch.stack([acts[h][keep] for h in self.targets], 1).float().cpu())
        if w == 0 and epoch == 0:
            log.info("stream: left out %d of %d tokens of the first window (%s)", n_real - n_kept, n_real,
                     self.exclusion.describe())
        self.n_real, self.n_kept = self.n_real + n_real, self.n_kept + n_kept
        out = torch.cat(xs), (torch.cat(ys) if ys else None)
        self._cached = ((epoch, w), *out)
        return out

    def _window_rows(self, epoch: int, w: int) -> tuple[Tensor, Tensor | None]:
        """The window's rows, scaled and permuted."""
        x, y = self._raw_rows(epoch, w)
        scales = self.scales
        x = x * torch.tensor([scales[h] for h in self.hooks])[:, None]
        if y is not None:
            y = y * torch.tensor([scales[h] for h in self.targets])[:, None]
        gen = torch.Generator().manual_seed((self.cfg.seed * _EPOCH_MIX + epoch) * _WINDOW_MIX + w)
        perm = torch.randperm(len(x), generator=gen)
        return x[perm], (y[perm] if y is not None else None)

    def _element(self, x: Tensor, y: Tensor | None) -> Tensor | tuple[Tensor, Tensor]:
        if len(self.hooks) == 1:
            x, y = x[:, 0], (None if y is None else y[:, 0])
        return x if y is None else (x, y)

    def __iter__(self) -> Iterator[Tensor | tuple[Tensor, Tensor]]:
        B = self.cfg.batch_size
        while self.cfg.epochs is None or self.epoch < self.cfg.epochs:
            fresh, yielded = self.window == 0 and self.batch_in_window == 0, False
            while self.window < self.n_windows():
                x, y = self._window_rows(self.epoch, self.window)
                self._cached = None  # a window is read once per epoch
                while (self.batch_in_window + 1) * B <= len(x):
                    sl = slice(self.batch_in_window * B, (self.batch_in_window + 1) * B)
                    self.batch_in_window += 1
                    yielded = True
                    yield self._element(x[sl], None if y is None else y[sl])
                self.window, self.batch_in_window = self.window + 1, 0
            if fresh and not yielded:
                raise InterplabError(f"no window of {self.cfg.window_seqs} sequences keeps batch_size="
                                     f"{self.cfg.batch_size} tokens; raise window_seqs or lower batch_size")
            self.epoch, self.window = self.epoch + 1, 0
