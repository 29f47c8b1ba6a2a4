"""Dyck-1 strings (balanced brackets) for the Dyck lab: balanced / unbalanced labels and per-token depth.

1. A balanced string of 2n brackets is a random walk that opens or closes with equal chance among the moves
   that keep it completable: close only above depth 0, open only if the walk can still return to 0 in the
   steps left and stays within `max_depth`.
2. Unbalanced strings come in two kinds, half each, so a classifier cannot look at one cue only:
   "order": a balanced string with one "(" swapped with a later ")" so that some prefix dips below zero;
   "count": a balanced string with one bracket flipped (the final depth is ±2).
   Both are one edit away from a balanced string, so no surface statistic separates the classes: the
   model has to count.
3. Tokens: BOS, the brackets, EOS, then PAD up to the longest string. Depth after each token: BOS 0, "("
   +1, ")" -1, EOS the final depth (negative depths occur in unbalanced strings only).
Everything is a function of the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.common import InterplabError

PAD, BOS, EOS, OPEN, CLOSE = 0, 1, 2, 3, 4
TOKEN_TEXT = {PAD: "", BOS: "<s>", EOS: "</s>", OPEN: "(", CLOSE: ")"}
VOCAB_SIZE = 5


@dataclass
class DyckDataConfig:
    """Which bracket strings to draw."""

    max_pairs: int = 10
    """Bracket pairs in a string at most (strings hold 2 to 2 * max_pairs brackets)."""
    max_depth: int = 8
    """Deepest nesting a balanced string reaches."""
    balanced_fraction: float = 0.5
    """Share of balanced strings."""

    @property
    def seq_len(self) -> int:
        """Tokens per row: BOS + brackets + EOS."""
        return 2 * self.max_pairs + 2


@dataclass
class DyckSet:
    """A batch of bracket strings as tensors."""

    tokens_BT: Tensor
    """Token ids (PAD after EOS)."""
    balanced_B: Tensor
    """True for balanced strings."""
    depth_BT: Tensor
    """Depth after each token (0 on PAD)."""
    mask_BT: Tensor
    """True on real tokens (BOS, brackets, EOS)."""
    kind: list[str]
    """'balanced', 'order' or 'count' per string."""

    def __len__(self) -> int:
        return int(self.tokens_BT.shape[0])

    def strings(self) -> list[str]:
        return ["".join(TOKEN_TEXT[t] for t in row if t in (OPEN, CLOSE)) for row in self.tokens_BT.tolist()]


def is_balanced(brackets: str) -> bool:
    depth = 0
    for ch in brackets:
        depth += 1 if ch == "(" else -1
        if depth < 0:
            return False
    return depth == 0


def random_balanced(rng: random.Random, n_pairs: int, max_depth: int) -> str:
    """A random balanced string of `n_pairs` pairs never deeper than `max_depth` (step 1 of the docstring)."""
    out, depth = [], 0
    for left in range(2 * n_pairs, 0, -1):
        can_open = depth + 1 <= left - 1 and depth < max_depth
        can_close = depth > 0
        opening = can_open and (not can_close or rng.random() < 0.5)
        depth += 1 if opening else -1
        out.append("(" if opening else ")")
    return "".join(out)


def _order_negative(rng: random.Random, n_pairs: int, max_depth: int) -> str:
    """A balanced string with one "(" swapped with a later ")" so that some prefix dips below zero."""
    while True:
        chars = list(random_balanced(rng, n_pairs, max_depth))
        opens = [i for i, ch in enumerate(chars) if ch == "("]
        i = rng.choice(opens)
        closes = [j for j in range(i + 1, len(chars)) if chars[j] == ")"]
        j = rng.choice(closes)
        chars[i], chars[j] = ")", "("
        text = "".join(chars)
        if not is_balanced(text):
            return text


def _count_negative(rng: random.Random, n_pairs: int, max_depth: int) -> str:
    chars = list(random_balanced(rng, n_pairs, max_depth))
    i = rng.randrange(len(chars))
    chars[i] = ")" if chars[i] == "(" else "("
    return "".join(chars)


def sample_strings(n: int, cfg: DyckDataConfig, seed: int) -> list[tuple[str, str]]:
    """`n` (brackets, kind) pairs; kind is 'balanced', 'order' or 'count'."""
    if cfg.max_pairs < 1 or cfg.max_depth < 1:
        raise InterplabError("Dyck data: max_pairs and max_depth must be at least 1")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        pairs = rng.randint(1, cfg.max_pairs)
        if rng.random() < cfg.balanced_fraction:
            out.append((random_balanced(rng, pairs, cfg.max_depth), "balanced"))
        elif rng.random() < 0.5:
            out.append((_order_negative(rng, pairs, cfg.max_depth), "order"))
        else:
            out.append((_count_negative(rng, pairs, cfg.max_depth), "count"))
    return out


def encode(strings: list[tuple[str, str]], cfg: DyckDataConfig) -> DyckSet:
    """Tensors of (brackets, kind) pairs, rows padded to `cfg.seq_len`."""
    n, t = len(strings), cfg.seq_len
    tokens = torch.full((n, t), PAD, dtype=torch.long)
    depth = torch.zeros(n, t, dtype=torch.long)
    for row, (text, _) in enumerate(strings):
        if len(text) + 2 > t:
            raise InterplabError(f"bracket string of {len(text)} characters is longer than max_pairs allows")
        ids = [BOS, *(OPEN if ch == "(" else CLOSE for ch in text), EOS]
        d, depths = 0, [0]
        for ch in text:
            d += 1 if ch == "(" else -1
            depths.append(d)
        depths.append(d)
        tokens[row, : len(ids)] = torch.tensor(ids)
        depth[row, : len(ids)] = torch.tensor(depths)
    return DyckSet(tokens_BT=tokens, balanced_B=torch.tensor([k == "balanced" for _, k in strings]),
                   depth_BT=depth, mask_BT=tokens != PAD, kind=[k for _, k in strings])


def dyck_split(n_train: int, n_test: int, cfg: DyckDataConfig, seed: int = 0) -> tuple[DyckSet, DyckSet]:
    """(train, held-out) sets from separate seeds; held-out strings that also occur in training are dropped."""
    train = sample_strings(n_train, cfg, seed)
    seen = {s for s, _ in train}
    test = [pair for pair in sample_strings(n_test * 4, cfg, seed + 1_000_003) if pair[0] not in seen][:n_test]
    return encode(train, cfg), encode(test, cfg)
