"""The two scans over an activation store that collect everything a dashboard shows.

1. `batches`: the store's rows in order, a few at a time ([R, T, D] activations, R·T ≈ batch_tokens),
   each with its global row index; `max_tokens` stops after whole rows.
2. `scan_top` (pass 1): encode each batch to latents [R, T, F] on the device, take the per-row peak
   (topk.row_max), add it to the streaming top-k and the firing statistics; keep the token ids.
3. `scan_quantiles` (pass 2, needs pass 1's maxima): histogram of positive activations and seeded
   reservoir samples per activation bucket (quantiles.py).
Both passes read the store in the same order with the same batches, so they are deterministic: a
resumed build recomputes them and gets the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.activations.store import ActivationStore
from interplab.dashboards.config import DashboardConfig
from interplab.dashboards.quantiles import Histogram, QuantileSampler
from interplab.dashboards.topk import NEG_INF, LatentStats, TopKTracker, row_max, window_len

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "scan 1/2", "scan 2/2" or "write"."""

Encode = Callable[[Tensor], Tensor]
"""[N, D] activations -> [N, F] latents."""


@dataclass
class Batch:
    """R consecutive rows of the store."""

    rows_R: Tensor
    """Global row (sequence) indices."""
    tokens_RT: Tensor
    mask_RT: Tensor
    acts_RTD: Tensor


@dataclass
class TopScan:
    """What pass 1 collects."""

    stats: LatentStats
    top: TopKTracker
    tokens_NT: Tensor
    """[n_rows, T] token ids of the scanned rows (CPU), to decode contexts."""
    mask_NT: Tensor
    """[n_rows, T] real-token mask of the scanned rows (CPU)."""


def n_rows_to_scan(store: ActivationStore, max_tokens: int | None) -> int:
    """Rows read: all, or enough whole rows to cover max_tokens positions."""
    h = store.manifest.header
    return h.n_seq if max_tokens is None else min(h.n_seq, -(-max_tokens // h.context_size))


def batches(store: ActivationStore, cfg: DashboardConfig) -> Iterator[Batch]:
    """The rows to scan in store order, max(1, batch_tokens // context_size) rows at a time."""
    h = store.manifest.header
    per_batch = max(1, cfg.batch_tokens // h.context_size)
    limit = n_rows_to_scan(store, cfg.max_tokens)
    first = 0
    for index in range(store.n_shards):
        if first >= limit:
            return
        shard = store.load_shard(index)
        n = min(len(shard.tokens), limit - first)
        for r0 in range(0, n, per_batch):
            r1 = min(r0 + per_batch, n)
            yield Batch(torch.arange(first + r0, first + r1), shard.tokens[r0:r1], shard.mask[r0:r1],
                        shard.acts[r0:r1])
        first += len(shard.tokens)


def _encode_batch(encode: Encode, batch: Batch, device: torch.device) -> tuple[Tensor, Tensor]:
    """(latents [R, T, F] with 0 on padding, latents of the real tokens [N, F]) on the device.

    Only real tokens are encoded: encoder stores hold one padded document per row, often mostly
    padding. A 0 on padding never enters a top-k list (only peaks > 0 do), so no -inf mask is needed.
    """
    mask_RT = batch.mask_RT.to(device)
    with torch.no_grad():
        real_ND = batch.acts_RTD.to(device)[mask_RT]
        latents_NF = encode(real_ND)
    if len(latents_NF) == mask_RT.numel():  # no padding (packed causal-LM rows): a view, no copy
        return latents_NF.view(*mask_RT.shape, -1), latents_NF
    latents_RTF = latents_NF.new_zeros(*mask_RT.shape, latents_NF.shape[1])
    latents_RTF[mask_RT] = latents_NF
    return latents_RTF, latents_NF


def scan_top(store: ActivationStore, encode: Encode, n_latents: int, cfg: DashboardConfig,
             device: torch.device, progress: ProgressFn | None = None) -> TopScan:
    """Pass 1: streaming top-k contexts per latent, firing counts, sums and maxima."""
    ctx = store.manifest.header.context_size
    stats = LatentStats.zeros(n_latents, device)
    top = TopKTracker(n_latents, cfg.top_k, torch.arange(n_latents), window_len(ctx, cfg.window), device)
    tokens, masks, done, total = [], [], 0, n_rows_to_scan(store, cfg.max_tokens) * ctx
    for batch in batches(store, cfg):
        latents_RTF, latents_NF = _encode_batch(encode, batch, device)
        values_FR, pos_FR = row_max(latents_RTF)
        stats.update(latents_NF)
        scores_FR = torch.where(values_FR > 0, values_FR, torch.full((), NEG_INF, device=device))
        top.update(scores_FR, values_FR, pos_FR, batch.rows_R.to(device), latents_RTF)
        tokens.append(batch.tokens_RT.to(torch.int32))
        masks.append(batch.mask_RT)
        done += batch.tokens_RT.numel()
        if progress is not None:
            progress("scan 1/2", done, total)
    if not tokens:
        tokens, masks = [torch.zeros(0, ctx, dtype=torch.int32)], [torch.zeros(0, ctx, dtype=torch.bool)]
    return TopScan(stats, top.sort_(), torch.cat(tokens), torch.cat(masks))


def scan_quantiles(store: ActivationStore, encode: Encode, max_F: Tensor, cfg: DashboardConfig,
                   device: torch.device, progress: ProgressFn | None = None) -> tuple[Histogram, QuantileSampler]:
    """Pass 2: histograms over (0, max] and seeded quantile samples, given pass 1's maxima."""
    ctx = store.manifest.header.context_size
    hist = Histogram(max_F.to(device), cfg.n_bins)
    sampler = QuantileSampler(max_F.to(device), cfg.n_buckets, cfg.samples_per_bucket,
                              window_len(ctx, cfg.window), cfg.seed)
    done, total = 0, n_rows_to_scan(store, cfg.max_tokens) * ctx
    for batch in batches(store, cfg):
        latents_RTF, latents_NF = _encode_batch(encode, batch, device)
        values_FR, pos_FR = row_max(latents_RTF)
        hist.update(latents_NF)
        sampler.update(values_FR, pos_FR, batch.rows_R.to(device), latents_RTF)
        done += batch.tokens_RT.numel()
        if progress is not None:
            progress("scan 2/2", done, total)
    sampler.tracker.sort_()
    return hist, sampler
