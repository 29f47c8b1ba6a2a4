"""The lens page and API: a prompt's top next tokens at every layer (rows) and position (columns).

1. Models offered: serve's --model and the models of the database's SAEs, plus the model of every tuned lens
   found among the reports (report folders of kind "tuned-lens" holding lens/, as `interplab lens` writes).
   A request naming anything else is refused, so a request never makes the server load an arbitrary path.
2. The lens is "logit" (the model's final norm and unembedding applied to each layer) or a tuned lens by
   its report name (interplab.lens: translators, then the same decoding).
3. The model is live inference's (loaded on first use, shared, used under its lock); it runs only on POST.
4. Each cell carries the top-k tokens with probabilities (shown on hover) and KL to the model's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, ValidationError

from interplab.common import InterplabError, get_logger
from interplab.web.forms import form_body, parse_form
from interplab.web.render import Pages
from interplab.web.reports import OutsideReportsError, find_reports, resolve_inside
from interplab.web.schemas import ErrorOut
from interplab.web.state import NotFound, WebState

log = get_logger(__name__)

LOGIT = "logit"
TUNED_KIND = "tuned-lens"
MAX_PROMPT_TOKENS = 64


class LensTokenProb(BaseModel):
    token: str
    prob: float


class LensCell(BaseModel):
    """One layer at one position: the lens's top tokens and its KL to the model's output (nats)."""

    top: list[LensTokenProb]
    kl: float


class LensOption(BaseModel):
    name: str
    model: str | None = Field(default=None, description="the model a tuned lens was trained on (None for the logit lens)")


class LensOptions(BaseModel):
    models: list[str]
    lenses: list[LensOption]


class LensRequest(BaseModel):
    model: str | None = Field(None, max_length=300, description="one of /api/lens/options' models (default: the "
                                                                "tuned lens's model, else the first)")
    lens: str = Field(LOGIT, max_length=300, description='"logit" or a tuned lens from /api/lens/options')
    prompt: Annotated[str, Field(min_length=1, max_length=2000)]
    top_k: int = Field(5, ge=1, le=10)


class LensResponse(BaseModel):
    model: str
    lens: str
    tokens: list[str] = Field(description="the prompt's tokens (columns)")
    layers: list[str] = Field(description="rows: 'embed', then the block after which the stream is read")
    rows: list[list[LensCell]] = Field(description="rows[layer][position]")
    final: list[list[LensTokenProb]] = Field(description="the model's own top tokens per position")


class LensForm(BaseModel):
    """/lens: the form's fields (a GET fills the form in, a POST runs it)."""

    model: str | None = Field(None, max_length=300)
    lens: str = Field(LOGIT, max_length=300)
    prompt: str = Field("", max_length=2000)
    top_k: int = Field(5, ge=1, le=10)


def tuned_lenses(state: WebState) -> dict[str, tuple[Path, str | None]]:
    """Tuned lenses among the reports: report name -> (lens folder, model it was trained on)."""
    import json

    out: dict[str, tuple[Path, str | None]] = {}
    if state.reports_dir is None:
        return out
    for report in find_reports(state.reports_dir):
        if report.kind != TUNED_KIND:
            continue
        try:
            folder = resolve_inside(state.reports_dir, f"{report.name}/lens")
            meta = json.loads((folder / "tuned_lens.json").read_text(encoding="utf-8"))
        except (OutsideReportsError, OSError, ValueError):
            continue
        model = (meta.get("metadata") or {}).get("model") if isinstance(meta, dict) else None
        out[report.name] = (folder, str(model) if model else None)
    return out


def lens_options(state: WebState) -> LensOptions:
    models: list[str] = []
    if state.live.model_override:
        models.append(state.live.model_override)
    models += [state.live.model_name(rec) for rec in state.db.list_saes()]
    lenses = [LensOption(name=LOGIT)]
    for name, (_, model) in tuned_lenses(state).items():
        lenses.append(LensOption(name=name, model=model))
        if model:
            models.append(model)
    return LensOptions(models=list(dict.fromkeys(models)), lenses=lenses)


