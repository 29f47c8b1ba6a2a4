"""Server-rendered HTML pages: SAE list, latent list, feature page, search, live inference, steering, reports, and
the plain-language guide (/guide).

Live inference and steering run the model only for a POST (the forms, web/forms.py); a GET fills the form in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import ValidationError

from interplab.web.api import live_response, steer_response
from interplab.web.forms import LiveForm, SteerForm, form_body, parse_form
from interplab.web.guide import CONCEPTS, REPORT_KINDS
from interplab.web.render import Pages
from interplab.web.reports import (
    SERVED_SUFFIXES,
    OutsideReportsError,
    Report,
    find_reports,
    load_report,
    read_csv_table,
    resolve_inside,
)
from interplab.web.schemas import LiveRequest, LiveResponse, SteerRequest
from interplab.web.state import NotFound, WebState
from interplab.web.steer import not_causal_message, vector_infos

PER_PAGE = 100


def _report_tables(state: WebState, report: Report) -> list[dict[str, Any]]:
    """Each table of the report as {title, header, rows, truncated, csv_url} (or an error line)."""
    assert state.reports_dir is not None
    out = []
    for table in report.tables:
        rel = f"{report.name}/{table.csv}"
        entry: dict[str, Any] = {"title": table.title, "csv_url": f"/report-files/{quote(rel)}", "error": None}
        try:
            entry["header"], entry["rows"], entry["truncated"] = read_csv_table(resolve_inside(state.reports_dir, rel))
        except (OutsideReportsError, OSError, UnicodeDecodeError) as exc:
            entry.update(header=[], rows=[], truncated=False, error=str(exc))
        out.append(entry)
    return out


def _first_letter(sae_path: str) -> dict[str, Any] | None:
    """The first-letter absorption block of the SAE folder's eval.json (`interplab eval-sae --absorption`)."""
    folder = Path(sae_path)
    try:
        data = json.loads(((folder if folder.is_dir() else folder.parent) / "eval.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    block = data.get("first_letter") if isinstance(data, dict) else None
    return block if isinstance(block, dict) and "mean_absorption" in block else None


def _live_view(result: LiveResponse) -> dict[str, Any]:
    """Per token: its strongest latent's value (for the highlight) and the page-wide maximum."""
    strongest = [t.latents[0].value if t.latents else 0.0 for t in result.tokens]
    return {"result": result, "strongest": strongest, "max_value": max(strongest, default=0.0)}


def _steer_source(source: str | None, sae_id: int | None, vector: str | None) -> tuple[int | None, str | None]:
    """(sae_id, vector) from the form's `source` ("sae:3" / "vector:name") or the plain query parameters."""
    if source and source.startswith("sae:") and source[4:].isdigit():
        return int(source[4:]), None
    if source and source.startswith("vector:"):
        return None, source[7:]
    return (None, vector) if vector else (sae_id, None)


def _steer_warning(state: WebState, sae_id: int | None, vector: str | None) -> str | None:
    """The encoder warning for the chosen source, when its model's config says it is not a causal LM."""
    model: str | None = state.live.model_override
    if vector is not None:
        model = model or next((v.model for v in vector_infos(state.vectors_dir) if v.name == vector), None)
    elif sae_id is not None and (rec := state.db.get_sae(sae_id)) is not None:
        model = state.live.model_name(rec)
    return not_causal_message(model) if model and state.live.is_causal(model) is False else None


def _parse_coefs(text: str) -> list[float]:
    try:
        return [float(c) for c in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"more coefficients: {text!r} is not a list of numbers like -0.5, 0.5, 1") from None


def _steer_view(state: WebState, form: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Run the form when it has a prompt: ({result, error}, status); bad input shows as the error."""
    if not form["prompt"]:
        return {"result": None, "error": None}, 200
    try:
        req = SteerRequest(sae_id=form["sae_id"], latent=None if form["vector"] else form["latent"],
                           vector=form["vector"], coef=form["coef"], coefs=_parse_coefs(form["coefs"]),
                           prompt=form["prompt"], max_new_tokens=form["max_new_tokens"])
        return {"result": steer_response(state, req), "error": None}, 200
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()]
        return {"result": None, "error": "; ".join(parts)}, 400
    except ValueError as exc:
        return {"result": None, "error": str(exc)}, 400
    except NotFound as exc:
        return {"result": None, "error": str(exc)}, 404
    except HTTPException as exc:
        return {"result": None, "error": str(exc.detail)}, exc.status_code


def _live_page(state: WebState, pages: Pages, form: LiveForm, run: bool) -> HTMLResponse:
    """/live with the form filled in; with `run`, the model's top latents per token (or the error)."""
    view: dict[str, Any] = {"result": None, "error": None}
    if run and form.text and form.sae_id is not None:
        try:
            req = LiveRequest(sae_id=form.sae_id, text=form.text, top_n=form.top_n)
            view = {**_live_view(live_response(state, req)), "error": None}
        except HTTPException as exc:
            view = {"result": None, "error": str(exc.detail)}
    return pages.render("live.html", saes=state.db.list_saes(), sae_id=form.sae_id, text=form.text,
                        top_n=form.top_n, **view)


def _steer_page(state: WebState, pages: Pages, fields: SteerForm, run: bool) -> HTMLResponse:
    """/steer with the form filled in; with `run`, the generations side by side (or the error)."""
    saes, vectors = state.db.list_saes(), vector_infos(state.vectors_dir)
    sae_id, vector = _steer_source(fields.source, fields.sae_id, fields.vector)
    if sae_id is None and vector is None and saes:
        sae_id = saes[0].id
    form = {"sae_id": sae_id, "vector": vector, "latent": fields.latent, "coef": fields.coef,
            "coefs": fields.coefs, "prompt": fields.prompt, "max_new_tokens": fields.max_new_tokens}
    view, status = _steer_view(state, form) if run else ({"result": None, "error": None}, 200)
    return pages.render("steer.html", status_code=status, saes=saes, vectors=vectors, form=form,
                        warning=_steer_warning(state, sae_id, vector), **view)


def page_router(state: WebState, pages: Pages) -> APIRouter:
    """/, /guide, /sae/{id}, /sae/{id}/feature/{idx}, /search, /live and /steer."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/")
    def index() -> HTMLResponse:
        saes = [state.sae_out(r) for r in state.db.list_saes()]
        return pages.render("index.html", saes=saes, reports=find_reports(state.reports_dir))

    @router.get("/guide")
    def guide_page() -> HTMLResponse:
        """"What am I looking at?": every concept and report kind in plain language (text: web/guide.py)."""
        return pages.render("guide.html", concepts=CONCEPTS, kinds=REPORT_KINDS)

    @router.get("/sae/{sae_id}")
    def sae_page(sae_id: int, order: Literal["idx", "frequency", "max_act"] = "idx",
                 page: int = Query(1, ge=1)) -> HTMLResponse:
        sae = state.sae_out(state.sae(sae_id))
        feats = state.db.list_features(sae_id, offset=(page - 1) * PER_PAGE, limit=PER_PAGE, order=order)
        n_pages = max(1, -(-sae.n_features // PER_PAGE))
        return pages.render("sae.html", sae=sae, features=feats, order=order, page=page, n_pages=n_pages,
                            first_letter=_first_letter(state.sae(sae_id).path))

    @router.get("/sae/{sae_id}/feature/{idx}")
    async def feature_page(sae_id: int, idx: int) -> HTMLResponse:
        # async: run on the event loop, not handed to a pool thread. The page is ~1-2 ms of CPU and local
        # reads; under 50 concurrent clients the thread hand-off and 40 threads taking turns at the GIL cost
        # more than the page (bench/README.md, "Under load").
        sae = state.sae(sae_id)
        model = state.live.model_name(sae)
        # only what is already known (a loaded model, a read config): this page never loads a model
        steer_note = not_causal_message(model) if state.live.known_causal(model) is False else None
        return pages.render("feature.html", sae=sae, f=state.feature(sae_id, idx, sae), steer_note=steer_note,
                            meta=state.db.get_meta_latents(sae_id, idx))

    @router.get("/search")
    def search_page(q: str = Query("", max_length=200), sae_id: int | None = None) -> HTMLResponse:
        results = state.search(q, sae_id=sae_id)
        names = {r.id: r.name for r in state.db.list_saes()}
        return pages.render("search.html", q=q, results=results, names=names)

    @router.get("/live")
    def live_page(request: Request) -> HTMLResponse:
        """The form, filled in from the query; the model runs only on POST."""
        return _live_page(state, pages, parse_form(LiveForm, request.query_params), run=False)

    @router.post("/live")
    def live_run(fields: dict[str, str] = Depends(form_body)) -> HTMLResponse:
        return _live_page(state, pages, parse_form(LiveForm, fields), run=True)

    @router.get("/steer")
    def steer_page(request: Request) -> HTMLResponse:
        """The form, filled in from the query (the feature page links here); the model runs only on POST."""
        return _steer_page(state, pages, parse_form(SteerForm, request.query_params), run=False)

    @router.post("/steer")
    def steer_run(fields: dict[str, str] = Depends(form_body)) -> HTMLResponse:
        return _steer_page(state, pages, parse_form(SteerForm, fields), run=True)

    return router


def report_router(state: WebState, pages: Pages) -> APIRouter:
    """/reports, /reports/{folder} and /report-files/{path} (only files inside the reports directory)."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/reports")
    def reports_page() -> HTMLResponse:
        return pages.render("reports.html", reports=find_reports(state.reports_dir),
                            reports_dir=state.reports_dir)

    @router.get("/reports/{name:path}")
    def report_page(name: str) -> HTMLResponse:
        report = load_report(state.reports_dir, name)
        if report is None:
            raise NotFound(f"no report {name!r} in the reports directory")
        return pages.render("report.html", report=report, tables=_report_tables(state, report))

    @router.get("/report-files/{path:path}", response_model=None)
    def report_file(path: str) -> FileResponse:
        if state.reports_dir is None:
            raise NotFound("this server has no reports directory (start it with --reports <dir>)")
        try:
            target = resolve_inside(state.reports_dir, path)
        except OutsideReportsError as exc:
            raise NotFound(str(exc)) from None
        if not target.is_file() or target.suffix.lower() not in SERVED_SUFFIXES:
            raise NotFound(f"{path!r} is not a report file")
        # Report HTML/SVG runs sandboxed (no access to this origin), whether framed or opened directly; only
        # this server's report page may frame it.
        active = target.suffix.lower() in (".html", ".svg")
        headers = {"Content-Security-Policy": "sandbox allow-scripts; frame-ancestors 'self'",
                   "X-Frame-Options": "SAMEORIGIN"} if active else {}
        return FileResponse(target, headers=headers)

    return router
