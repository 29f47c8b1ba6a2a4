"""Activation-density histograms and quantile samples, in a second pass over the store.

Why a second pass: both need each latent's maximum activation. With it known (from the first pass)
the bins are fixed for the whole scan, so histogram counts are exact (they sum to the firing counts)
and identical in a resumed build. Bins that follow a running maximum would have to be merged each
time the maximum grows, blurring the low end of the histogram. The store is on disk, so reading it
twice costs one more encoder pass and no memory.

Histogram (per latent, bins over (0, max]):
1. The positive entries of the batch, as (latent, value) pairs (sparse: TopK SAEs fire k per token);
   the firing counts and sums are bincounts of the same pairs.
2. For each: bin = min(floor(v / max · n_bins), n_bins - 1); one `bincount` over
   latent · n_bins + bin adds the whole batch.

Quantile samples (per latent, buckets [i/B · max, (i+1)/B · max) of the row peak, i < B):
1. Each (latent, row) whose peak is > 0 falls in one bucket.
2. Reservoir sampling as bottom-s by random key: each (seed, latent, row) gets a pseudo-random key
   from an integer hash; the s rows with the smallest keys in a (latent, bucket) are a uniform sample
   without replacement of the rows in that bucket, whatever the batch order. Keeping the s smallest
   keys is a streaming top-k (topk.TopKTracker with score = -key), so it is exact, mergeable and
   reproducible for a given seed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interplab.dashboards.top_contexts import NEG_INF, Batch, TopKTracker

_MASK31 = 0x7FFFFFFF


def hash_keys(latents_F: Tensor, rows_R: Tensor, seed: int) -> Tensor:
    """[F, R] pseudo-random keys in [0, 1) from (seed, latent, row): a few multiply-xorshift rounds
    kept in 31 bits, so int64 products never overflow and every device gives the same keys."""
    x_FR = (latents_F[:, None] * 0x2C1B3C6D + rows_R[None, :] * 0x297A2D39 + seed * 0x165667B1) & _MASK31
    for mult in (0x45D9F3B, 0x3243F6A9, 0x1B873593):
        x_FR = ((x_FR ^ (x_FR >> 15)) * mult) & _MASK31
    x_FR = x_FR ^ (x_FR >> 13)
    return x_FR.double() / float(_MASK31 + 1)


def bucket_label(i: int, n_buckets: int) -> str:
    """'0.20-0.40': the interval as fractions of the latent's max activation."""
    return f"{i / n_buckets:.2f}-{(i + 1) / n_buckets:.2f}"


def bucket_of(values_FR: Tensor, max_F: Tensor, n_buckets: int) -> Tensor:
    """[F, R] bucket index of each row peak; peaks <= 0 get -1 (no bucket)."""
    frac_FR = values_FR / max_F[:, None].clamp_min(torch.finfo(torch.float32).tiny)
    bucket_FR = (frac_FR * n_buckets).floor().clamp(0, n_buckets - 1).long()
    return torch.where(values_FR > 0, bucket_FR, torch.full_like(bucket_FR, -1))


class Histogram:
    """Per-latent counts of positive activations over fixed bins (0, max_F]."""

    def __init__(self, max_F: Tensor, n_bins: int):
        self.n_bins = n_bins
        self.max_F = max_F.float().clamp_min(0)
        self.counts_FB = torch.zeros(len(max_F), n_bins, dtype=torch.long, device=max_F.device)

    def add(self, lat_P: Tensor, values_P: Tensor) -> None:
        """Add a batch's positive entries, as latent indices and values [P]."""
        if not len(lat_P):
            return
        scale = self.max_F[lat_P].clamp_min(torch.finfo(torch.float32).tiny)
        bins = (values_P.float() / scale * self.n_bins).floor().long().clamp(0, self.n_bins - 1)
        flat = torch.bincount(lat_P * self.n_bins + bins, minlength=self.counts_FB.numel())
        self.counts_FB += flat.view_as(self.counts_FB)

    def edges(self, f: int) -> list[float]:
        """The n_bins + 1 bin edges of latent f."""
        top = float(self.max_F[f])
        return [top * i / self.n_bins for i in range(self.n_bins + 1)]


class QuantileSampler:
    """Seeded reservoir samples of context rows per (latent, activation bucket)."""

    def __init__(self, max_F: Tensor, n_buckets: int, per_bucket: int, length: int, seed: int):
        n_latents, device = len(max_F), max_F.device
        self.max_F, self.n_buckets, self.seed = max_F.float(), n_buckets, seed
        self.latent_ids_F = torch.arange(n_latents, device=device)
        latent_of_group = self.latent_ids_F.repeat_interleave(n_buckets)
        # float64 scores: the keys have 31 random bits, more than float32 holds (no ties between keys)
        self.tracker = TopKTracker(n_latents * n_buckets, per_bucket, latent_of_group, length, device,
                                   score_dtype=torch.float64)

    def update(self, values_FR: Tensor, batch: Batch) -> None:
        """Offer a batch's rows (their peaks `values_FR`, from `batch.row_peaks()`) to every bucket."""
        n_lat, n_rows = values_FR.shape
        bucket_FR = bucket_of(values_FR, self.max_F, self.n_buckets)
        score_FR = -hash_keys(self.latent_ids_F, batch.rows_R, self.seed)
        slots_BF1 = torch.arange(self.n_buckets, device=values_FR.device)[None, :, None]
        score_FBR = torch.where(bucket_FR[:, None, :] == slots_BF1, score_FR[:, None, :],
                                torch.full((), NEG_INF, dtype=score_FR.dtype, device=values_FR.device))
        self.tracker.update(score_FBR.reshape(n_lat * self.n_buckets, n_rows), values_FR, batch)