def _pick(state: WebState, req: LensRequest) -> tuple[str, Path | None]:
    """(model, tuned-lens folder or None) for a request; NotFound / 400 for what this server does not offer."""
    options = lens_options(state)
    folder, lens_model = None, None
    if req.lens != LOGIT:
        found = tuned_lenses(state).get(req.lens)
        if found is None:
            raise NotFound(f"no tuned lens {req.lens!r} among the reports (train one with `interplab lens`)")
        folder, lens_model = found
    model = req.model or lens_model or (options.models[0] if options.models else None)
    if model is None:
        raise NotFound("this server offers no model: start it with --model <a causal LM>")
    if model not in options.models:
        raise NotFound(f"model {model!r} is not offered here; choose one of {', '.join(options.models)}")
    if lens_model and model != lens_model:
        raise HTTPException(400, f"tuned lens {req.lens!r} was trained on {lens_model}, not {model}")
    if state.live.is_causal(model) is False:
        raise HTTPException(400, f"{model} is not a causal LM: the lens reads next-token predictions")
    return model, folder


def run_lens(state: WebState, req: LensRequest) -> LensResponse:
    """The lens grid of a request (the model loads on first use): a load failure is a 503, bad input a 400."""
    from interplab.lens import lens_grid, load_tuned_lens

    model, folder = _pick(state, req)
    with state.live.lock:
        try:
            lm = state.live.model(model)
            tuned = load_tuned_lens(folder, device=lm.device) if folder is not None else None
        except InterplabError as exc:
            raise HTTPException(503, str(exc)) from None
        try:
            grid = lens_grid(lm, req.prompt, tuned, req.top_k, max_tokens=MAX_PROMPT_TOKENS)
        except InterplabError as exc:  # an encoder, an empty prompt, a lens of another shape
            raise HTTPException(400, str(exc)) from None
    probs = grid.top_probs_LSK.tolist()
    rows = [[LensCell(top=[LensTokenProb(token=t, prob=p) for t, p in zip(toks, ps, strict=True)], kl=float(kl))
             for toks, ps, kl in zip(layer_toks, layer_probs, layer_kl, strict=True)]
            for layer_toks, layer_probs, layer_kl in zip(grid.top_tokens, probs, grid.kl_LS.tolist(), strict=True)]
    final = [[LensTokenProb(token=t, prob=float(rows[-1][i].top[j].prob)) for j, t in enumerate(toks)]
             for i, toks in enumerate(grid.final_tokens)]
    return LensResponse(model=model, lens=req.lens, tokens=grid.tokens, layers=grid.layers, rows=rows, final=final)


LENS_ERRORS: dict[int | str, dict] = {
    400: {"model": ErrorOut, "description": "the model is not a causal LM, or the lens belongs to another model"},
    404: {"model": ErrorOut, "description": "model or tuned lens not offered by this server"},
    503: {"model": ErrorOut, "description": "the model or the lens cannot be loaded"},
}


def _page(state: WebState, pages: Pages, form: LensForm, run: bool) -> HTMLResponse:
    result, error, status = None, None, 200
    if run and form.prompt.strip():
        try:
            result = run_lens(state, LensRequest(model=form.model, lens=form.lens, prompt=form.prompt, top_k=form.top_k))
        except NotFound as exc:
            error, status = str(exc), 404
        except HTTPException as exc:
            error, status = str(exc.detail), exc.status_code
        except ValidationError as exc:
            error, status = "; ".join(e["msg"] for e in exc.errors()), 400
    return pages.render("lens.html", status_code=status, options=lens_options(state), form=form, result=result,
                        error=error)


def lens_router(state: WebState, pages: Pages) -> APIRouter:
    """GET/POST /lens (the page) and GET /api/lens/options, POST /api/lens (the API)."""
    router = APIRouter()

    @router.get("/api/lens/options", response_model=LensOptions, tags=["api"])
    def options() -> LensOptions:
        """Models and lenses (logit, and tuned lenses found among the reports) this server offers."""
        return lens_options(state)

    @router.post("/api/lens", response_model=LensResponse, responses=LENS_ERRORS, tags=["api"])
    def lens(req: LensRequest) -> LensResponse:
        """Top next tokens at every layer and position of the prompt, with KL to the model's output."""
        return run_lens(state, req)

    @router.get("/lens", include_in_schema=False, response_class=HTMLResponse)
    def lens_page(request: Request) -> HTMLResponse:
        return _page(state, pages, parse_form(LensForm, request.query_params), run=False)

    @router.post("/lens", include_in_schema=False, response_class=HTMLResponse)
    def lens_run(fields: dict[str, str] = Depends(form_body)) -> HTMLResponse:
        return _page(state, pages, parse_form(LensForm, fields), run=True)

    return router
