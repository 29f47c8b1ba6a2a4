"""Writing report folders: the overwrite check, tables (CSV + JSON), figures, and index.json last.

    out/
      config.json        what was run
      metrics.jsonl      one JSON line per headline number, in the order computed
      tables/<name>.csv  + tables/<name>.json   (list of row objects)
      figures/<name>.png (+ figures/<name>.html: interactive version, or a heatmap's values as a table)
      index.json         a `ReportIndex` (index.py), written last

Every file is written atomically (interplab.files), and index.json last, so a folder with an index is a
finished report. Runners whose folders have their own layout (toy, autointerp) build a `ReportIndex`
and call `write_index`; the rest use `ReportWriter`. Its figure methods import png_charts (matplotlib,
~0.5 s) when first called, so reading reports (the web UI) never loads matplotlib.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from interplab.common import InterplabError
from interplab.files import json_safe, write_text_atomic
from interplab.reports.index import INDEX_NAME, FigureEntry, ReportIndex, TableEntry


def refuse_to_replace_report(folder: str | Path, overwrite: bool) -> None:
    """Raise when `folder` already holds a finished report and `overwrite` is off (touches nothing).

    Commands call it before loading anything, so a finished report is never replaced by accident.
    """
    folder = Path(folder)
    if (folder / INDEX_NAME).exists() and not overwrite:
        raise InterplabError(f"{folder} already holds a report; pass --overwrite or choose another --out")


def start_report(folder: str | Path, overwrite: bool) -> Path:
    """Create `folder` for a new report: refuse to replace a finished one unless `overwrite`, and when
    replacing, remove its index.json first so a run killed midway leaves a folder that is not "finished"."""
    folder = Path(folder)
    refuse_to_replace_report(folder, overwrite)
    (folder / INDEX_NAME).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_index(folder: str | Path, index: ReportIndex) -> Path:
    """Write `folder/index.json` in one step (call it last) and return its path."""
    path = Path(folder) / INDEX_NAME
    write_text_atomic(path, index.to_json())
    return path


def write_table_files(csv_path: Path, json_path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows (dicts with the same keys) as a CSV file and a JSON list, each written in one step."""
    clean = [json_safe(dict(r)) for r in rows]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(clean[0]) if clean else [])
    writer.writeheader()
    writer.writerows(clean)
    write_text_atomic(csv_path, text.getvalue())
    write_text_atomic(json_path, json.dumps(clean, indent=1, ensure_ascii=False))


class ReportWriter:
    """Writes one report folder in the standard layout; refuses to replace a finished report unless asked
    (see `start_report`)."""

    def __init__(self, folder: str | Path, title: str, kind: str, overwrite: bool = False):
        self.folder = start_report(folder, overwrite)
        (self.folder / "tables").mkdir(parents=True, exist_ok=True)
        (self.folder / "figures").mkdir(parents=True, exist_ok=True)
        self.index = ReportIndex(title=title, kind=kind)
        (self.folder / "metrics.jsonl").write_text("", encoding="utf-8")

    def write_config(self, config: Mapping[str, Any]) -> None:
        write_text_atomic(self.folder / "config.json", json.dumps(json_safe(config), indent=2))

    def log_metric(self, **values: Any) -> None:
        with (self.folder / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(json_safe(values)) + "\n")

    def figure_path(self, name: str, suffix: str) -> Path:
        """Where figure `name` with `suffix` (png, html) goes: figures/<name>.<suffix>."""
        return self.folder / "figures" / f"{name}.{suffix}"

    def add_figure(self, entry: FigureEntry) -> None:
        """List a figure whose files are already written (paths relative to the folder)."""
        self.index.figures.append(entry)

    def table(self, name: str, rows: Sequence[Mapping[str, Any]], title: str) -> None:
        """Write rows (dicts with the same keys) as tables/<name>.csv and .json."""
        entry = TableEntry(name=name, title=title, csv=f"tables/{name}.csv", json=f"tables/{name}.json")
        write_table_files(self.folder / entry.csv, self.folder / f"tables/{name}.json", rows)
        self.index.tables.append(entry)

    def heatmap(
        self,
        name: str,
        matrix: Tensor,
        rows: Sequence[str],
        cols: Sequence[str],
        title: str,
        row_axis: str = "train",
        col_axis: str = "test",
        vmin: float | None = None,
        vmax: float | None = None,
        *,
        caption: str,
    ) -> None:
        """A labelled heatmap (PNG), the same values as an HTML table and as a CSV table. `caption`: one plain
        sentence on what it shows and how to read it (shown under the figure)."""
        from interplab.reports.png_charts import heatmap_png, heatmap_table_html

        values = matrix.detach().cpu().double()
        heatmap_png(self.figure_path(name, "png"), values, rows, cols, title, row_axis, col_axis, vmin, vmax)
        heatmap_table_html(self.figure_path(name, "html"), values, rows, cols, title, row_axis, col_axis)
        table_rows = [
            {row_axis: r, **{c: float(values[i, j]) for j, c in enumerate(cols)}} for i, r in enumerate(rows)
        ]
        self.table(name, table_rows, title)
        self.add_figure(FigureEntry(name=name, title=title, png=f"figures/{name}.png",
                                    html=f"figures/{name}.html", caption=caption))

    def line_plot(
        self,
        name: str,
        x: Sequence[float],
        series: Mapping[str, Sequence[float]],
        title: str,
        xlabel: str,
        ylabel: str,
        log_x: bool = False,
        *,
        caption: str,
    ) -> None:
        """One line per series against x (e.g. accuracy per layer, one line per dataset)."""
        from interplab.reports.png_charts import line_plot_png

        line_plot_png(self.figure_path(name, "png"), x, series, title, xlabel, ylabel, log_x)
        self.add_figure(FigureEntry(name=name, title=title, png=f"figures/{name}.png", caption=caption))

    def curves(
        self,
        name: str,
        curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
        title: str,
        xlabel: str,
        ylabel: str,
        diagonal: bool = False,
        *,
        caption: str,
    ) -> None:
        """Lines with their own x values each (ROC curves), as a PNG."""
        from interplab.reports.png_charts import curves_png

        curves_png(self.figure_path(name, "png"), curves, title, xlabel, ylabel, diagonal)
        self.add_figure(FigureEntry(name=name, title=title, png=f"figures/{name}.png", caption=caption))

    def bars(
        self,
        name: str,
        groups: Sequence[str],
        series: Mapping[str, Sequence[float]],
        title: str,
        ylabel: str,
        *,
        caption: str,
    ) -> None:
        """Grouped bars (e.g. a rate before/after an intervention), as a PNG."""
        from interplab.reports.png_charts import bars_png

        bars_png(self.figure_path(name, "png"), groups, series, title, ylabel)
        self.add_figure(FigureEntry(name=name, title=title, png=f"figures/{name}.png", caption=caption))

    def finish(self, summary: Mapping[str, Any] | None = None) -> Path:
        """Write index.json (last, atomically) and return its path."""
        self.index.summary = json_safe(dict(summary or {}))
        return write_index(self.folder, self.index)
