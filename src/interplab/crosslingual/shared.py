"""Which SAE latents fire on the same concept across languages, by layer (the shared-latent fraction).

Per layer:
1. Train a TopK SAE (interplab.saes, `training.fit`) on the token activations of all languages together.
2. Per latent, language and verse: the latent's largest activation over the verse's tokens, a[f, lang, v].
3. A latent is alive when it fires on at least `min_verse_fraction` of the verses in some language, and
   language-specific when at least `specific_share` of its total activation falls in one language.
4. A latent is shared when it fires on at least `min_verse_fraction` of the verses in every language and,
   for every pair of languages, its per-verse activations correlate (Pearson, across verses) above the
   null: the `null_quantile` quantile of the same correlations with one language's verses shuffled
   (the same latent on unrelated verses). Shared fraction = shared / alive.
This follows the question of multilingual-feature studies (e.g. Brinkmann et al. 2025, "Large Language
Models Share Representations of Latent Grammatical Concepts Across Typologically Diverse Languages",
https://arxiv.org/abs/2501.06346) with verse alignment as the ground truth of "same content".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import torch
from torch import Tensor

from interplab.crosslingual.activations import VerseActivations
from interplab.saes import SAE, make_sae, sae_config
from interplab.training import TrainConfig, fit


@dataclass
class SharedLatentConfig:
    """The per-layer SAEs and the tests for shared latents."""

    d_sae: int = 1024
    """Latents per SAE."""
    k: int = 16
    """Active latents per token (TopK)."""
    steps: int = 600
    """SAE training steps."""
    batch_size: int = 512
    """Tokens per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    min_verse_fraction: float = 0.01
    """A latent counts as firing in a language when it fires on at least this share of the verses."""
    specific_share: float = 0.9
    """Share of a latent's activation in one language that makes it language-specific."""
    null_quantile: float = 0.99
    """Quantile of the shuffled-verse correlations a shared latent must beat, for each language pair."""
    seed: int = 0
    """Seed of the SAEs, batch draws and shuffles."""


def _batches(x_ND: Tensor, batch_size: int, seed: int) -> Iterator[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield x_ND[torch.randint(0, x_ND.shape[0], (batch_size,), generator=gen)]


def train_layer_sae(x_ND: Tensor, cfg: SharedLatentConfig, metadata: dict[str, Any]) -> SAE:
    """A TopK SAE on token activations [N, d] of every language."""
    sae = make_sae(sae_config("topk", d_in=x_ND.shape[1], d_sae=cfg.d_sae, k=cfg.k, seed=cfg.seed,
                              metadata=metadata))
    fit(sae, _batches(x_ND, cfg.batch_size, cfg.seed),
        TrainConfig(total_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, log_every=50))
    return sae


@torch.no_grad()
def verse_maxima(sae: SAE, acts: VerseActivations, layer: int) -> Tensor:
    """a[f, lang, v]: each latent's largest activation over each verse's tokens, per language."""
    n_lang, n_verse = len(acts.languages), acts.n_verses
    out = torch.zeros(sae.cfg.d_sae, n_lang * n_verse)
    x_ND = acts.acts[layer]
    group_N = acts.lang_N * n_verse + acts.verse_N
    for start in range(0, x_ND.shape[0], 4096):
        z_NF = sae.encode(x_ND[start:start + 4096].to(sae.device, sae.dtype)).float().cpu()
        index = group_N[start:start + 4096][None].expand(z_NF.shape[1], -1)
        out.scatter_reduce_(1, index, z_NF.T.contiguous(), reduce="amax")
    return out.view(sae.cfg.d_sae, n_lang, n_verse)


def _row_pearson(a_FV: Tensor, b_FV: Tensor) -> Tensor:
    a = a_FV - a_FV.mean(1, keepdim=True)
    b = b_FV - b_FV.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def shared_latents(maxima_FLV: Tensor, cfg: SharedLatentConfig) -> dict[str, Any]:
    """Counts of alive, shared and language-specific latents (steps 3 and 4 of the module docstring)."""
    fires_FL = (maxima_FLV > 0).float().mean(2) >= cfg.min_verse_fraction
    alive_F = fires_FL.any(1)
    mass_FL = maxima_FLV.sum(2)
    specific_F = alive_F & (mass_FL.max(1).values >= cfg.specific_share * mass_FL.sum(1).clamp_min(1e-12))
    gen = torch.Generator().manual_seed(cfg.seed)
    shared_F = alive_F & fires_FL.all(1)
    thresholds = {}
    for i, j in combinations(range(maxima_FLV.shape[1]), 2):
        real_F = _row_pearson(maxima_FLV[:, i], maxima_FLV[:, j])
        shuffled = maxima_FLV[:, j][:, torch.randperm(maxima_FLV.shape[2], generator=gen)]
        null_F = _row_pearson(maxima_FLV[:, i], shuffled)[alive_F]
        threshold = float(torch.quantile(null_F, cfg.null_quantile)) if null_F.numel() else 1.0
        thresholds[f"{i}-{j}"] = threshold
        shared_F &= real_F > threshold
    n_alive = int(alive_F.sum())
    return {"n_alive": n_alive, "n_shared": int(shared_F.sum()), "n_language_specific": int(specific_F.sum()),
            "shared_fraction": int(shared_F.sum()) / max(n_alive, 1),
            "specific_fraction": int(specific_F.sum()) / max(n_alive, 1),
            "null_thresholds": thresholds}


def shared_latent_table(acts: VerseActivations, cfg: SharedLatentConfig, model: str) -> list[dict[str, Any]]:
    """One row per layer: alive, shared and language-specific latents of that layer's SAE."""
    rows = []
    for layer in acts.layers:
        sae = train_layer_sae(acts.acts[layer], cfg, {"model_name": model, "hook_name": f"blocks.{layer}.resid_post"})
        counts = shared_latents(verse_maxima(sae, acts, layer), cfg)
        thresholds = counts.pop("null_thresholds")
        rows.append({"layer": layer, **counts, "mean_null_threshold": sum(thresholds.values()) / len(thresholds)})
    return rows
