"""The report index: what `index.json` of a report folder holds, and how it is read back.

A report is a folder whose `index.json` lists its figures and tables (paths relative to the folder) plus a
title, a kind and a summary of headline numbers. The index is written last, so a folder holding one is a
finished report. Every writer builds a `ReportIndex`; the web UI reads it with `parse_index`, which takes
any JSON object: fields a writer left out (older folders, hand-written indexes) get their defaults
instead of failing the page.

    {"version": 1, "kind": "probe-study", "title": "...", "summary": {...},
     "tables": [{"name", "title", "csv", "json"}],
     "figures": [{"name", "title", "png", "html", "caption", "group"}]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interplab.common import InterplabError

INDEX_NAME = "index.json"
"""File name of the index inside a report folder."""
FORMAT_VERSION = 1
"""Written as `version`; indexes without it (written before the format had an owner) read the same."""


@dataclass
class FigureEntry:
    """One figure: a PNG, an interactive HTML page, or both."""

    name: str
    """Identifier, unique within the report."""
    title: str
    """Shown above the figure."""
    png: str | None = None
    """PNG path relative to the report folder."""
    html: str | None = None
    """Self-contained HTML path (interactive version or a table of the values)."""
    caption: str | None = None
    """One sentence on how to read the figure."""
    group: str | None = None
    """Part of the run the figure belongs to (the toy runner's preset)."""


@dataclass
class TableEntry:
    """One table, as CSV (shown on the report page) and as JSON rows."""

    name: str
    """Identifier, unique within the report."""
    title: str
    """Shown above the table."""
    csv: str
    """CSV path relative to the report folder."""
    json: str | None = None
    """JSON path (a list of row objects) relative to the report folder."""


@dataclass
class ReportIndex:
    """Everything `index.json` holds."""

    title: str
    """Human-readable title of the report."""
    kind: str = "report"
    """What wrote it: toy, probe-study, steering-sweep, steering-compare, autointerp."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Headline numbers, shown as a two-column table (JSON-safe values)."""
    figures: list[FigureEntry] = field(default_factory=list)
    """Figures in display order."""
    tables: list[TableEntry] = field(default_factory=list)
    """Tables in display order."""

    def to_json(self) -> str:
        """The index as JSON text (non-ASCII kept readable; NaN must already be None)."""
        data = {"version": FORMAT_VERSION, **asdict(self)}
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)


def _text(value: Any) -> str | None:
    """A string field as written, None for missing/null, other scalars as their text."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _entries(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key)
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _figure(d: dict[str, Any]) -> FigureEntry:
    name = _text(d.get("name")) or ""
    return FigureEntry(name=name, title=_text(d.get("title")) or name, png=_text(d.get("png")),
                       html=_text(d.get("html")), caption=_text(d.get("caption")),
                       group=_text(d.get("group", d.get("preset"))))


def _table(d: dict[str, Any]) -> TableEntry:
    name = _text(d.get("name")) or ""
    return TableEntry(name=name, title=_text(d.get("title")) or name or "table", csv=_text(d.get("csv")) or "",
                      json=_text(d.get("json")))


def _legacy_title(data: dict[str, Any]) -> str | None:
    """Toy folders written before the index had a title named only their presets."""
    if data.get("kind") == "toy" and isinstance(data.get("presets"), list):
        return f"Toy models of superposition: {', '.join(map(str, data['presets']))}"
    return None


def parse_index(data: Any, default_title: str = "report") -> ReportIndex:
    """A ReportIndex from decoded JSON; missing or mistyped fields take their defaults.

    Raises InterplabError only when `data` is not a JSON object at all.
    """
    if not isinstance(data, dict):
        raise InterplabError("index.json does not hold a JSON object; rerun the command that wrote the report")
    summary = data.get("summary")
    return ReportIndex(
        title=_text(data.get("title")) or _legacy_title(data) or default_title,
        kind=_text(data.get("kind")) or "report",
        summary=summary if isinstance(summary, dict) else {},
        figures=[_figure(d) for d in _entries(data, "figures")],
        tables=[_table(d) for d in _entries(data, "tables")],
    )


def read_index(folder: Path) -> ReportIndex:
    """The index of the report in `folder` (its title defaults to the folder name).

    Raises InterplabError when index.json is missing, unreadable or not a JSON object.
    """
    path = Path(folder) / INDEX_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InterplabError(f"cannot read {path} ({exc}); rerun the command that wrote the report") from None
    return parse_index(data, default_title=Path(folder).name)
