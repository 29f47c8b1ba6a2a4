"""Run toy-model presets into a run folder: config.json, metrics.jsonl, weights, PNG + HTML figures, index.json.

Elhage et al. 2022, "Toy Models of Superposition", https://transformer-circuits.pub/2022/toy_model/

Steps for each preset (intro, sweep, phase, dimensionality):
1. Build its config (defaults of `experiments.py` / `phase.py`, with the CLI's overrides).
2. Train (all instances of the preset as one batch).
3. Append one metrics line per trained instance to metrics.jsonl and save W, b as safetensors.
4. Draw the PNG (matplotlib) and the self-contained HTML (inline SVG) figures.
config.json is written first; index.json (a `ReportIndex` of kind "toy", each figure's `group` naming
its preset, files relative to the folder) last, so a folder with index.json is complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from interplab.common import InterplabError, get_logger
from interplab.files import write_text_atomic
from interplab.reports.index import FigureEntry, ReportIndex
from interplab.reports.png_charts import save_png
from interplab.reports.writer import start_report, write_index
from interplab.toy import interactive, metrics
from interplab.toy import static_figures as plots
from interplab.toy.experiments import (
    DimensionalityConfig,
    IntroConfig,
    SparsityRun,
    SweepConfig,
    run_dimensionality,
    run_intro,
    run_sweep,
)
from interplab.toy.phase import PHASES, PhaseConfig, run_phase_diagram

log = get_logger(__name__)

PRESETS = ("intro", "sweep", "phase", "dimensionality")
"""Presets in the order `all` runs them."""

Progress = Callable[[int, int], None]


@dataclass
class Overrides:
    """CLI settings applied on top of every preset's defaults (None keeps the preset's own value)."""

    steps: int | None = None
    """Training steps for every preset (None: each preset's own)."""
    restarts: int | None = None
    """Restarts per condition, the lowest-loss one kept (None: each preset's own; more restarts reach
    the regular polygons more reliably)."""
    seed: int = 0
    """Seed for weight init and synthetic data."""
    device: str | None = None
    """Device for training (None: CUDA when present, else CPU)."""


def preset_config(name: str, ov: Overrides) -> Any:
    """The config dataclass of a preset with the overrides applied."""
    cfg = {
        "intro": IntroConfig,
        "sweep": SweepConfig,
        "phase": PhaseConfig,
        "dimensionality": DimensionalityConfig,
    }.get(name)
    if cfg is None:
        raise InterplabError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)} or all")
    cfg = cfg()
    changes: dict[str, Any] = {"seed": ov.seed, "device": ov.device}
    if ov.steps is not None:
        changes["steps"] = ov.steps
    if ov.restarts is not None:
        changes["restarts"] = ov.restarts
    return replace(cfg, train=replace(cfg.train, **changes))


def _instance_rows(preset: str, model: str, run: SparsityRun) -> list[dict]:
    W = run.fit.W_IMN
    norms, sup = metrics.feature_norms(W), metrics.superposition(W)
    dstar, dims = metrics.dims_per_feature(W), metrics.dimensionality(W)
    return [
        {
            "preset": preset,
            "model": model,
            "sparsity": float(run.sparsity_K[k]),
            "feature_probability": 1 - float(run.sparsity_K[k]),
            "loss": float(run.fit.loss_I[k]),
            "n_represented": int((norms[k] >= 0.5).sum()),
            "dims_per_feature": float(dstar[k]),
            "norms": [round(v, 5) for v in norms[k].tolist()],
            "superposition": [round(v, 5) for v in sup[k].tolist()],
            "dimensionality": [round(v, 5) for v in dims[k].tolist()],
        }
        for k in range(len(run.sparsity_K))
    ]


def _save_weights(path: Path, runs: dict[str, SparsityRun]) -> None:
    tensors = {}
    for name, run in runs.items():
        tensors[f"{name}.W"] = run.fit.W_IMN.clone()
        tensors[f"{name}.b"] = run.fit.b_IN.clone()
        tensors[f"{name}.sparsity"] = run.sparsity_K.clone()
    save_file(tensors, str(path))


def _save_png(fig, path: Path) -> None:
    save_png(fig, path, dpi=100, tight=True)  # 100 dpi keeps files small for the web UI


def _figure(out: Path, name: str, title: str, caption: str, fig, html_fn) -> FigureEntry:
    _save_png(fig, out / f"{name}.png")
    html_fn(out / f"{name}.html")
    return FigureEntry(name=name, title=title, caption=caption, png=f"{name}.png", html=f"{name}.html")


Outcome = tuple[list[dict], list[FigureEntry]]
"""What a preset runner returns: its metrics rows and its figure entries for index.json."""


