"""Pydantic request/response models of the JSON API (`/api/...`); the committed openapi.json is built from them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from interplab.dashboards.db import ExampleRecord, ExplanationRecord, FeatureHit, FeatureRecord, SaeRecord


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


Coef = Annotated[float, Field(ge=-1000, le=1000)]
DEFAULT_STEER_COEF = 0.25
"""steering.units.DEFAULT_COEF, repeated so the schemas load without torch (a test keeps them equal)."""


class SteerRequest(BaseModel):
    """A steering-playground run: `prompt` completed greedily without and with a steering vector, which is
    an SAE latent's decoder row (`sae_id` + `latent`) or a vector file of the server's `--vectors` folder."""

    sae_id: int | None = Field(default=None, description="SAE whose decoder row is added (with latent)")
    latent: int | None = Field(default=None, ge=0, description="latent of that SAE; its unit-norm decoder row")
    vector: str | None = Field(default=None, min_length=1, max_length=300,
                               description="instead of an SAE latent: a vector file, named as in GET /api/steer/vectors")
    coef: Coef = Field(default=DEFAULT_STEER_COEF,
                       description="in units of the hook's median activation norm: coef * hook_norm along the vector "
                                   "is added at every position (0.25-0.5 steer fluently, ~1 breaks the text)")
    coefs: list[Coef] = Field(default_factory=list, max_length=8,
                              description="more coefficients to try after coef (a quick sweep)")
    prompt: str = Field(min_length=1, max_length=2000)
    max_new_tokens: int = Field(default=24, ge=1, le=128)

    @model_validator(mode="after")
    def _one_source(self) -> SteerRequest:
        if self.vector is None and (self.sae_id is None or self.latent is None):
            raise ValueError("give sae_id and latent (an SAE latent), or vector (a vector file)")
        if self.vector is not None and self.latent is not None:
            raise ValueError("give either an SAE latent (sae_id, latent) or a vector file, not both")
        return self

    def all_coefs(self) -> list[float]:
        """coef, then the sweep's coefficients, each once, in order."""
        return list(dict.fromkeys([self.coef, *self.coefs]))


class SteerGeneration(BaseModel):
    coef: float = Field(description="0 for the unsteered generation")
    text: str = Field(description="the greedy completion (new text only)")
    n_new_tokens: int
    perplexity: float | None = Field(
        description="perplexity of the completion under the unsteered model, given the prompt; null without tokens")


class SteerResponse(BaseModel):
    sae_id: int | None
    latent: int | None
    vector: str | None
    model: str
    hook: str
    vector_norm: float = Field(description="norm of the vector as built (1 for an SAE latent's unit row); only its "
                                           "direction counts")
    hook_norm: float = Field(description="the hook's median activation norm on reference text: the length of what "
                                         "coefficient 1 adds")
    prompt: str
    max_new_tokens: int
    unsteered: SteerGeneration
    steered: list[SteerGeneration] = Field(description="one per coefficient: coef, then coefs")


class SteerVectorOut(BaseModel):
    """A steering vector file of the server's --vectors folder."""

    name: str = Field(description="path relative to the vectors folder, without .safetensors")
    hook: str
    d: int
    model: str | None = Field(description="the model it was built on, when its metadata says")


class ReportSummary(BaseModel):
    name: str = Field(description="folder path relative to the reports directory")
    title: str
    kind: str = Field(description="what wrote it: toy, probe-study, steering-sweep, autointerp, ...")
    n_figures: int
    n_tables: int


class ErrorOut(BaseModel):
    detail: str
