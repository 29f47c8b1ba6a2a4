"""The unlearning report folder (kind "unlearning"): the side-by-side table, runs, curves and figures.

Tables: `summary` (per method: mean ± std over seeds, verdicts), `runs` (one row per method and seed,
with the verdict's reasons and timings), `relearning`, `probes`, `direction_removal` (long format).
Figures (PNG + interactive HTML): relearning curves, probe accuracy by layer, forget/retain trade-off.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interplab.reports import FigureEntry, ReportWriter
from interplab.reports.svg_charts import Panel, write_page
from interplab.unlearning.evaluate import ORGANISM, ArmResult
from interplab.unlearning.verdict import collateral

KIND = "unlearning"
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
_SECONDS = ("unlearn_wall", "unlearn_cpu", "eval_wall", "eval_cpu")
_SUMMARY_METRICS = ("forget_qa_em", "forget_qa_prob", "forget_paraphrase_em", "forget_mc", "retain_qa_em",
                    "retain_paraphrase_em", "retain_mc", "fluency_ppl")


def _methods(results: Sequence[ArmResult]) -> list[str]:
    return list(dict.fromkeys(r.method for r in results))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _best(points: Sequence[tuple[int, float]]) -> float | None:
    return max(a for _, a in points) if points else None


def run_row(r: ArmResult) -> dict[str, Any]:
    ev = r.evidence()
    return {"method": r.method, "seed": r.seed, **r.metrics, "chance": r.chance, "chance_held_out": r.chance_held_out, "relearn_best": ev.relearn_best,
            "relearn_final": r.relearn[-1][1] if r.relearn else None, "probe_best": ev.probe_best,
            "probe_choice": r.probe_choice, "probe_validation": r.probe_validation,
            "probe_chance": r.probe_chance, "direction_best": ev.direction_best, "verdict": r.verdict,
            "reasons": "; ".join(r.reasons), "collateral": bool(r.verdict) and collateral(ev), "dtype": r.dtype,
            **{f"{k}_s": round(r.seconds[k], 1) if k in r.seconds else None for k in _SECONDS}}


def summary_rows(results: Sequence[ArmResult]) -> list[dict[str, Any]]:
    """Per method: mean and std over seeds of each number, and how often each verdict came out."""
    rows = []
    for method in _methods(results):
        mine = [run_row(r) for r in results if r.method == method]
        row: dict[str, Any] = {"method": method, "seeds": len(mine)}
        for key in (*_SUMMARY_METRICS, "chance", "chance_held_out", "relearn_best", "probe_best", "probe_chance", "direction_best"):
            mean, std = _mean_std([m[key] for m in mine])
            row[key], row[f"{key}_std"] = mean, std
        verdicts = Counter(m["verdict"] for m in mine if m["verdict"])
        row["verdict"] = "; ".join(f"{v} ({n}/{len(mine)})" for v, n in verdicts.items()) if verdicts else "reference"
        damaged = sum(bool(m.get("collateral")) for m in mine)
        row["collateral"] = damaged
        if damaged:
            row["verdict"] += f"; retain damaged ({damaged}/{len(mine)})"
        rows.append(row)
    return rows


_MD_COLUMNS = (("forget_qa_em", "forget EM"), ("forget_paraphrase_em", "forget para"), ("forget_mc", "forget MC"),
               ("retain_qa_em", "retain EM"), ("fluency_ppl", "ppl"), ("relearn_best", "relearn"),
               ("probe_best", "probe"), ("direction_best", "dir. removal"))


def markdown_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The side-by-side table (rows of `summary_rows`) in Markdown: mean ± std over seeds, chance levels
    in the header, the verdicts with how many seeds gave each."""
    def cell(row: dict[str, Any], key: str) -> str:
        mean, std = row.get(key), row.get(f"{key}_std")
        if mean is None or mean != mean:
            return "–"
        digits = 1 if key == "fluency_ppl" else 2
        return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if row.get("seeds", 1) > 1 and std == std else "")

    def level(key: str) -> float | None:
        values = [r.get(key) for r in rows if r["method"] != ORGANISM]
        known = [v for v in values if isinstance(v, float) and v == v]
        return statistics.fmean(known) if known else None

    chance = ", ".join(f"{label} {level(key):.2f}" for key, label in (
        ("chance", "forget set"), ("chance_held_out", "held-out people"), ("probe_chance", "probe"))
        if level(key) is not None)
    lines = ["| method | seeds | " + " | ".join(label for _, label in _MD_COLUMNS) + " | verdict |",
             "| --- | --- | " + " | ".join("---" for _ in _MD_COLUMNS) + " | --- |"]
    lines += [f"| {r['method']} | {r['seeds']} | " + " | ".join(cell(r, k) for k, _ in _MD_COLUMNS)
              + f" | {r['verdict']} |" for r in rows]
    return "\n".join(lines) + (f"\n\nChance (best constant answer): {chance}.\n" if chance else "\n")


def _mean_curves(results: Sequence[ArmResult], attr: str) -> tuple[list[int], dict[str, list[float]]]:
    curves: dict[str, dict[int, list[float]]] = {}
    for r in results:
        for x, y in getattr(r, attr):
            curves.setdefault(r.method, {}).setdefault(x, []).append(y)
    xs = sorted({x for c in curves.values() for x in c})
    series = {m: [statistics.fmean(c[x]) if x in c else float("nan") for x in xs] for m, c in curves.items()}
    return xs, series


