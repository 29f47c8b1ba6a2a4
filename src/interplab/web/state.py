"""What every route shares: the database, live inference, the reports directory; and the lookups both
the JSON API and the pages make (so a page shows exactly what its API returns)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interplab.dashboards.db import DashboardDB, SaeRecord
from interplab.web.live import LiveInference
from interplab.web.schemas import (
    ExampleOut,
    ExplanationOut,
    FeatureDetail,
    Neighbour,
    SaeOut,
    SearchHit,
    SearchResults,
    TokenValue,
)


class NotFound(Exception):
    """An unknown SAE, latent or report; becomes a 404 (JSON under /api, an HTML page elsewhere)."""


@dataclass
class WebState:
    db: DashboardDB
    live: LiveInference
    reports_dir: Path | None
    vectors_dir: Path | None = None

    def sae(self, sae_id: int) -> SaeRecord:
        rec = self.db.get_sae(sae_id)
        if rec is None:
            raise NotFound(f"no SAE with id {sae_id} in this database")
        return rec

    def sae_out(self, rec: SaeRecord) -> SaeOut:
        return SaeOut.of(rec, self.db.n_features(rec.id or 0))

    def feature(self, sae_id: int, idx: int, rec: SaeRecord | None = None) -> FeatureDetail:
        """A latent's page content (`rec`: its SAE row, when the caller has read it already)."""
        rec = rec or self.sae(sae_id)
        page = self.db.get_feature_page(sae_id, idx)
        if page is None:
            raise NotFound(f"SAE {rec.name!r} has no dashboard for latent {idx} "
                           f"(it has {rec.d_sae} latents; {self.db.n_features(sae_id)} with dashboards)")
        feat = page.feature
        return FeatureDetail(
            sae_id=sae_id, idx=feat.idx, frequency=feat.frequency, max_act=feat.max_act, mean_act=feat.mean_act,
            hist_edges=feat.hist_edges, hist_counts=feat.hist_counts,
            logits_pos=[TokenValue(token=t, value=v) for t, v in feat.logits_pos],
            logits_neg=[TokenValue(token=t, value=v) for t, v in feat.logits_neg],
            neighbours=[Neighbour(idx=int(i), cosine=c) for i, c in feat.neighbours],
            explanations=[ExplanationOut.of(e) for e in page.explanations],
            top_examples=[ExampleOut.of(e) for e in page.top],
            quantile_examples=[ExampleOut.of(e) for e in page.quantile],
        )

    def search(self, query: str, sae_id: int | None = None, limit: int = 50) -> SearchResults:
        query = query.strip()
        if not query:
            return SearchResults(query="", by_token=[], by_explanation=[])
        by_token = self.db.search_by_token(query, sae_id=sae_id, limit=limit)
        by_expl = self.db.search_by_explanation(query, sae_id=sae_id, limit=limit)
        return SearchResults(query=query, by_token=[SearchHit.of(h) for h in by_token],
                             by_explanation=[SearchHit.of(h) for h in by_expl])
