"""Database rows for a range of latents, from the scans' results.

1. Statistics (frequency, max, mean over firing tokens, histogram) are read from the per-latent tensors.
2. Each kept context becomes an `ExampleRecord`: the window of token ids around the peak (padding
   dropped), each token decoded on its own, the latent's activations over the window rounded to 4
   decimals (display precision; the peak `max_act` keeps full precision), and the peak's position
   row · context_size + token in the store.
3. Top examples are ranked by activation; quantile samples by bucket (highest first), then activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.dashboards.logits import TokenText
from interplab.dashboards.quantiles import Histogram, QuantileSampler, bucket_label
from interplab.dashboards.scan import TopScan
from interplab.dashboards.topk import TopKTracker
from interplab.web.db import ExampleRecord, FeatureRecord


@dataclass
class LatentExtras:
    """Per-latent lists computed outside the scans, aligned with the latent range."""

    logits_pos: list[list[tuple[str, float]]]
    logits_neg: list[list[tuple[str, float]]]
    neighbours: list[list[tuple[int, float]]]


def feature_records(first: int, scan: TopScan, hist: Histogram, extras: LatentExtras) -> list[FeatureRecord]:
    """FeatureRecords for latents first, first + 1, ... (as many as `extras` holds)."""
    n = len(extras.neighbours)
    sl = slice(first, first + n)
    freq, mean = scan.stats.frequency_F[sl].tolist(), scan.stats.mean_F[sl].tolist()
    max_act = scan.stats.max_F[sl].clamp_min(0).tolist()
    counts = hist.counts_FB[sl].tolist()
    return [FeatureRecord(idx=first + i, frequency=freq[i], max_act=max_act[i], mean_act=mean[i],
                          hist_edges=hist.edges(first + i), hist_counts=counts[i],
                          logits_pos=extras.logits_pos[i], logits_neg=extras.logits_neg[i],
                          neighbours=extras.neighbours[i])
            for i in range(n)]


@dataclass
class _Kept:
    """A slice of a tracker's state as Python lists (one device -> host copy per write batch)."""

    finite: list[list[bool]]
    values: list[list[float]]
    positions: list[list[int]]
    """row · context_size + token of each peak."""
    ids: list[list[list[int]]]
    """Token ids of each window."""
    real: list[list[list[bool]]]
    """Real-token mask of each window."""
    acts: list[list[list[float]]]
    """Activations over each window, rounded to 4 decimals."""

    @classmethod
    def of(cls, tracker: TopKTracker, groups: slice, scan: TopScan) -> _Kept:
        rows_GK = tracker.rows_GK[groups].cpu().clamp_min(0)
        tok_GKL = tracker.start_GK[groups].cpu()[:, :, None] + torch.arange(tracker.length)
        context = scan.tokens_NT.shape[1]
        return cls(torch.isfinite(tracker.scores_GK[groups]).cpu().tolist(), tracker.values_GK[groups].cpu().tolist(),
                   (rows_GK * context + tracker.pos_GK[groups].cpu()).tolist(),
                   scan.tokens_NT[rows_GK[:, :, None], tok_GKL].tolist(),
                   scan.mask_NT[rows_GK[:, :, None], tok_GKL].tolist(),
                   tracker.ctx_GKL[groups].cpu().double().round(decimals=4).tolist())


def _examples(kept: _Kept, groups: range, token_text: TokenText, kind: str, latent: int,
              label_of: list[str | None]) -> list[ExampleRecord]:
    """Records of the non-empty entries of `groups` (indices into `kept`) for one latent."""
    found = []
    for i, g in enumerate(groups):
        for j, ok in enumerate(kept.finite[g]):
            if not ok:
                continue
            ids, acts, real = kept.ids[g][j], kept.acts[g][j], kept.real[g][j]
            if not all(real):  # drop padding
                ids = [t for t, r in zip(ids, real, strict=True) if r]
                acts = [a for a, r in zip(acts, real, strict=True) if r]
            found.append((label_of[i], kept.values[g][j], ExampleRecord(
                idx=latent, kind=kind, rank=0, max_act=kept.values[g][j], tokens=[token_text(t) for t in ids],
                acts=acts, token_ids=ids, position=kept.positions[g][j], bucket=label_of[i])))
    if kind == "quantile":  # highest bucket first, then by activation; labels sort like numbers
        found.sort(key=lambda item: (item[0] or "", item[1]), reverse=True)
    for rank, (_, _, rec) in enumerate(found):
        rec.rank = rank
    return [rec for _, _, rec in found]


def example_records(first: int, n: int, scan: TopScan, sampler: QuantileSampler,
                    token_text: TokenText) -> list[ExampleRecord]:
    """Top and quantile ExampleRecords of latents first .. first + n - 1."""
    nb = sampler.n_buckets
    labels: list[str | None] = [bucket_label(b, nb) for b in range(nb)]
    top = _Kept.of(scan.top, slice(first, first + n), scan)
    quant = _Kept.of(sampler.tracker, slice(first * nb, (first + n) * nb), scan)
    out: list[ExampleRecord] = []
    for i in range(n):
        out += _examples(top, range(i, i + 1), token_text, "top", first + i, [None])
        out += _examples(quant, range(i * nb, (i + 1) * nb), token_text, "quantile", first + i, labels)
    return out


def clean_max(max_F: Tensor) -> Tensor:
    """Maxima with -inf (never any token) replaced by 0."""
    return torch.where(torch.isfinite(max_F), max_F, torch.zeros_like(max_F))