def _lines_html(path: Path, title: str, xs: list[int], series: dict[str, list[float]], xlabel: str, ylabel: str,
                caption: str, reference: float | None) -> None:
    panel = Panel(title, (min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1), (0.0, 1.0), xlabel, ylabel,
                  width=560, height=360)
    legend = []
    for (name, ys), color in zip(series.items(), _COLORS * 3, strict=False):
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y == y]
        if pts:
            panel.line([p[0] for p in pts], [p[1] for p in pts], color=color, tip=name)
            panel.points([p[0] for p in pts], [p[1] for p in pts], color,
                         [f"{name}: {xlabel} {x} -> {y:.3f}" for x, y in pts])
        legend.append(f'<span style="color:{color}">&#9632; {name}</span>')
    if reference is not None:
        panel.hline(reference, f"chance {reference:.2f}")
    write_page(path, title, [panel], caption, " ".join(legend))


def _scatter_png(path: Path, points: dict[str, tuple[float, float]], title: str) -> None:
    from matplotlib.figure import Figure

    from interplab.reports.png_charts import save_png

    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.add_subplot()
    for (name, (x, y)), color in zip(points.items(), _COLORS * 3, strict=False):
        ax.scatter([x], [y], color=color, s=50, label=name)
    ax.set_xlabel("forget exact match (as served; lower is better)")
    ax.set_ylabel("retain exact match (higher is better)")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def _scatter_html(path: Path, points: dict[str, tuple[float, float]], title: str, caption: str) -> None:
    panel = Panel(title, (0.0, 1.0), (0.0, 1.0), "forget exact match", "retain exact match", width=460, height=400)
    legend = []
    for (name, (x, y)), color in zip(points.items(), _COLORS * 3, strict=False):
        panel.points([x], [y], color, [f"{name}: forget {x:.3f}, retain {y:.3f}"], r=6)
        legend.append(f'<span style="color:{color}">&#9679; {name}</span>')
    write_page(path, title, [panel], caption, " ".join(legend))


def _figure(writer: ReportWriter, name: str, title: str, caption: str) -> None:
    writer.add_figure(FigureEntry(name=name, title=title, png=f"figures/{name}.png", html=f"figures/{name}.html",
                                  caption=caption))


def write_report(folder: str | Path, results: Sequence[ArmResult], config: dict[str, Any], summary: dict[str, Any],
                 overwrite: bool = False, title: str = "Unlearning: removed or suppressed?") -> Path:
    """Write the report folder (index.json last) and return its path."""
    from interplab.reports.png_charts import line_plot_png

    writer = ReportWriter(folder, title, KIND, overwrite=overwrite)
    writer.write_config(config)
    for r in results:
        writer.log_metric(**run_row(r))
    writer.table("summary", summary_rows(results), "Side by side: mean (and std) over seeds")
    writer.table("runs", [run_row(r) for r in results], "Every method and seed, with the verdict's reasons")
    attacked = [r for r in results if r.method != ORGANISM]
    chance = statistics.fmean(r.chance_held_out for r in attacked) if attacked else None
    xs, series = _mean_curves(attacked, "relearn")
    if xs:
        caption = "Held-out forget exact match while fine-tuning on the other forget facts (mean over seeds)."
        line_plot_png(writer.figure_path("relearning", "png"), xs, series, "Relearning attack", "step",
                      "held-out exact match")
        _lines_html(writer.figure_path("relearning", "html"), "Relearning attack", xs, series, "step",
                    "held-out exact match", caption, chance)
        _figure(writer, "relearning", "Relearning attack", caption)
        writer.table("relearning", [{"method": r.method, "seed": r.seed, "step": s, "heldout_em": a}
                                    for r in attacked for s, a in r.relearn], "Relearning curves")
    xs, series = _mean_curves(results, "probe")
    if xs:
        chance = statistics.fmean(r.probe_chance for r in results if r.probe_chance is not None)
        caption = "Probes trained on known people decode held-out forget people's attribute (mean over seeds)."
        line_plot_png(writer.figure_path("probes", "png"), xs, series, "Probe attack by layer", "layer",
                      "held-out probe accuracy")
        _lines_html(writer.figure_path("probes", "html"), "Probe attack by layer", xs, series, "layer",
                    "held-out probe accuracy", caption, chance)
        _figure(writer, "probes", "Probe attack by layer", caption)
        writer.table("probes", [{"method": r.method, "seed": r.seed, "layer": layer, "accuracy": a,
                                 "chance": r.probe_chance} for r in results for layer, a in r.probe],
                     "Probe accuracy by layer")
    if any(r.direction for r in attacked):
        writer.table("direction_removal", [{"method": r.method, "seed": r.seed, "layer": layer, "heldout_em": a}
                                           for r in attacked for layer, a in r.direction],
                     "Held-out exact match with the top difference direction removed")
    points = {row["method"]: (row["forget_qa_em"], row["retain_qa_em"]) for row in summary_rows(results)}
    caption = "Forget vs retain exact match as served (mean over seeds): low-right is the goal, but see the verdicts."
    _scatter_png(writer.figure_path("tradeoff", "png"), points, "Forget / retain trade-off")
    _scatter_html(writer.figure_path("tradeoff", "html"), points, "Forget / retain trade-off", caption)
    _figure(writer, "tradeoff", "Forget / retain trade-off", caption)
    return writer.finish(summary)
