"""Meta-SAEs: decompose an SAE's latents into meta-latents (Bussmann, Pearce, Leask, Bloom, Sharkey &
Nanda 2024, "Showing SAE Latents Are Not Atomic Using Meta-SAEs", https://www.lesswrong.com/posts/TMAmHh4DdMr4nCSr5).

1. Data: the base SAE's decoder rows, scaled to unit norm [d_sae, d_in] (one "sample" per latent).
2. Train a BatchTopK SAE on them (`k` meta-latents per row on average, `d_meta` meta-latents),
   with the ordinary trainer on shuffled batches of rows.
3. Per base latent: the meta-latents that fire on its decoder row, strongest first. Two latents that
   share a meta-latent share a component ("starts with S" in both ' short' and ' snake'), which is
   what absorption and feature splitting leave behind.
4. Links: for latent i, the latents j sharing most meta-latent weight with it,
   score(i, j) = Σ_{m shared} min(a_im, a_jm).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.saes import SAE, make_sae, sae_config
from interplab.training import TrainConfig, fit


@dataclass
class MetaSAEConfig:
    """How the meta-SAE is trained."""

    d_meta: int | None = None
    """Meta-latents; None: d_sae // 4 (at least 2)."""
    k: int = 4
    """Meta-latents per decoder row on average (BatchTopK)."""
    steps: int = 2000
    """Training steps."""
    batch_size: int = 1024
    """Decoder rows per batch (capped at d_sae)."""
    lr: float = 1e-3
    """Adam learning rate."""
    seed: int = 0
    """Seed of the meta-SAE and of the row order."""


class MetaLatents(NamedTuple):
    """Each base latent's meta-latents."""

    meta_sae: SAE
    """The trained meta-SAE (d_in = base d_in, d_sae = d_meta)."""
    values_FK: Tensor
    """[d_sae, k_max] activations of each latent's strongest meta-latents (0 = none)."""
    indices_FK: Tensor
    """[d_sae, k_max] their meta-latent indices."""
    fvu: float
    """Fraction of the unit decoder rows' variance the meta-SAE leaves unexplained."""


def _unit_rows(sae: Any) -> Tensor:
    w_FD = sae.W_dec.detach().float().cpu()
    return w_FD / w_FD.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _row_batches(rows_FD: Tensor, batch_size: int, seed: int) -> Iterator[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield rows_FD[torch.randperm(len(rows_FD), generator=gen)[:batch_size]]


def train_meta_sae(sae: Any, cfg: MetaSAEConfig | None = None) -> MetaLatents:
    """Train a meta-SAE on `sae`'s decoder rows and encode every row (steps 1-3 of the docstring)."""
    cfg = cfg or MetaSAEConfig()
    rows_FD = _unit_rows(sae)
    n_rows, d_in = rows_FD.shape
    d_meta = cfg.d_meta or max(2, n_rows // 4)
    if not 0 < cfg.k <= d_meta:
        raise InterplabError(f"meta-SAE needs 0 < k <= d_meta, got k={cfg.k}, d_meta={d_meta}")
    meta = make_sae(sae_config("batchtopk", d_in=d_in, d_sae=d_meta, k=cfg.k, seed=cfg.seed,
                               metadata={"meta_sae_of": dict(sae.cfg.metadata)}))
    batch = min(cfg.batch_size, n_rows)
    fit(meta, _row_batches(rows_FD, batch, cfg.seed),
        TrainConfig(total_steps=cfg.steps, batch_size=batch, lr=cfg.lr, b_dec_init="mean", seed=cfg.seed,
                    log_every=max(1, cfg.steps // 10), dead_after_tokens=20 * n_rows, device="cpu"))
    with torch.no_grad():
        z_FM = meta.encode(rows_FD)
        err = (meta.decode(z_FM) - rows_FD).pow(2).sum()
        fvu = float(err / (rows_FD - rows_FD.mean(0)).pow(2).sum().clamp_min(1e-12))
    k_max = min(d_meta, max(1, int((z_FM > 0).sum(1).max())))
    values_FK, indices_FK = z_FM.topk(k_max, dim=1)
    return MetaLatents(meta, values_FK.clamp_min(0), indices_FK, fvu)


def meta_of(result: MetaLatents, latent: int) -> list[tuple[int, float]]:
    """(meta-latent, activation) pairs of one base latent, strongest first."""
    return [(int(m), float(v)) for v, m in zip(result.values_FK[latent], result.indices_FK[latent], strict=True)
            if v > 0]


def shared_links(result: MetaLatents, top_n: int = 10) -> list[list[tuple[int, float]]]:
    """For every base latent, up to `top_n` (other latent, score) sharing meta-latents, best first."""
    by_meta: dict[int, list[tuple[int, float]]] = {}
    codes = [meta_of(result, i) for i in range(len(result.values_FK))]
    for i, code in enumerate(codes):
        for m, v in code:
            by_meta.setdefault(m, []).append((i, v))
    links = []
    for i, code in enumerate(codes):
        score: dict[int, float] = {}
        for m, v in code:
            for j, w in by_meta[m]:
                if j != i:
                    score[j] = score.get(j, 0.0) + min(v, w)
        links.append(sorted(score.items(), key=lambda t: (-t[1], t[0]))[:top_n])
    return links
