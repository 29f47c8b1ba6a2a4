"""Pydantic request/response models of the JSON API (`/api/...`); the committed openapi.json is built from them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from interplab.web.db import ExampleRecord, ExplanationRecord, FeatureHit, FeatureRecord, SaeRecord


class SaeOut(BaseModel):
    """One SAE of the dashboards database."""

    id: int
    name: str
    model: str
    hook: str
    d_in: int
    d_sae: int
    arch: str
    n_tokens: int
    n_features: int = Field(description="latents with dashboards in the database")
    created_at: str

    @classmethod
    def of(cls, rec: SaeRecord, n_features: int) -> SaeOut:
        return cls(id=rec.id or 0, name=rec.name, model=rec.model, hook=rec.hook, d_in=rec.d_in, d_sae=rec.d_sae,
                   arch=rec.arch, n_tokens=rec.n_tokens, n_features=n_features, created_at=rec.created_at)


class FeatureSummary(BaseModel):
    """A latent's statistics, as listed on the SAE page."""

    idx: int
    frequency: float = Field(description="fraction of tokens where the latent is > 0")
    max_act: float
    mean_act: float = Field(description="mean over the tokens where it fires")

    @classmethod
    def of(cls, f: FeatureRecord) -> FeatureSummary:
        return cls(idx=f.idx, frequency=f.frequency, max_act=f.max_act, mean_act=f.mean_act)


class FeatureList(BaseModel):
    sae_id: int
    total: int
    offset: int
    limit: int
    order: Literal["idx", "frequency", "max_act"]
    features: list[FeatureSummary]


class TokenValue(BaseModel):
    token: str
    value: float


class Neighbour(BaseModel):
    idx: int
    cosine: float


class ExampleOut(BaseModel):
    """One context window: tokens with the latent's activation on each."""

    kind: str = Field(description='"top" or "quantile"')
    rank: int
    bucket: str | None
    max_act: float
    tokens: list[str]
    acts: list[float]

    @classmethod
    def of(cls, e: ExampleRecord) -> ExampleOut:
        return cls(kind=e.kind, rank=e.rank, bucket=e.bucket, max_act=e.max_act, tokens=e.tokens, acts=e.acts)


class ExplanationOut(BaseModel):
    text: str
    explainer: str
    detection: float | None = Field(description="balanced accuracy of detection scoring")
    fuzzing: float | None = Field(description="balanced accuracy of fuzzing scoring")
    created_at: str

    @classmethod
    def of(cls, e: ExplanationRecord) -> ExplanationOut:
        return cls(text=e.text, explainer=e.explainer, detection=e.detection, fuzzing=e.fuzzing,
                   created_at=e.created_at)


class FeatureDetail(FeatureSummary):
    """Everything the feature page shows."""

    sae_id: int
    hist_edges: list[float] = Field(description="[n_bins + 1] bin edges over the positive activations")
    hist_counts: list[int] = Field(description="[n_bins]")
    logits_pos: list[TokenValue] = Field(description="most promoted tokens first")
    logits_neg: list[TokenValue] = Field(description="most suppressed tokens first")
    neighbours: list[Neighbour] = Field(description="nearest latents by decoder cosine")
    explanations: list[ExplanationOut]
    top_examples: list[ExampleOut]
    quantile_examples: list[ExampleOut]


class SearchHit(BaseModel):
    sae_id: int
    idx: int
    score: float
    text: str = Field(description="the matched token or explanation")

    @classmethod
    def of(cls, h: FeatureHit) -> SearchHit:
        return cls(sae_id=h.sae_id, idx=h.idx, score=h.score, text=h.text)


class SearchResults(BaseModel):
    query: str
    by_token: list[SearchHit]
    by_explanation: list[SearchHit]


class LiveRequest(BaseModel):
    sae_id: int
    text: str = Field(min_length=1, max_length=5000)
    top_n: int = Field(default=5, ge=1, le=50, description="latents listed per token")


class LatentValue(BaseModel):
    idx: int
    value: float


class LiveToken(BaseModel):
    token: str
    latents: list[LatentValue] = Field(description="the top-n latents with value > 0, largest first")


class LiveResponse(BaseModel):
    sae_id: int
    model: str
    hook: str
    tokens: list[LiveToken]


class ReportSummary(BaseModel):
    name: str = Field(description="folder path relative to the reports directory")
    title: str
    n_figures: int
    n_tables: int


class ErrorOut(BaseModel):
    detail: str
