"""The live-inference and steering forms: their fields, read from a GET's query (to fill the form in) or from
a POST's urlencoded body (to run the model: only a POST does).

The pages' script sends the forms to the JSON API with fetch; a browser without scripts posts them here.
Both readers go through one pydantic model per form, so a field has one default and one bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, field_validator

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 20


class LiveForm(BaseModel):
    """/live: an SAE, a text, and how many latents to list per token."""

    sae_id: int | None = None
    text: str = Field("", max_length=5000)
    top_n: int = Field(5, ge=1, le=50)

    @field_validator("sae_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class SteerForm(BaseModel):
    """/steer: the source (`source` = "sae:3" / "vector:name", or `sae_id` or `vector`), latent, coefficients,
    prompt and number of new tokens."""

    source: str | None = Field(None, max_length=320)
    sae_id: int | None = None
    latent: int | None = None
    vector: str | None = Field(None, max_length=300)
    coef: float = 8.0
    coefs: str = Field("", max_length=200)
    prompt: str = Field("", max_length=2000)
    max_new_tokens: int = 24

    @field_validator("source", "sae_id", "latent", "vector", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


def parse_form(model: type[BaseModel], fields: Mapping[str, str]) -> Any:
    """`model` from the fields, unknown ones ignored; a bad value is a 400 page naming the field."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if k in model.model_fields})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def form_body(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form body (its size is already capped by the request guard)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise HTTPException(status_code=415, detail=f"send the form as {FORM_TYPE} (or use the JSON API under /api)")
    try:
        text = (await request.body()).decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status_code=400, detail=f"unreadable form ({exc}): send UTF-8 form fields") from None
