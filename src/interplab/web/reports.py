"""Report folders under the reports directory, and the one safe way to reach their files.

A report is a folder holding `index.json` (format and reader: interplab.reports.index; written last, so a
folder with an index is finished). Fields a writer left out take their defaults, so any report renders.

Every file the web app serves from here goes through `resolve_inside`: the path is resolved (symlinks
followed) and refused unless it stays inside the reports directory.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from interplab.common import InterplabError, get_logger
from interplab.reports.index import FigureEntry, TableEntry, read_index

log = get_logger(__name__)

MAX_DEPTH = 3  # runs/<study>/<sub>/index.json is as deep as the runners nest reports
SERVED_SUFFIXES = {".png", ".svg", ".html", ".csv", ".json", ".jsonl", ".txt"}


class OutsideReportsError(InterplabError):
    """A requested path is absolute, escapes the reports directory, or does not exist there."""


@dataclass
class Report:
    name: str  # folder relative to the reports directory, POSIX separators
    title: str
    kind: str = "report"
    figures: list[FigureEntry] = field(default_factory=list)
    tables: list[TableEntry] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def resolve_inside(root: Path, relative: str) -> Path:
    """`root/relative`, resolved, or OutsideReportsError if it is absolute, leaves root, is missing, or holds a
    NUL byte (no file name can)."""
    if not relative or "\0" in relative or PurePosixPath(relative).is_absolute() or Path(relative).is_absolute():
        raise OutsideReportsError(f"not a path inside the reports directory: {relative!r}")
    base = root.resolve()
    target = (base / relative).resolve()  # follows symlinks: a link pointing out is refused below
    if target != base and base not in target.parents:
        raise OutsideReportsError(f"{relative!r} is outside the reports directory")
    if not target.exists():
        raise OutsideReportsError(f"no such file in the reports directory: {relative!r}")
    return target


def _report(root: Path, folder: Path) -> Report | None:
    """The report in `folder`, or None (logged) when its index.json is unreadable."""
    try:
        index = read_index(folder)
    except InterplabError as exc:
        log.warning("skipping report %s: %s", folder, exc)
        return None
    name = folder.relative_to(root).as_posix()
    return Report(name=name, title=index.title, kind=index.kind, figures=index.figures, tables=index.tables,
                  summary=index.summary)


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
