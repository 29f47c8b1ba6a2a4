"""Streaming statistics equal their brute-force versions computed with everything in memory."""

from __future__ import annotations

import pytest
import torch

from interplab.activations import ActivationStore
from interplab.dashboards import DashboardConfig
from interplab.dashboards.batch_latents import BatchLatents, SparseBatchLatents
from interplab.dashboards.quantiles import bucket_of, hash_keys
from interplab.dashboards.scan import scan_quantiles, scan_top
from interplab.dashboards.top_contexts import TopKTracker, row_max
from interplab.saes import load_sae

CPU = torch.device("cpu")


def clean_max(max_F: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(max_F), max_F, torch.zeros_like(max_F))


def _all_latents(store: ActivationStore, sae) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(latents [n, T, F], keep [n, T], tokens [n, T]) of the whole store, in memory; latents are 0 on the
    positions the store leaves out (the scans never encode them)."""
    shards = list(store.iter_shards())
    acts = torch.cat([s.acts for s in shards]).float()
    keep = torch.cat([s.keep for s in shards])
    with torch.no_grad():
        latents = sae.encode(acts) * keep[..., None]
    return latents, keep, torch.cat([s.tokens for s in shards])


def _pairs(sae):
    def encode(x):
        values, idx = sae.encode_sparse(x)
        return values.float(), idx

    return encode


# (architecture, how the scans see the latents): dense [N, F]; TopK (value, latent) pairs read from
# the store twice; pairs with pass 1's codes kept for pass 2 (no second read)
SCAN_WAYS = [("relu", "dense"), ("topk", "dense"), ("topk", "pairs"), ("topk", "pairs-cached")]


@pytest.fixture(params=SCAN_WAYS, ids=["-".join(w) for w in SCAN_WAYS])
def scanned(request, gpt2_store, sae_factory, tmp_path):
    arch, way = request.param
    _, store_dir = gpt2_store
    store = ActivationStore.open(store_dir)
    sae = load_sae(sae_factory(tmp_path / "sae", 64, 48, x_norm=0.25, arch=arch))
    encode = sae.encode if way == "dense" else _pairs(sae)
    # 3 rows per batch: batches straddle nothing but are much smaller than a shard (8 rows)
    cfg = DashboardConfig(top_k=5, batch_tokens=48, window=3, n_buckets=4, samples_per_bucket=3, n_bins=8)
    top = scan_top(store, encode, sae.cfg.d_sae, cfg, CPU)
    assert (top.codes is not None) == way.startswith("pairs")  # the codes of a tiny store always fit
    codes = top.codes if way == "pairs-cached" else None
    hist, sampler = scan_quantiles(store, encode, top.stats, cfg, CPU, codes=codes)
    return store, sae, cfg, top, hist, sampler


def test_streaming_top_k_equals_brute_force_top_k_over_all_rows(scanned):
    store, sae, cfg, top, _, _ = scanned
    latents, mask, tokens = _all_latents(store, sae)
    peak_FN, pos_FN = row_max(latents, mask)
    want = peak_FN.topk(cfg.top_k, dim=1)
    fired = want.values > 0
    got = top.top
    assert torch.equal(torch.isfinite(got.scores_GK), fired)
    torch.testing.assert_close(got.values_GK[fired], want.values[fired])
    assert torch.equal(got.rows_GK[fired], want.indices[fired])
    assert torch.equal(got.pos_GK[fired], pos_FN.gather(1, want.indices)[fired])
    assert torch.equal(top.tokens_NT.long(), tokens)
    # each latent lists a context at most once
    for rows in got.rows_GK.tolist():
        kept = [r for r in rows if r >= 0]
        assert len(kept) == len(set(kept))
    # the window holds the latent's activations around the peak
    f, j = fired.nonzero()[0].tolist()
    row, start = int(got.rows_GK[f, j]), int(got.start_GK[f, j])
    torch.testing.assert_close(got.ctx_GKL[f, j], latents[row, start:start + got.length, f])


def test_firing_counts_sums_and_maxima_equal_brute_force(scanned):
    store, sae, _, top, _, _ = scanned
    latents, mask, _ = _all_latents(store, sae)
    real_NF = latents[mask]
    assert top.stats.n_tokens == store.n_tokens == len(real_NF)
    assert torch.equal(top.stats.count_F, (real_NF > 0).sum(0))
    torch.testing.assert_close(top.stats.sum_F.float(), real_NF.clamp_min(0).sum(0))
    torch.testing.assert_close(top.stats.max_F, real_NF.max(0).values)


def test_histogram_counts_sum_to_the_firing_counts(scanned):
    _, _, cfg, top, hist, _ = scanned
    assert hist.counts_FB.shape == (len(top.stats.count_F), cfg.n_bins)
    assert torch.equal(hist.counts_FB.sum(1), top.stats.count_F)
    f = int(top.stats.count_F.argmax())
    edges = hist.edges(f)
    assert len(edges) == cfg.n_bins + 1 and edges[0] == 0 and edges[-1] == pytest.approx(float(top.stats.max_F[f]))
    assert hist.counts_FB[f, -1] >= 1  # the maximum itself lands in the last bin


def test_quantile_samples_lie_inside_their_bucket_and_are_uniform_bottom_keys(scanned):
    store, sae, cfg, top, _, sampler = scanned
    latents, mask, _ = _all_latents(store, sae)
    peak_FN, _ = row_max(latents, mask)
    max_F = clean_max(top.stats.max_F)
    tr, nb = sampler.tracker, cfg.n_buckets
    n_checked = 0
    for f in range(len(max_F)):
        for b in range(nb):
            g = f * nb + b
            ok = torch.isfinite(tr.scores_GK[g])
            lo, hi = b / nb * float(max_F[f]), (b + 1) / nb * float(max_F[f])
            for v in tr.values_GK[g][ok].tolist():
                assert lo <= v <= hi + 1e-6 and v > 0
                n_checked += 1
            # the kept rows are those with the smallest keys among the rows of this bucket
            in_bucket = (bucket_of(peak_FN[f:f + 1], max_F[f:f + 1], nb)[0] == b).nonzero().flatten()
            keys = hash_keys(torch.tensor([f]), in_bucket, cfg.seed)[0]
            want = in_bucket[keys.argsort()[:cfg.samples_per_bucket]]
            assert sorted(tr.rows_GK[g][ok].tolist()) == sorted(want.tolist())
    assert n_checked > 100


def test_quantile_samples_are_reproducible_and_change_with_the_seed(gpt2_store, random_sae):
    _, store_dir = gpt2_store
    store, sae = ActivationStore.open(store_dir), load_sae(random_sae)
    stats = scan_top(store, sae.encode, sae.cfg.d_sae, DashboardConfig(), CPU).stats

    def rows(seed: int, batch_tokens: int) -> torch.Tensor:
        cfg = DashboardConfig(seed=seed, batch_tokens=batch_tokens, samples_per_bucket=2)
        return scan_quantiles(store, sae.encode, stats, cfg, CPU)[1].tracker.rows_GK

    first = rows(0, 64)
    assert torch.equal(first, rows(0, 64))
    assert torch.equal(first, rows(0, 160))  # the sample does not depend on how rows are batched
    assert not torch.equal(first, rows(1, 64))


def test_tracker_merges_batches_exactly_on_random_scores():
    gen = torch.Generator().manual_seed(0)
    n_lat, ctx, k = 7, 5, 4
    latents = torch.randn(30, ctx, n_lat, generator=gen)
    mask = torch.ones(30, ctx, dtype=torch.bool)
    tracker = TopKTracker(n_lat, k, torch.arange(n_lat), 3, CPU)
    for r0 in range(0, 30, 4):
        chunk = latents[r0:r0 + 4]
        values, _ = row_max(chunk, mask[r0:r0 + 4])
        batch = BatchLatents.of(chunk.reshape(-1, n_lat), mask[r0:r0 + 4], torch.arange(r0, min(r0 + 4, 30)))
        tracker.update(values, values, batch)
    peaks, pos = row_max(latents, mask)
    want = peaks.topk(k, dim=1)
    tracker.sort_()
    assert torch.equal(tracker.rows_GK, want.indices)
    assert torch.equal(tracker.values_GK, want.values)
    assert torch.equal(tracker.pos_GK, pos.gather(1, want.indices))


def test_sparse_pairs_answer_every_question_of_the_scans_like_the_dense_latents():
    gen = torch.Generator().manual_seed(1)
    n_rows, ctx, n_lat, k = 5, 6, 40, 3
    mask = torch.rand(n_rows, ctx, generator=gen) > 0.3
    n = int(mask.sum())
    values = torch.rand(n, k, generator=gen).masked_fill(torch.rand(n, k, generator=gen) < 0.2, 0.0)
    idx = torch.stack([torch.randperm(n_lat, generator=gen)[:k] for _ in range(n)])
    dense_NF = torch.zeros(n, n_lat).scatter(1, idx, values)
    rows = torch.arange(10, 10 + n_rows)
    dense, sparse = BatchLatents.of(dense_NF, mask, rows), SparseBatchLatents.of(values, idx, n_lat, mask, rows)
    assert torch.equal(sparse.row_peaks(), dense.row_peaks())
    assert torch.equal(sparse.latent_max(), dense.latent_max())
    lat_d, val_d = dense.positives()
    lat_s, val_s = sparse.positives()
    pairs_d = sorted(zip(lat_d.tolist(), val_d.tolist(), strict=True))
    assert pairs_d == sorted(zip(lat_s.tolist(), val_s.tolist(), strict=True))
    r_M, f_M = torch.tensor([0, 4, 2, 0, 3]), torch.tensor([7, 7, 39, 1, 0])  # distinct (row, latent) pairs
    assert torch.equal(sparse.winner_rows(r_M, f_M), dense.winner_rows(r_M, f_M))


def test_topk_dashboards_from_pairs_equal_those_from_dense_latents(gpt2_store, sae_factory, tmp_path):
    from interplab.dashboards.build import load_dictionary
    from interplab.dashboards.records import LatentExtras, example_records, feature_records
    from interplab.models.tokens import token_texts

    _, store_dir = gpt2_store
    store = ActivationStore.open(store_dir)
    sae_dir = sae_factory(tmp_path / "sae", 64, 48, x_norm=0.25, arch="topk")
    cfg = DashboardConfig(top_k=4, batch_tokens=64, window=2, n_buckets=3, samples_per_bucket=2, n_bins=6)
    built = []
    for pairs in (False, True):
        dic = load_dictionary(sae_dir, store, CPU, pairs=pairs)
        top = scan_top(store, dic.encode, dic.n_latents, cfg, CPU)
        hist, sampler = scan_quantiles(store, dic.encode, top.stats, cfg, CPU, codes=top.codes)
        empty = [[] for _ in range(dic.n_latents)]
        feats = feature_records(0, top, hist, LatentExtras(empty, empty, empty))
        built.append((feats, example_records(0, dic.n_latents, top, sampler, token_texts(None))))
    (dense_f, dense_e), (pair_f, pair_e) = built
    assert len(dense_e) > 50 and [e.idx for e in dense_e] == [e.idx for e in pair_e]
    for a, b in zip(dense_e, pair_e, strict=True):
        assert (a.kind, a.rank, a.bucket, a.position, a.token_ids) == (b.kind, b.rank, b.bucket, b.position, b.token_ids)
        assert a.max_act == pytest.approx(b.max_act, rel=1e-5) and a.acts == pytest.approx(b.acts, abs=2e-4)
    for a, b in zip(dense_f, pair_f, strict=True):
        assert (a.idx, a.frequency, a.hist_counts) == (b.idx, b.frequency, b.hist_counts)
        assert a.mean_act == pytest.approx(b.mean_act, rel=1e-5) and a.max_act == pytest.approx(b.max_act, rel=1e-5)
