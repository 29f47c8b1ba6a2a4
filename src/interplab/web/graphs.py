"""The interactive attribution-graph page: /graphs/{report folder} for reports of kind "attribution-graph".

The page is server-rendered around one SVG that web/static/graph.js draws from the report's graph.json
(fetched from /report-files, so through the same path check as every report file): nodes by layer x
position, edges by weight, a threshold slider, hover values, and a link from each transcoder feature to
its dashboard when the dashboards database holds that layer's transcoder. Prompt tokens reach the page
only as text (Jinja escapes them; graph.js sets them with textContent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from interplab.common import InterplabError
from interplab.files import read_json_object
from interplab.web.render import Pages
from interplab.web.reports import OutsideReportsError, load_report, resolve_inside
from interplab.web.state import NotFound, WebState

GRAPH_KIND = "attribution-graph"
GRAPH_FILE = "graph.json"


def _same_path(a: str, b: Path) -> bool:
    try:
        return Path(a).resolve() == b.resolve()
    except OSError:
        return False


def dashboard_links(state: WebState, transcoders: str | None, n_layers: int) -> dict[int, str]:
    """Layer -> "/sae/{id}/feature/" for the transcoders in the database: the graph's own (by folder), else
    the one transcoder-like SAE reading that layer's MLP input."""
    links: dict[int, str] = {}
    saes = state.db.list_saes()
    for layer in range(n_layers):
        hook = f"blocks.{layer}.mlp_in"
        own = [s for s in saes if transcoders and _same_path(s.path, Path(transcoders) / hook)]
        same_hook = [s for s in saes if s.hook == hook and "transcoder" in s.arch]
        match = own[0] if own else (same_hook[0] if len(same_hook) == 1 else None)
        if match is not None and match.id is not None:
            links[layer] = f"/sae/{match.id}/feature/"
    return links


def graph_view(state: WebState, name: str) -> dict[str, Any]:
    """What graph.html needs for report `name`, or NotFound."""
    # the circuits stack (transformers) loads on the first graph page, not when the server starts
    from interplab.circuits import read_graph

    report = load_report(state.reports_dir, name)
    if report is None or report.kind != GRAPH_KIND or state.reports_dir is None:
        raise NotFound(f"no attribution graph {name!r} in the reports directory")
    try:
        folder = resolve_inside(state.reports_dir, report.name)
        data = read_graph(resolve_inside(state.reports_dir, f"{report.name}/{GRAPH_FILE}"))
        config = read_json_object(folder / "config.json", what="a graph config") if (folder / "config.json").is_file() \
            else {}
    except (OutsideReportsError, InterplabError) as exc:
        raise NotFound(f"report {name!r} has no readable {GRAPH_FILE}: {exc}") from None
    meta = data.get("metadata", {})
    n_layers = int(meta.get("n_layers", 0))
    links = dashboard_links(state, config.get("transcoders"), n_layers)
    return {"report": report, "meta": meta, "n_nodes": len(data["nodes"]), "n_links": len(data["links"]),
            "graph_url": f"/report-files/{quote(report.name)}/{GRAPH_FILE}",
            "dashboards": json.dumps({str(k): v for k, v in links.items()}), "n_dashboards": len(links)}


def graph_router(state: WebState, pages: Pages) -> APIRouter:
    """/graphs/{folder}: the interactive page of one attribution-graph report."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/graphs/{name:path}")
    def graph_page(name: str) -> HTMLResponse:
        return pages.render("graph.html", **graph_view(state, name))

    return router
