"""The web app: `create_app(db, ...)` returns a FastAPI app serving the JSON API (/api/...) and the pages.

Nothing is fetched from outside (no CDN): pages are server-rendered with Jinja2 (autoescape on), with one
stylesheet and one small script under /static. The interactive API docs of FastAPI load their assets from
a CDN, so they are off; the schema is at /api/openapi.json and committed as web/openapi.json. Every request
first passes the guards of web/guards.py (Host allow-list, same-origin POSTs, body size, security headers).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from interplab.dashboards.db import DashboardDB
from interplab.web.api import api_router
from interplab.web.graphs import graph_router
from interplab.web.guards import GuardConfig, RequestGuard, SecurityHeaders
from interplab.web.lens import lens_router
from interplab.web.live import LiveInference
from interplab.web.pages import page_router, report_router
from interplab.web.render import STATIC, Pages
from interplab.web.state import NotFound, WebState

TITLE = "interplab dashboards"
VERSION = "1"


def _error_response(pages: Pages, path: str, status: int, detail: str) -> Response:
    """{"detail": ...} under /api, the error page elsewhere."""
    if path.startswith("/api/"):
        return JSONResponse({"detail": detail}, status_code=status)
    return pages.render("error.html", status_code=status, status=status, message=detail)


def _add_error_handlers(app: FastAPI, pages: Pages) -> None:
    def error(request: Request, status: int, detail: str) -> Response:
        return _error_response(pages, request.url.path, status, detail)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return error(request, 404, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = "no such page" if exc.status_code == 404 and exc.detail == "Not Found" else str(exc.detail)
        return error(request, exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return error(request, 400, "bad request: " + "; ".join(parts))


def create_app(db: DashboardDB | str | Path, *, sae_paths: Mapping[int, str | Path] | None = None,
               model: str | None = None, reports_dir: str | Path | None = None,
               device: str | None = None, vectors_dir: str | Path | None = None,
               guards: GuardConfig | None = None, live_batch: int = 16) -> FastAPI:
    """The dashboards web app over `db` (a DashboardDB, a SQLite path or a SQLAlchemy URL).

    sae_paths: SAE id -> SAE folder for live inference (default: the `path` column of the saes table).
    model: model name or folder for live inference (default: the `model` column).
    reports_dir: folder searched for report folders (those holding index.json) shown under /reports.
    vectors_dir: folder of steering vector files (`interplab steer build`) offered by the steering playground.
    guards: the Host names answered and the largest body read (default: loopback names only, 1 MiB).
    live_batch: most live-inference texts run in one forward pass (concurrent requests share it; 1: none do).
    """
    guards = guards or GuardConfig()
    guards.check()
    database = db if isinstance(db, DashboardDB) else DashboardDB(db, create=False)
    live = LiveInference(sae_paths, model=model, device=device, db_file=database.file, max_batch=live_batch)
    state = WebState(db=database, live=live,
                     reports_dir=Path(reports_dir) if reports_dir is not None else None,
                     vectors_dir=Path(vectors_dir) if vectors_dir is not None else None)
    pages = Pages()
    app = FastAPI(title=TITLE, version=VERSION, docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  description="Feature dashboards of sparse autoencoders: latents, examples, search, live inference, "
                              "steering.")
    app.state.web = state
    app.include_router(api_router(state))
    app.include_router(page_router(state, pages))
    app.include_router(report_router(state, pages))
    app.include_router(lens_router(state, pages))
    app.include_router(graph_router(state, pages))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _add_error_handlers(app, pages)
    app.add_middleware(RequestGuard, config=guards, error=partial(_error_response, pages))
    app.add_middleware(SecurityHeaders)  # added last, so outermost: guard refusals get the headers too
    return app
