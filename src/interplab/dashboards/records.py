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
    rows: list[list[int]]
    pos: list[list[int]]
    start: list[list[int]]
    ctx: Tensor
    """[G, k, L] float64 on CPU, rounded to 4 decimals."""

    @classmethod
    def of(cls, tracker: TopKTracker, groups: slice) -> _Kept:
        return cls(torch.isfinite(tracker.scores_GK[groups]).cpu().tolist(),
                   tracker.values_GK[groups].cpu().tolist(), tracker.rows_GK[groups].cpu().tolist(),
                   tracker.pos_GK[groups].cpu().tolist(), tracker.start_GK[groups].cpu().tolist(),
                   tracker.ctx_GKL[groups].cpu().double().round(decimals=4))


def _examples(kept: _Kept, groups: range, scan: TopScan, token_text: TokenText, kind: str, latent: int,
              label_of: list[str | None]) -> list[ExampleRecord]:
    """Records of the non-empty entries of `groups` (indices into `kept`) for one latent."""
    length, context = kept.ctx.shape[2], scan.tokens_NT.shape[1]
    found = []
    for i, g in enumerate(groups):
        for j, ok in enumerate(kept.finite[g]):
            if not ok:
                continue
            row, s = kept.rows[g][j], kept.start[g][j]
            keep = scan.mask_NT[row, s:s + length]
            ids = scan.tokens_NT[row, s:s + length][keep].tolist()
            found.append((label_of[i], kept.values[g][j], ExampleRecord(
                idx=latent, kind=kind, rank=0, max_act=kept.values[g][j], tokens=[token_text(t) for t in ids],
                acts=kept.ctx[g, j][keep].tolist(), token_ids=ids, position=row * context + kept.pos[g][j],
                bucket=label_of[i])))
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
    top = _Kept.of(scan.top, slice(first, first + n))
    quant = _Kept.of(sampler.tracker, slice(first * nb, (first + n) * nb))
    out: list[ExampleRecord] = []
    for i in range(n):
        out += _examples(top, range(i, i + 1), scan, token_text, "top", first + i, [None])
        out += _examples(quant, range(i * nb, (i + 1) * nb), scan, token_text, "quantile", first + i, labels)
    return out


def clean_max(max_F: Tensor) -> Tensor:
    """Maxima with -inf (never any token) replaced by 0."""
    return torch.where(torch.isfinite(max_F), max_F, torch.zeros_like(max_F))
