"""Meta-latent links for the feature pages: train a meta-SAE on a dashboarded SAE's decoder rows
(evals/meta_sae.py) and store, per latent, its meta-latents and the latents sharing them."""

from __future__ import annotations

from pathlib import Path

from interplab.common import InterplabError
from interplab.dashboards.db import DashboardDB, MetaRecord
from interplab.evals import MetaLatents, MetaSAEConfig, meta_of, shared_links, train_meta_sae
from interplab.saes import load_sae


def add_meta_latents(db_url: str | Path, sae_name: str, cfg: MetaSAEConfig | None = None,
                     top_n: int = 10) -> MetaLatents:
    """Train a meta-SAE for the SAE named `sae_name` in the dashboards DB and write its links there."""
    db = DashboardDB(db_url, create=False)
    try:
        rec = db.get_sae_by_name(sae_name)
        if rec is None or rec.id is None:
            names = ", ".join(r.name for r in db.list_saes()) or "none"
            raise InterplabError(f"no SAE named {sae_name!r} in {db_url}; the database has: {names}")
        result = train_meta_sae(load_sae(rec.path, device="cpu"), cfg)
        links = shared_links(result, top_n)
        db.write_meta_latents(rec.id, [MetaRecord(i, meta_of(result, i), links[i]) for i in range(len(links))])
        return result
    finally:
        db.close()
