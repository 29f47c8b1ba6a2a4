"""Dashboards on the real MiniLM (a sentence encoder: no unembedding, so no logit effects)."""

from __future__ import annotations

from interplab.dashboards import DashboardConfig, build_dashboards
from interplab.dashboards.db import DashboardDB


def test_minilm_store_builds_dashboards_with_decoded_wordpieces_and_no_logits(minilm, sae_factory, tmp_path):
    from interplab.activations import CacheConfig, cache_activations
    from interplab.data.corpus import load_demo_corpus

    store = tmp_path / "store"
    cache_activations(minilm, load_demo_corpus()[:16], "blocks.3.resid_post", store,
                      CacheConfig(context_size=32, batch_size=8, shard_tokens=256))
    sae = sae_factory(tmp_path / "sae", 384, 64, x_norm=8.0)
    db_path = tmp_path / "d.db"
    result = build_dashboards(sae, store, db_path, DashboardConfig(top_k=5, window=4), device="cpu")
    db = DashboardDB(db_path)
    (rec,) = db.list_saes()
    assert rec.model == "sentence-transformers/all-MiniLM-L6-v2" and result.written == 64
    fired = [f for f in db.list_features(result.sae_id, limit=64) if f.frequency > 0]
    assert len(fired) > 32
    feat = fired[0]
    assert feat.logits_pos == [] and feat.logits_neg == [] and len(feat.neighbours) == 10
    top = db.get_examples(result.sae_id, feat.idx, "top")
    assert top and all(len(e.tokens) <= 9 for e in top)
    assert not any(t in ("[PAD]",) for e in top for t in e.tokens)  # padding is dropped
    assert any(t.strip().isalpha() for e in top for t in e.tokens)
