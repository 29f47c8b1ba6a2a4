"""Database rows for a range of latents, from the scans' results.

1. Statistics (frequency, max, mean over firing tokens, histogram) are read from the per-latent tensors.
2. Each kept context becomes an `ExampleRecord`: the window of token ids around the peak (padding
   dropped), each id's display string (models/tokens.py), the latent's activations over the window rounded to 4
   decimals (display precision; the peak `max_act` keeps full precision), and the peak's position
   row · context_size + token in the store.
3. Top examples are ranked by activation; quantile samples by bucket (highest first), then activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplab.dashboards.db import ExampleRecord, FeatureRecord
from interplab.dashboards.quantiles import Histogram, QuantileSampler, bucket_label
from interplab.dashboards.scan import TopScan
from interplab.dashboards.top_contexts import TopKTracker
from interplab.models.tokens import TokenText


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


Entry = tuple[int, float, int, list[int], list[str], list[float]]
"""(group offset, peak activation, position, token ids, token strings, activations) of one kept context."""


def _entries(tracker: TopKTracker, groups: slice, scan: TopScan, token_text: TokenText) -> list[Entry]:
    """The kept (finite-score) contexts of a slice of groups, in (group, rank) order, padding dropped.

    One device -> host copy per tensor for the whole slice; the windows are gathered as [M, L] tensors.
    """
    g_M, j_M = torch.isfinite(tracker.scores_GK[groups]).nonzero(as_tuple=True)
    if not len(g_M):
        return []
    g_abs = g_M + (groups.start or 0)
    rows_M = tracker.rows_GK[g_abs, j_M].cpu()
    start_M, pos_M = tracker.start_GK[g_abs, j_M].cpu(), tracker.pos_GK[g_abs, j_M].cpu()
    tok_ML = start_M[:, None] + torch.arange(tracker.length)
    ids_ML, real_ML = scan.tokens_NT[rows_M[:, None], tok_ML], scan.mask_NT[rows_M[:, None], tok_ML]
    acts_ML = tracker.ctx_GKL[g_abs, j_M].cpu().double().round(decimals=4)
    # one flat copy of the real tokens, split per context (cheaper than copying padding, then dropping it)
    ends = real_ML.sum(1).cumsum(0).tolist()
    flat_ids, flat_acts = ids_ML[real_ML].tolist(), acts_ML[real_ML].tolist()
    texts_of = {i: token_text(i) for i in set(flat_ids)}  # each distinct id decoded once per batch
    flat_text = list(map(texts_of.__getitem__, flat_ids))
    spans = list(zip([0, *ends[:-1]], ends, strict=True))
    ids, texts = [flat_ids[a:b] for a, b in spans], [flat_text[a:b] for a, b in spans]
    acts = [flat_acts[a:b] for a, b in spans]
    positions = (rows_M * scan.tokens_NT.shape[1] + pos_M).tolist()
    values = tracker.values_GK[g_abs, j_M].cpu().tolist()
    return list(zip(g_M.tolist(), values, positions, ids, texts, acts, strict=True))


def example_records(first: int, n: int, scan: TopScan, sampler: QuantileSampler,
                    token_text: TokenText) -> list[ExampleRecord]:
    """Top and quantile ExampleRecords of latents first .. first + n - 1."""
    nb = sampler.n_buckets
    labels = [bucket_label(b, nb) for b in range(nb)]
    per_latent: list[list[ExampleRecord]] = [[] for _ in range(n)]
    for i, value, position, ids, texts, acts in _entries(scan.top, slice(first, first + n), scan, token_text):
        per_latent[i].append(ExampleRecord(idx=first + i, kind="top", rank=len(per_latent[i]), max_act=value,
                                           tokens=texts, acts=acts, token_ids=ids, position=position))
    quantile: list[list[tuple[int, float, ExampleRecord]]] = [[] for _ in range(n)]
    groups = slice(first * nb, (first + n) * nb)
    for g, value, position, ids, texts, acts in _entries(sampler.tracker, groups, scan, token_text):
        i, b = divmod(g, nb)
        quantile[i].append((b, value, ExampleRecord(idx=first + i, kind="quantile", rank=0, max_act=value,
                                                    tokens=texts, acts=acts, token_ids=ids, position=position,
                                                    bucket=labels[b])))
    out: list[ExampleRecord] = []
    for top, samples in zip(per_latent, quantile, strict=True):
        samples.sort(key=lambda item: (item[0], item[1]), reverse=True)  # highest bucket, then activation
        for rank, (_, _, rec) in enumerate(samples):
            rec.rank = rank
        out += top + [rec for _, _, rec in samples]
    return out