def _intro(cfg: IntroConfig, out: Path, progress: Progress | None) -> Outcome:
    run = run_intro(cfg, progress)
    _save_weights(out / "intro.safetensors", {"relu": run})
    fig = _figure(
        out,
        "intro",
        "Feature directions in 2-D (n=5, m=2)",
        "Each arrow is one of 5 known features, drawn in the model's 2 inner dimensions. With dense data the model "
        "keeps only the 2 most important, at right angles; with sparse data it squeezes in all 5, as a pentagon.",
        plots.plot_intro(run),
        lambda p: interactive.intro_html(run, p),
    )
    return _instance_rows("intro", "relu", run), [fig]


def _sweep(cfg: SweepConfig, out: Path, progress: Progress | None) -> Outcome:
    sweep = run_sweep(cfg, progress)
    _save_weights(out / "sweep.safetensors", {"linear": sweep.linear, "relu": sweep.relu})
    rows = _instance_rows("sweep", "linear", sweep.linear) + _instance_rows("sweep", "relu", sweep.relu)
    fig = _figure(
        out,
        "sweep",
        "‖W_i‖ and superposition: linear vs ReLU (n=20, m=5)",
        "Bar length: how strongly the model represents each feature (most important on top); colour: how much it "
        "shares dimensions with others. The linear model keeps only the top 5; the ReLU model packs in more, "
        "sharing dimensions, as the data gets sparser.",
        plots.plot_sweep(sweep),
        lambda p: interactive.sweep_html(sweep, p),
    )
    return rows, [fig, _wtw_figure(out, sweep.relu)]


def _phase(cfg: PhaseConfig, out: Path, progress: Progress | None) -> Outcome:
    diag = run_phase_diagram(cfg, progress)
    rows = [
        {
            "preset": "phase",
            "model": "relu",
            "feature_probability": float(d),
            "importance_ratio": float(r),
            "phase": PHASES[int(diag.phase_RD[ri, di])],
            "loss": float(diag.loss_RD[ri, di]),
            "W": diag.W_RDN[ri, di].tolist(),
            "b": diag.b_RDN[ri, di].tolist(),
        }
        for ri, r in enumerate(diag.ratio_R)
        for di, d in enumerate(diag.density_D)
    ]
    fig = _figure(
        out,
        "phase",
        "Phase diagram (n=2, m=1)",
        "What the model does with the second feature for each mix of how often it appears (across) and how much it "
        "matters (up): ignore it, give it its own dimension, or share one dimension with the first feature "
        "pointing the opposite way.",
        plots.plot_phase(diag),
        lambda p: interactive.phase_html(diag, p),
    )
    return rows, [fig]


def _dimensionality(cfg: DimensionalityConfig, out: Path, progress: Progress | None) -> Outcome:
    run = run_dimensionality(cfg, progress)
    _save_weights(out / "dimensionality.safetensors", {"relu": run})
    fig = _figure(
        out,
        "dimensionality",
        "Dimensions per feature (uniform importance, n=200, m=20)",
        "How many inner dimensions each feature gets as the data gets sparser (rightwards): left, the average "
        "(D* = m/‖W‖²_F), which stays at 1/2 for a while; right, each feature (D_i), which clusters at simple "
        "fractions such as 3/4, 2/3, 1/2, 2/5 and 3/8 (geometric shapes).",
        plots.plot_dimensionality(run),
        lambda p: interactive.dimensionality_html(run, p),
    )
    return _instance_rows("dimensionality", "relu", run), [fig]


_RUNNERS: dict[str, Callable[[Any, Path, Progress | None], Outcome]] = {
    "intro": _intro,
    "sweep": _sweep,
    "phase": _phase,
    "dimensionality": _dimensionality,
}


def _wtw_figure(out: Path, run: SparsityRun) -> FigureEntry:
    _save_png(plots.plot_wtw(run), out / "sweep_wtw.png")
    return FigureEntry(
        name="sweep_wtw",
        title="WᵀW and b of the ReLU model (n=20, m=5)",
        caption="A grid of feature against feature: coloured cells off the diagonal mark pairs of features that "
                "share dimensions and so interfere (red: same direction, blue: opposite).",
        png="sweep_wtw.png",
    )


def run_presets(
    names: list[str],
    out: str | Path,
    ov: Overrides,
    progress_for: Callable[[str], Progress | None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Run the named presets into `out` and write config.json, metrics.jsonl, index.json; return `out`.
    A folder holding a finished report is replaced only with `overwrite`."""
    configs = {name: preset_config(name, ov) for name in names}  # bad names fail before anything is written
    out = start_report(out, overwrite=overwrite)
    write_text_atomic(out / "config.json", json.dumps({n: asdict(c) for n, c in configs.items()}, indent=2))
    index = ReportIndex(title=f"Toy models of superposition: {', '.join(names)}", kind="toy",
                        summary={"presets": ", ".join(names)})
    with open(out / "metrics.jsonl", "w", encoding="utf-8") as f:
        for name in names:
            log.info("toy preset %s", name)
            rows, figs = _RUNNERS[name](configs[name], out, progress_for(name) if progress_for else None)
            f.writelines(json.dumps(r) + "\n" for r in rows)
            index.figures.extend(replace(fig, group=name) for fig in figs)
    write_index(out, index)
    return out
