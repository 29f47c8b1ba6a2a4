"""The two scans over an activation store that collect everything a dashboard shows.

1. `batches`: the store's rows in order, a few at a time ([R, T, D] activations, R·T ≈ batch_tokens),
   each with its global row index; `max_tokens` stops after whole rows.
2. `scan_top` (pass 1): encode each batch's kept tokens (real ones the store's exclusion rule keeps: no
   padding, no attention sinks) on the device, to latents [N, F] or, for TopK SAEs, to their k
   (value, latent) pairs per token (batch_latents.py); take the per-row peaks, add them to the
   streaming top-k (top_contexts.py) and the maxima; keep the token ids. Sparse codes are also kept
   in memory (`CodeCache`) while they fit `cfg.code_cache_mb`.
3. `scan_quantiles` (pass 2, needs pass 1's maxima): firing counts and sums, histogram of positive
   activations and seeded reservoir samples per activation bucket (quantiles.py). It reads pass 1's
   codes when they were all kept (no store read, no encoder), else the store again.
Both passes see the same batches in the same order, and the encoder is deterministic, so they are
too: a resumed build recomputes them and gets the same numbers. Only kept tokens are encoded, so no
top or quantile example ever peaks on an excluded position; contexts still show excluded tokens (activation 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.activations.store import ActivationStore
from interplab.dashboards.batch_latents import BatchLatents, SparseBatchLatents
from interplab.dashboards.config import DashboardConfig
from interplab.dashboards.quantiles import Histogram, QuantileSampler
from interplab.dashboards.top_contexts import NEG_INF, Batch, LatentStats, TopKTracker, window_len

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "scan 1/2", "scan 2/2" or "write"."""

Encode = Callable[[Tensor], "Tensor | tuple[Tensor, Tensor]"]
"""[N, D] activations -> [N, F] latents, or (values [N, k] >= 0, latent indices [N, k]) for TopK SAEs."""


@dataclass
class StoreBatch:
    """R consecutive rows of the store."""

    rows_R: Tensor
    """Global row (sequence) indices."""
    tokens_RT: Tensor
    mask_RT: Tensor
    """Real tokens (shown in contexts)."""
    keep_RT: Tensor
    """Real tokens the store's exclusion rule keeps (encoded)."""
    acts_RTD: Tensor


@dataclass
class CodeCache:
    """Pass 1's sparse codes per batch (rows, kept-token mask, values, int32 latents), for pass 2."""

    budget_bytes: int
    batches: list[tuple[Tensor, Tensor, Tensor, Tensor]]
    bytes: int = 0
    complete: bool = True
    """False once a batch was dense or the budget ran out (pass 2 then reads the store)."""

    def add(self, batch: Batch, store_batch: StoreBatch) -> None:
        if not self.complete:
            return
        if not isinstance(batch, SparseBatchLatents):
            self.drop()
            return
        idx = batch.idx_NK.to(torch.int32)
        self.bytes += batch.values_NK.nbytes + idx.nbytes + store_batch.keep_RT.nbytes
        if self.bytes > self.budget_bytes:
            self.drop()
            return
        self.batches.append((store_batch.rows_R, store_batch.keep_RT, batch.values_NK, idx))

    def drop(self) -> None:
        self.batches, self.complete = [], False

    def replay(self, n_latents: int, device: torch.device) -> Iterator[SparseBatchLatents]:
        for rows_R, keep_RT, values_NK, idx_NK in self.batches:
            yield SparseBatchLatents.of(values_NK, idx_NK.long(), n_latents, keep_RT.to(device), rows_R)


@dataclass
class TopScan:
    """What pass 1 collects."""

    stats: LatentStats
    top: TopKTracker
    tokens_NT: Tensor
    """[n_rows, T] token ids of the scanned rows (CPU), to decode contexts."""
    mask_NT: Tensor
    """[n_rows, T] real-token mask of the scanned rows (CPU)."""
    codes: CodeCache | None = None
    """Pass 1's sparse codes, when every batch's fitted (None after a checkpoint load)."""


