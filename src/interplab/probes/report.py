"""The probe report folder: config, tables (CSV + JSON), figures (PNG + HTML), and an index for the web UI.

    out/
      config.json        what was run
      metrics.jsonl      one JSON line per headline number, in the order computed
      tables/<name>.csv  + tables/<name>.json   (list of row objects)
      figures/<name>.png (+ figures/<name>.html for heatmaps: a plain HTML table with the values)
      index.json         {"title", "tables": [{name, title, csv, json}], "figures": [{name, title, png, html?}]}

index.json is written last (and atomically), so a folder with an index is a finished report.
"""

from __future__ import annotations

import csv
import html
import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are written on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from interplab.common import InterplabError  # noqa: E402
from interplab.files import json_safe, write_text_atomic  # noqa: E402


class ReportWriter:
    """Writes one report folder; refuses to overwrite a finished report unless asked."""

    def __init__(self, folder: str | Path, title: str, overwrite: bool = False):
        self.folder = Path(folder)
        if (self.folder / "index.json").exists() and not overwrite:
            raise InterplabError(
                f"{self.folder} already holds a report; pass --overwrite or choose another --out"
            )
        (self.folder / "tables").mkdir(parents=True, exist_ok=True)
        (self.folder / "figures").mkdir(parents=True, exist_ok=True)
        self.title = title
        self.tables: list[dict[str, str]] = []
        self.figures: list[dict[str, str]] = []
        (self.folder / "metrics.jsonl").write_text("", encoding="utf-8")

    def write_config(self, config: Mapping[str, Any]) -> None:
        write_text_atomic(self.folder / "config.json", json.dumps(json_safe(config), indent=2))

    def log_metric(self, **values: Any) -> None:
        with (self.folder / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(json_safe(values)) + "\n")

    def table(self, name: str, rows: Sequence[Mapping[str, Any]], title: str) -> None:
        """Write rows (dicts with the same keys) as tables/<name>.csv and .json."""
        rows = [json_safe(dict(r)) for r in rows]
        columns = list(rows[0]) if rows else []
        with (self.folder / "tables" / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        write_text_atomic(self.folder / "tables" / f"{name}.json", json.dumps(rows, indent=1))
        self.tables.append(
            {"name": name, "title": title, "csv": f"tables/{name}.csv", "json": f"tables/{name}.json"}
        )

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
    ) -> None:
        """A labelled heatmap (PNG), the same values as an HTML table and as a CSV table."""
        values = matrix.detach().cpu().double()
        fig, ax = plt.subplots(figsize=(max(5.0, 2.2 + 0.9 * len(cols)), max(3.6, 1.6 + 0.7 * len(rows))))
        image = ax.imshow(values.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_xticks(range(len(cols)), labels=list(cols), rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), labels=list(rows))
        ax.set_xlabel(col_axis)
        ax.set_ylabel(row_axis)
        for i in range(len(rows)):
            for j in range(len(cols)):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(image, ax=ax)
        ax.set_title(textwrap.fill(title, 48), fontsize=9)
        fig.tight_layout()
        fig.savefig(self.folder / "figures" / f"{name}.png", dpi=110)
        plt.close(fig)
        self._heatmap_html(name, values, rows, cols, title, row_axis, col_axis)
        table_rows = [
            {row_axis: r, **{c: float(values[i, j]) for j, c in enumerate(cols)}} for i, r in enumerate(rows)
        ]
        self.table(name, table_rows, title)
        self.figures.append(
            {"name": name, "title": title, "png": f"figures/{name}.png", "html": f"figures/{name}.html"}
        )

    def _heatmap_html(self, name, values, rows, cols, title, row_axis, col_axis) -> None:
        esc = html.escape
        head = "".join(f"<th>{esc(c)}</th>" for c in cols)
        body = "".join(
            f"<tr><th>{esc(r)}</th>"
            + "".join(f"<td>{values[i, j]:.3f}</td>" for j in range(len(cols)))
            + "</tr>"
            for i, r in enumerate(rows)
        )
        text = (
            f"<table class='heatmap'><caption>{esc(title)}</caption>"
            f"<thead><tr><th>{esc(row_axis)} \\ {esc(col_axis)}</th>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
        write_text_atomic(self.folder / "figures" / f"{name}.html", text)

    def line_plot(
        self,
        name: str,
        x: Sequence[float],
        series: Mapping[str, Sequence[float]],
        title: str,
        xlabel: str,
        ylabel: str,
        log_x: bool = False,
    ) -> None:
        """One line per series against x (e.g. accuracy per layer, one line per dataset)."""
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        if log_x:
            ax.set_xscale("log")  # k = 1, 2, 5, 10, ... spreads evenly
        for label, ys in series.items():
            ax.plot(list(x), list(ys), marker="o", label=label)
        if all(isinstance(v, int) for v in x):
            ax.set_xticks(list(x), labels=[str(v) for v in x])  # integers (layers, k): no 2.5 ticks
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(self.folder / "figures" / f"{name}.png", dpi=110)
        plt.close(fig)
        self.figures.append({"name": name, "title": title, "png": f"figures/{name}.png"})

    def finish(self, summary: Mapping[str, Any] | None = None) -> Path:
        """Write index.json (last, atomically) and return its path."""
        index = {
            "title": self.title,
            "summary": json_safe(summary or {}),
            "tables": self.tables,
            "figures": self.figures,
        }
        path = self.folder / "index.json"
        write_text_atomic(path, json.dumps(index, indent=2))
        return path


def matrix_to_rows(
    matrix: Tensor, rows: Sequence[str], cols: Sequence[str], row_key: str, col_key: str, value: str
):
    """Long-format rows [{row_key, col_key, value}] of a matrix (for tidy CSVs)."""
    values = torch.as_tensor(matrix).double()
    return [
        {row_key: r, col_key: c, value: float(values[i, j])}
        for i, r in enumerate(rows)
        for j, c in enumerate(cols)
    ]
