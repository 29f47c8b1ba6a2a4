"""Which cached positions training, evaluation and dashboards leave out, and why: attention sinks.

A causal LM parks attention on its first position, whose residual then grows huge (SmolLM2-135M
`blocks.15.resid_post`: median norm ~23,600 at position 0 against ~174 elsewhere). Those 1/ctx of the
tokens carry ~98 % of the variance, so an SAE spends its capacity on them and its FVU measures them alone.
SAELens (`exclude_special_tokens`) and SAEBench (`exclude_special_tokens_from_reconstruction`) leave
such tokens out too.

An `ExclusionRule` is a pure function of one shard (or batch): its token ids, real-token mask and
activations. A token is left out when it is
  1. among the first `first_positions` real tokens of its row (the sink);
  2. one of `token_ids` (the tokenizer's special tokens: BOS/EOS/pad the packer inserts);
  3. more than `max_norm_ratio` times the median norm of the tokens rules 1-2 keep in the same shard
     (massive activations away from position 0: SmolLM2 has a few at position 1).
The store keeps every activation and writes the rule into its header; `ActivationStore.load_shard`
applies it, so the buffer, the evaluations and the dashboards all read it from that one place, and a
store cached without it (or before it existed) reads exactly as it was written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.common import InterplabError


@dataclass(frozen=True)
class ExclusionRule:
    """The positions a store leaves out; the default leaves out nothing (stores written before rules)."""

    first_positions: int = 0
    """Leading real tokens of every row left out (1: the attention sink at position 0)."""
    token_ids: tuple[int, ...] = ()
    """Token ids left out wherever they are (the tokenizer's special tokens)."""
    token_names: tuple[str, ...] = ()
    """The same tokens as text, for messages and the manifest."""
    max_norm_ratio: float | None = None
    """Leave out tokens whose norm is above this multiple of the shard's median norm (None: no limit)."""

    @property
    def is_empty(self) -> bool:
        return not self.first_positions and not self.token_ids and self.max_norm_ratio is None

    def keep_mask(self, tokens_NT: Tensor, real_NT: Tensor, acts_NTD: Tensor | None = None) -> Tensor:
        """[N, T] bool: real tokens this rule keeps. Without activations rule 3 is skipped."""
        keep_NT = real_NT.bool().clone()
        if self.first_positions:
            # rank among the row's real tokens, so left padding (generation batches) is handled too
            keep_NT &= real_NT.long().cumsum(1) > self.first_positions
        if self.token_ids:
            ids = torch.tensor(self.token_ids, dtype=tokens_NT.dtype, device=tokens_NT.device)
            keep_NT &= ~torch.isin(tokens_NT, ids)
        if self.max_norm_ratio is not None and acts_NTD is not None and bool(keep_NT.any()):
            norms_NT = torch.linalg.vector_norm(acts_NTD.float(), dim=-1)
            keep_NT &= norms_NT <= self.max_norm_ratio * norms_NT[keep_NT].median()
        return keep_NT

    def describe(self) -> str:
        """One line for logs, eval output and pages."""
        if self.is_empty:
            return "none"
        parts = []
        if self.first_positions:
            parts.append("the first position of each sequence" if self.first_positions == 1
                         else f"the first {self.first_positions} positions of each sequence")
        if self.token_ids:
            names = self.token_names or tuple(str(i) for i in self.token_ids)
            parts.append("special tokens " + " ".join(names))
        if self.max_norm_ratio is not None:
            parts.append(f"tokens with norm above {self.max_norm_ratio:g}x the median")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "token_ids": list(self.token_ids), "token_names": list(self.token_names),
                "description": self.describe()}

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, first_positions: int, special_tokens: bool,
                      max_norm_ratio: float | None) -> ExclusionRule:
        """The rule with `tokenizer`'s special tokens (all of them, when `special_tokens`)."""
        if first_positions < 0 or (max_norm_ratio is not None and max_norm_ratio <= 1):
            raise InterplabError("sink exclusion: sink_positions must be >= 0 and max_norm_ratio above 1 "
                                 "(or none)")
        ids = sorted({int(i) for i in getattr(tokenizer, "all_special_ids", [])}) if special_tokens else []
        names = tuple(str(t) for t in tokenizer.convert_ids_to_tokens(ids)) if ids else ()
        return cls(first_positions, tuple(ids), names, max_norm_ratio)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExclusionRule:
        ratio = data.get("max_norm_ratio")
        return cls(int(data.get("first_positions", 0)), tuple(int(i) for i in data.get("token_ids", ())),
                   tuple(str(n) for n in data.get("token_names", ())), None if ratio is None else float(ratio))
