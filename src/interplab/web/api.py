"""The JSON API under /api: SAEs, latents, search, live inference, steering, reports. Errors are {"detail": ...}.

Before any route, web/guards.py answers 400 to a Host the server does not answer to, 403 to a POST from another
origin, 404/422 to a NUL byte in the path/query and 413 to a body over the limit."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from interplab.common import InterplabError
from interplab.web.reports import find_reports
from interplab.web.schemas import (
    ErrorOut,
    FeatureDetail,
    FeatureList,
    FeatureSummary,
    LatentValue,
    LiveRequest,
    LiveResponse,
    LiveToken,
    ReportSummary,
    SaeOut,
    SearchResults,
    SteerRequest,
    SteerResponse,
    SteerVectorOut,
)
from interplab.web.state import WebState
from interplab.web.steer import SteerInputError, run_steer, vector_infos

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "unknown SAE or latent"}}
Order = Literal["idx", "frequency", "max_act"]


def live_response(state: WebState, req: LiveRequest) -> LiveResponse:
    """Run live inference; a missing SAE file or model becomes a 503 with the reason."""
    rec = state.sae(req.sae_id)
    try:
        result = state.live.run(rec, req.text, req.top_n)
    except InterplabError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    tokens = [LiveToken(token=t, latents=[LatentValue(idx=i, value=v) for i, v in zip(ids, vals, strict=True)])
              for t, ids, vals in zip(result.tokens, result.top_idx, result.top_val, strict=True)]
    return LiveResponse(sae_id=req.sae_id, model=state.live.model_name(rec), hook=rec.hook, tokens=tokens)


def steer_response(state: WebState, req: SteerRequest) -> SteerResponse:
    """Run the steering playground; a request the model cannot serve is a 400, a load failure a 503."""
    try:
        return run_steer(state, req)
    except SteerInputError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except InterplabError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None


TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "request body larger than the server's limit (serve --max-body)"}}
STEER_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the model cannot generate (not a causal LM), or the prompt is too long"},
    404: {"model": ErrorOut, "description": "unknown SAE, latent or vector"},
    **TOO_LARGE,
    503: {"model": ErrorOut, "description": "SAE, vector or model cannot be loaded"},
}


def api_router(state: WebState) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])

    @router.get("/saes", response_model=list[SaeOut])
    def list_saes() -> list[SaeOut]:
        return [state.sae_out(r) for r in state.db.list_saes()]

    @router.get("/saes/{sae_id}", response_model=SaeOut, responses=NOT_FOUND)
    def get_sae(sae_id: int) -> SaeOut:
        return state.sae_out(state.sae(sae_id))

    @router.get("/saes/{sae_id}/features", response_model=FeatureList, responses=NOT_FOUND)
    def list_features(sae_id: int, offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000),
                      order: Order = "idx") -> FeatureList:
        state.sae(sae_id)
        feats = state.db.list_features(sae_id, offset=offset, limit=limit, order=order)
        return FeatureList(sae_id=sae_id, total=state.db.n_features(sae_id), offset=offset, limit=limit,
                           order=order, features=[FeatureSummary.of(f) for f in feats])

    @router.get("/saes/{sae_id}/features/{idx}", response_model=FeatureDetail, responses=NOT_FOUND)
    def get_feature(sae_id: int, idx: int) -> FeatureDetail:
        return state.feature(sae_id, idx)

    @router.get("/search", response_model=SearchResults)
    def search(q: str = Query(..., max_length=200, description="a token, or words of an explanation"),
               sae_id: int | None = None, limit: int = Query(50, ge=1, le=500)) -> SearchResults:
        return state.search(q, sae_id=sae_id, limit=limit)

    @router.post("/live", response_model=LiveResponse,
                 responses={**NOT_FOUND, **TOO_LARGE,
                            503: {"model": ErrorOut, "description": "SAE or model cannot be loaded"}})
    def live(req: LiveRequest) -> LiveResponse:
        return live_response(state, req)

    @router.post("/steer", response_model=SteerResponse, responses=STEER_ERRORS)
    def steer(req: SteerRequest) -> SteerResponse:
        """Greedy completions of the prompt without and with the steering vector (one per coefficient)."""
        return steer_response(state, req)

    @router.get("/steer/vectors", response_model=list[SteerVectorOut])
    def steer_vectors() -> list[SteerVectorOut]:
        """The vector files of the server's --vectors folder (empty without one)."""
        return vector_infos(state.vectors_dir)

    @router.get("/reports", response_model=list[ReportSummary])
    def reports() -> list[ReportSummary]:
        return [ReportSummary(name=r.name, title=r.title, kind=r.kind, n_figures=len(r.figures),
                              n_tables=len(r.tables))
                for r in find_reports(state.reports_dir)]

    return router
