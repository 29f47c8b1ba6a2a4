"""Meta-SAEs: latents built from shared components get linked through their meta-latents, in the
dashboards DB and on the feature page."""

from __future__ import annotations

import torch

from interplab.dashboards import DashboardDB, FeatureRecord, SaeRecord, add_meta_latents
from interplab.evals import MetaSAEConfig, meta_of, shared_links, train_meta_sae
from interplab.saes import make_sae, sae_config, save_sae
from interplab.web.app import create_app
from web_data import local_client

N_GROUPS, PER_GROUP, D = 6, 8, 32


def _composed_sae():
    """48 latents in 6 groups: decoder row = group component + a row-specific component, so latents of a
    group share one direction (as child latents share an absorbed parent)."""
    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(D, D, generator=gen)).Q.T  # orthonormal rows
    rows = []
    for g in range(N_GROUPS):
        for _ in range(PER_GROUP):
            rows.append(basis[g] + 0.6 * torch.randn(D, generator=gen) / D**0.5)
    sae = make_sae(sae_config("topk", d_in=D, d_sae=N_GROUPS * PER_GROUP, k=4))
    with torch.no_grad():
        sae.W_dec.copy_(torch.stack(rows))
    return sae


def _group(i: int) -> int:
    return i // PER_GROUP


def test_latents_sharing_a_component_share_meta_latents():
    result = train_meta_sae(_composed_sae(), MetaSAEConfig(d_meta=12, k=2, steps=400, lr=3e-3))
    assert result.fvu < 0.6
    links = shared_links(result, top_n=5)
    same = [sum(_group(j) == _group(i) for j, _ in links[i][:3]) / 3 for i in range(len(links)) if links[i]]
    assert len(same) > 40 and sum(same) / len(same) > 0.9
    assert all(v > 0 for i in range(10) for _, v in meta_of(result, i))


def test_feature_page_links_latents_sharing_meta_latents(tmp_path):
    sae = _composed_sae()
    save_sae(sae, tmp_path / "sae", metadata={"hook_name": "blocks.0.resid_post"})
    db_path = tmp_path / "d.db"
    db = DashboardDB(db_path)
    sae_id = db.upsert_sae(SaeRecord(name="composed", path=str(tmp_path / "sae"), model="none",
                                     hook="blocks.0.resid_post", d_in=D, d_sae=N_GROUPS * PER_GROUP, arch="topk"))
    db.write_latents(sae_id, [FeatureRecord(idx=i, frequency=0.1, max_act=1.0, mean_act=0.5, hist_edges=[0, 1],
                                            hist_counts=[1]) for i in range(N_GROUPS * PER_GROUP)], [])
    db.close()
    add_meta_latents(db_path, "composed", MetaSAEConfig(d_meta=12, k=2, steps=400, lr=3e-3), top_n=4)
    rec = DashboardDB(db_path).get_meta_latents(sae_id, 9)
    assert rec is not None and rec.metas and rec.shared
    html = local_client(create_app(db_path, device="cpu")).get(f"/sae/{sae_id}/feature/9").text
    assert "Shares meta-latents with" in html
    for j, _ in rec.shared:
        assert f'href="/sae/{sae_id}/feature/{j}"' in html
    assert sum(_group(j) == 1 for j, _ in rec.shared) >= 3  # latent 9 is in group 1
