"""Report folders under the reports directory, and the one safe way to reach their files.

A report is a folder holding `index.json` (written last by the probe and toy runners, so a folder with an
index is finished): {"title"?, "summary"?, "tables": [{name, title, csv, json}], "figures": [{name, title,
png, html?, caption?}]}. File names in the index are relative to the report folder.

Every file the web app serves from here goes through `resolve_inside`: the path is resolved (symlinks
followed) and refused unless it stays inside the reports directory.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from interplab.common import InterplabError, get_logger

log = get_logger(__name__)

MAX_DEPTH = 3  # runs/<study>/<sub>/index.json is as deep as the runners nest reports
SERVED_SUFFIXES = {".png", ".svg", ".html", ".csv", ".json", ".jsonl", ".txt"}


class OutsideReportsError(InterplabError):
    """A requested path is absolute, escapes the reports directory, or does not exist there."""


@dataclass
class Report:
    name: str  # folder relative to the reports directory, POSIX separators
    title: str
    figures: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def resolve_inside(root: Path, relative: str) -> Path:
    """`root/relative`, resolved, or OutsideReportsError if it is absolute, leaves root, or is missing."""
    if not relative or PurePosixPath(relative).is_absolute() or Path(relative).is_absolute():
        raise OutsideReportsError(f"not a path inside the reports directory: {relative!r}")
    base = root.resolve()
    target = (base / relative).resolve()  # follows symlinks: a link pointing out is refused below
    if target != base and base not in target.parents:
        raise OutsideReportsError(f"{relative!r} is outside the reports directory")
    if not target.exists():
        raise OutsideReportsError(f"no such file in the reports directory: {relative!r}")
    return target


def _read_index(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("skipping report %s: unreadable index.json (%s)", folder, exc)
        return None
    return data if isinstance(data, dict) else None


def _entries(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key)
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _report(root: Path, folder: Path) -> Report | None:
    data = _read_index(folder)
    if data is None:
        return None
    name = folder.relative_to(root).as_posix()
    summary = data.get("summary")
    title = data.get("title")
    if not title and data.get("kind") == "toy":  # the toy runner's index names its presets, not a title
        title = f"Toy models of superposition: {', '.join(map(str, data.get('presets') or []))}"
    return Report(name=name, title=str(title or name), figures=_entries(data, "figures"),
                  tables=_entries(data, "tables"), summary=summary if isinstance(summary, dict) else {})


def find_reports(root: Path | None) -> list[Report]:
    """Every finished report under root (not following symlinked folders), sorted by name."""
    if root is None or not root.is_dir():
        return []
    root = root.resolve()
    found: list[Report] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        folder = Path(dirpath)
        depth = len(folder.relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < MAX_DEPTH else []
        if "index.json" in filenames and folder != root:
            report = _report(root, folder)
            if report is not None:
                found.append(report)
    return sorted(found, key=lambda r: r.name)


def load_report(root: Path | None, name: str) -> Report | None:
    """The report in folder `name` (relative to root), or None if there is none (or it is outside)."""
    if root is None:
        return None
    try:
        folder = resolve_inside(root, name)
    except OutsideReportsError:
        return None
    if folder == root.resolve() or not (folder / "index.json").is_file():
        return None
    return _report(root.resolve(), folder)


def read_csv_table(path: Path, max_rows: int = 500) -> tuple[list[str], list[list[str]], bool]:
    """(header, rows, truncated) of a CSV file, at most max_rows rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows: list[list[str]] = []
        for row in reader:
            if len(rows) == max_rows:
                return header, rows, True
            rows.append(row)
    return header, rows, False