def n_rows_to_scan(store: ActivationStore, max_tokens: int | None) -> int:
    """Rows read: all, or enough whole rows to cover max_tokens positions."""
    h = store.manifest.header
    return h.n_seq if max_tokens is None else min(h.n_seq, -(-max_tokens // h.context_size))


def batches(store: ActivationStore, cfg: DashboardConfig) -> Iterator[StoreBatch]:
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
            yield StoreBatch(torch.arange(first + r0, first + r1), shard.tokens[r0:r1], shard.mask[r0:r1],
                        shard.keep[r0:r1], shard.acts[r0:r1])
        first += len(shard.tokens)


def _encode_batch(encode: Encode, batch: StoreBatch, n_latents: int, device: torch.device) -> Batch:
    """The batch's kept tokens encoded on the device. Only those are encoded: encoder stores hold one
    padded document per row, often mostly padding, and a sink must never be a latent's top example."""
    keep_RT = batch.keep_RT.to(device)
    with torch.no_grad():
        out = encode(batch.acts_RTD.to(device)[keep_RT])
    if isinstance(out, tuple):
        return SparseBatchLatents.of(out[0], out[1], n_latents, keep_RT, batch.rows_R)
    return BatchLatents.of(out, keep_RT, batch.rows_R)


def scan_top(store: ActivationStore, encode: Encode, n_latents: int, cfg: DashboardConfig,
             device: torch.device, progress: ProgressFn | None = None) -> TopScan:
    """Pass 1: streaming top-k contexts and the maximum of every latent."""
    ctx = store.manifest.header.context_size
    stats = LatentStats.zeros(n_latents, device)
    top = TopKTracker(n_latents, cfg.top_k, torch.arange(n_latents), window_len(ctx, cfg.window), device)
    codes = CodeCache(cfg.code_cache_mb << 20, [])
    tokens, masks, done, total = [], [], 0, n_rows_to_scan(store, cfg.max_tokens) * ctx
    for batch in batches(store, cfg):
        enc = _encode_batch(encode, batch, n_latents, device)
        codes.add(enc, batch)
        values_FR = enc.row_peaks()
        stats.add_max(enc)
        top.update(values_FR.masked_fill(values_FR <= 0, NEG_INF), values_FR, enc)
        tokens.append(batch.tokens_RT.to(torch.int32))
        masks.append(batch.mask_RT)
        done += batch.tokens_RT.numel()
        if progress is not None:
            progress("scan 1/2", done, total)
    if not tokens:
        tokens, masks = [torch.zeros(0, ctx, dtype=torch.int32)], [torch.zeros(0, ctx, dtype=torch.bool)]
    return TopScan(stats, top.sort_(), torch.cat(tokens), torch.cat(masks), codes if codes.complete else None)


def _pass2_batches(store: ActivationStore, encode: Encode, n_latents: int, cfg: DashboardConfig,
                   device: torch.device, codes: CodeCache | None) -> Iterator[tuple[Batch, int]]:
    """Pass 2's encoded batches with their token positions: from pass 1's codes, else from the store."""
    if codes is not None and codes.complete:
        for enc in codes.replay(n_latents, device):
            yield enc, len(enc.rows_R) * enc.n_cols
        return
    for batch in batches(store, cfg):
        yield _encode_batch(encode, batch, n_latents, device), batch.tokens_RT.numel()


def scan_quantiles(store: ActivationStore, encode: Encode, stats: LatentStats, cfg: DashboardConfig,
                   device: torch.device, progress: ProgressFn | None = None,
                   codes: CodeCache | None = None) -> tuple[Histogram, QuantileSampler]:
    """Pass 2, given pass 1's maxima in `stats`: histograms over (0, max], seeded quantile samples,
    and the firing counts and sums (written into `stats`, from zero: calling it again is harmless).
    `codes`: pass 1's codes (`TopScan.codes`), read instead of the store when given."""
    ctx = store.manifest.header.context_size
    stats.count_F.zero_()
    stats.sum_F.zero_()
    max_F = torch.where(torch.isfinite(stats.max_F), stats.max_F, torch.zeros_like(stats.max_F))
    hist = Histogram(max_F, cfg.n_bins)
    sampler = QuantileSampler(max_F, cfg.n_buckets, cfg.samples_per_bucket, window_len(ctx, cfg.window), cfg.seed)
    done, total = 0, n_rows_to_scan(store, cfg.max_tokens) * ctx
    for enc, n_positions in _pass2_batches(store, encode, len(max_F), cfg, device, codes):
        lat_P, values_P = enc.positives()
        hist.add(lat_P, values_P)
        stats.add_firing(lat_P, values_P)
        sampler.update(enc.row_peaks(), enc)
        done += n_positions
        if progress is not None:
            progress("scan 2/2", done, total)
    sampler.tracker.sort_()
    return hist, sampler
