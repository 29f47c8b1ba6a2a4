"""Static report charts: a labelled heatmap and a line plot as PNG, and a heatmap's values as an HTML table.

Uses matplotlib's object API (no pyplot), so no global backend state is touched: reports are written on
servers and in tests, with no display.
"""

from __future__ import annotations

import html
import io
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from torch import Tensor

from interplab.files import write_bytes_atomic, write_text_atomic


def save_png(fig: Figure, path: str | Path, dpi: int = 110, tight: bool = False) -> Path:
    """Write `fig` as a PNG in one step (a killed run never leaves a torn image); `tight` crops the margins."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png", bbox_inches="tight" if tight else None)
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)


def heatmap_png(
    path: Path,
    values_RC: Tensor,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    row_axis: str,
    col_axis: str,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Path:
    """A heatmap with every cell's value printed on it and a colour bar."""
    values = values_RC.detach().cpu().double()
    fig = Figure(figsize=(max(5.0, 2.2 + 0.9 * len(cols)), max(3.6, 1.6 + 0.7 * len(rows))))
    ax = fig.add_subplot()
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
    return save_png(fig, path)


def heatmap_table_html(
    path: Path, values_RC: Tensor, rows: Sequence[str], cols: Sequence[str], title: str, row_axis: str,
    col_axis: str,
) -> Path:
    """The heatmap's values as a plain HTML table (readable without the image, searchable in the page)."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join(
        f"<tr><th>{esc(r)}</th>" + "".join(f"<td>{values_RC[i, j]:.3f}</td>" for j in range(len(cols))) + "</tr>"
        for i, r in enumerate(rows)
    )
    text = (
        f"<table class='heatmap'><caption>{esc(title)}</caption>"
        f"<thead><tr><th>{esc(row_axis)} \\ {esc(col_axis)}</th>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    write_text_atomic(path, text)
    return path


def line_plot_png(
    path: Path,
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
) -> Path:
    """One line per series against x (e.g. accuracy per layer, one line per dataset)."""
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
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
    return save_png(fig, path)


def curves_png(
    path: Path,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    diagonal: bool = False,
) -> Path:
    """One line per curve, each with its own x values (ROC curves); `diagonal` draws y = x for reference."""
    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.add_subplot()
    if diagonal:
        ax.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=1, label="chance")
    for label, (xs, ys) in curves.items():
        ax.plot(list(xs), list(ys), label=label, drawstyle="steps-post")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, 52), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)


def bars_png(
    path: Path,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    ylabel: str,
) -> Path:
    """Grouped bars: one group per entry of `groups`, one bar per series, values printed on the bars."""
    fig = Figure(figsize=(max(4.5, 1.6 + 1.4 * len(groups)), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, list(values), width=width, label=label)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks(range(len(groups)), labels=list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, 52), fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
