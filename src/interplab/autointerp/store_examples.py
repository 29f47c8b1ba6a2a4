"""Latent examples read from an activation store: exact negatives, no model forward pass.

The dashboards DB keeps only activating windows, so negatives taken from it (other latents' top
windows) are often windows where the latent fires too: with k = 32 of 2,304 latents, a latent fires in
about a third of the demo's windows. A store holds every token's activation, so:
1. Cut each stored sequence into windows of `cfg.context` tokens after its first `skip_first`
   positions (the attention sink and the shortest contexts); positions the store excludes count as silent.
2. Encode the windows with the SAE; a latent is eligible when it fires in at least `min_windows`
   windows and stays silent in at least `cfg.n_random` (detection needs both classes); on a small store
   both are capped at a quarter of its windows.
3. Without a list of latents, sample `n_latents` eligible ones at random (seed): the most frequent
   latents are the least specific, so they make a poor showcase and a biased score.
4. Per latent, top / quantile / random windows as `examples_for_latent` cuts them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from interplab.activations.store import ActivationStore
from interplab.autointerp.examples import ExampleConfig, LatentExamples, examples_for_latent
from interplab.common import InterplabError


@dataclass
class StoreExampleConfig:
    """Which windows of the store, and which latents."""

    examples: ExampleConfig = field(default_factory=ExampleConfig)
    """Window length (`context`), top/quantile/random counts, seed."""
    skip_first: int = 8
    """Leading positions of each stored sequence never windowed (sink and shortest contexts)."""
    min_windows: int = 40
    """A latent is sampled only if it fires in at least this many windows."""
    max_windows: int = 8192
    """Windows read at most."""


def _windows(store: ActivationStore, cfg: StoreExampleConfig) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """(activations [w, context, d], keep mask [w, context], token ids [w, context]) per shard, at most
    `cfg.max_windows` windows in all."""
    size, left = cfg.examples.context, cfg.max_windows
    for shard in store.iter_shards():
        usable = (shard.acts.shape[1] - cfg.skip_first) // size
        if usable <= 0:
            raise InterplabError(f"the store's sequences ({shard.acts.shape[1]} tokens) are too short for windows "
                                 f"of {size} after {cfg.skip_first} skipped positions; use a smaller context")
        span = slice(cfg.skip_first, cfg.skip_first + usable * size)
        acts = shard.acts[:, span].reshape(-1, size, shard.acts.shape[-1])[:left]
        keep = shard.keep[:, span].reshape(-1, size)[:left]
        yield acts, keep, shard.tokens[:, span].reshape(-1, size)[:left]
        left -= len(acts)
        if left <= 0:
            return


def _codes(store: ActivationStore, encode: Callable[[Tensor], Tensor], cfg: StoreExampleConfig,
           pick: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """(`pick` of each chunk's codes [w, context, d_sae] with excluded positions zeroed, concatenated;
    token ids [W, context]). Chunks keep memory at one block of codes whatever the store's size."""
    picked, ids = [], []
    with torch.no_grad():
        for acts, keep, tokens in _windows(store, cfg):
            for start in range(0, len(acts), 64):
                z = encode(acts[start : start + 64].float()) * keep[start : start + 64, :, None]
                picked.append(pick(z))
            ids.append(tokens)
    return torch.cat(picked), torch.cat(ids)


def eligible_latents(fires_WF: Tensor, min_windows: int, min_silent: int) -> list[int]:
    """Latents firing in ≥ `min_windows` windows and silent in ≥ `min_silent` (`fires_WF`: fires per window)."""
    n_fires_F = fires_WF.sum(0)
    ok = (n_fires_F >= min_windows) & (fires_WF.shape[0] - n_fires_F >= min_silent)
    return ok.nonzero().flatten().tolist()


def examples_from_store(store_dir: str | Path, encode: Callable[[Tensor], Tensor],
                        token_text: Callable[[int], str], cfg: StoreExampleConfig | None = None,
                        features: Sequence[int] | None = None, n_latents: int = 10,
                        seed: int = 0) -> dict[int, LatentExamples]:
    """Examples of `features` (or of `n_latents` eligible latents sampled with `seed`) from a store's windows;
    `encode` maps activations [B, S, d] to SAE codes, `token_text` an id to its display string."""
    cfg = cfg or StoreExampleConfig()
    store = ActivationStore.open(store_dir)
    if features is None:
        fires_WF, _ = _codes(store, encode, cfg, lambda z: (z > 0).any(1))
        quarter = max(1, len(fires_WF) // 4)  # a small store: ask for what a quarter of its windows can give
        ok = eligible_latents(fires_WF, min(cfg.min_windows, quarter), min(cfg.examples.n_random, quarter))
        if not ok:
            raise InterplabError(f"no latent fires in {cfg.min_windows} of the store's {len(fires_WF)} windows "
                                 "and stays silent in enough others; cache more tokens or lower min_windows")
        features = sorted(random.Random(seed).sample(ok, min(n_latents, len(ok))))
    index = torch.tensor(list(features), dtype=torch.long)
    codes_WSN, ids_WS = _codes(store, encode, cfg, lambda z: z[..., index])
    tokens = [[token_text(int(t)) for t in row] for row in ids_WS]
    return {f: examples_for_latent(tokens, codes_WSN[..., n].clone(), cfg.examples) for n, f in enumerate(features)}
