"""Interactive (self-contained HTML + inline SVG) versions of the toy-model figures, with hover tooltips.

Same content as `static_figures.py` (Elhage et al. 2022, https://transformer-circuits.pub/2022/toy_model/):
1. `intro_html`: feature directions in 2-D; hover a feature for its index, importance, ‖W_i‖, bias.
2. `sweep_html`: ‖W_i‖ bars colored by superposition; hover for the numbers.
3. `phase_html`: phase diagram; hover a cell for its phase, W and b.
4. `dimensionality_html`: D* and D_i against 1/(1-S) with the stable fractions.
Everything is drawn by `interplab.reports.svg_charts.Panel`, so the files open offline in any browser.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.colors import to_hex

from interplab.reports.svg_charts import Panel, write_page
from interplab.toy import metrics
from interplab.toy.experiments import SparsityRun, SweepResult
from interplab.toy.phase import PHASES, PhaseDiagram
from interplab.toy.static_figures import FRACTIONS, PHASE_COLORS, SUPERPOSITION_CMAP


def _color(cmap: str, v: float) -> str:
    return to_hex(colormaps[cmap](min(max(v, 0.0), 1.0)))


def _legend(items: list[tuple[str, str]]) -> str:
    spans = "".join(
        f'<span style="display:inline-block;margin-right:12px"><span style="display:inline-block;'
        f'width:12px;height:12px;background:{c};margin-right:4px"></span>{name}</span>'
        for c, name in items
    )
    return f"<p>{spans}</p>"


def intro_html(run: SparsityRun, path: str | Path) -> Path:
    """Feature directions W_i in 2-D, one panel per sparsity."""
    W_KMN, b_KN = run.fit.W_IMN, run.fit.b_IN
    norms_KN = metrics.feature_norms(W_KMN)
    K, _, n = W_KMN.shape
    panels = []
    for k in range(K):
        p = Panel(
            f"1-S = {1 - float(run.sparsity_K[k]):.3g}",
            (-1.5, 1.5),
            (-1.5, 1.5),
            width=240,
            height=240,
            axes=False,
        )
        p.line((-1.5, 1.5), (0, 0), color="#eee", width=1)
        p.line((0, 0), (-1.5, 1.5), color="#eee", width=1)
        for i in range(n):
            x, y = float(W_KMN[k, 0, i]), float(W_KMN[k, 1, i])
            tip = (
                f"feature {i}\nimportance {float(run.importance_N[i]):.3f}\n‖W_i‖ {float(norms_KN[k, i]):.3f}"
                f"\nbias {float(b_KN[k, i]):.3f}"
            )
            c = _color("viridis", i / max(n - 1, 1))
            p.line((0, x), (0, y), color=c, width=3, tip=tip)
            p.points([x], [y], c, [tip], r=5)
        panels.append(p)
    caption = (
        "Each line is one feature's direction W_i in the 2-D hidden space (purple = most important). "
        "Dense: only the 2 most important features, orthogonal. Sparse: all 5, as a pentagon."
    )
    return write_page(path, f"Toy model n={n}, m=2: feature directions", panels, caption)


def _bars_panel(run: SparsityRun, k: int, name: str) -> Panel:
    norms_N = metrics.feature_norms(run.fit.W_IMN)[k]
    sup_N = metrics.superposition(run.fit.W_IMN)[k]
    n = len(norms_N)
    p = Panel(
        f"{name}, 1-S = {1 - float(run.sparsity_K[k]):.3g}",
        (0, 1.3),
        (n, 0),
        xlabel="‖W_i‖",
        width=190,
        height=max(200, 14 * n + 70),
    )
    for i in range(n):
        tip = (
            f"feature {i}\nimportance {float(run.importance_N[i]):.3g}\n‖W_i‖ {float(norms_N[i]):.3f}\n"
            f"superposition {float(sup_N[i]):.3f}"
        )
        p.rect(0, i + 0.1, float(norms_N[i]), i + 0.9, _color(SUPERPOSITION_CMAP, 0.9 * float(sup_N[i])), tip)
    return p


def sweep_html(sweep: SweepResult, path: str | Path) -> Path:
    """‖W_i‖ bars (top = most important feature), color = superposition; linear row, then ReLU row."""
    K = len(sweep.relu.sparsity_K)
    panels = [
        _bars_panel(run, k, name)
        for name, run in (("linear", sweep.linear), ("ReLU", sweep.relu))
        for k in range(K)
    ]
    caption = (
        "Bar length: ‖W_i‖ (1 = feature represented). Bar color: Σ_j≠i (Ŵ_i·W_j)², black = own dimension, "
        "yellow = superposition. The linear model keeps only the top m features; the ReLU model adds more "
        "features in superposition as sparsity rises, least important first."
    )
    legend = _legend(
        [
            (_color(SUPERPOSITION_CMAP, 0.0), "no superposition"),
            (_color(SUPERPOSITION_CMAP, 0.9), "superposition ≥ 1"),
        ]
    )
    n, m = sweep.relu.fit.W_IMN.shape[2], sweep.relu.fit.W_IMN.shape[1]
    return write_page(
        path, f"Toy model n={n}, m={m}: linear vs ReLU across sparsity", panels, caption, legend
    )


def phase_html(diagram: PhaseDiagram, path: str | Path) -> Path:
    """The n=2, m=1 phase diagram as a grid of hoverable cells on log axes."""
    d, r = diagram.density_D.tolist(), diagram.ratio_R.tolist()
    p = Panel(
        "phase of feature 2",
        (d[0] / 1.5, d[-1] * 1.5),
        (r[0] / 1.5, r[-1] * 1.5),
        "feature density 1-S",
        "relative importance of feature 2",
        xlog=True,
        ylog=True,
        width=480,
        height=420,
    )
    for ri in range(len(r)):
        for di in range(len(d)):
            code = int(diagram.phase_RD[ri, di])
            w, b = diagram.W_RDN[ri, di].tolist(), diagram.b_RDN[ri, di].tolist()
            tip = (
                f"{PHASES[code]}\ndensity {d[di]:.3g}, importance ratio {r[ri]:.3g}\n"
                f"W = [{w[0]:.2f}, {w[1]:.2f}], b = [{b[0]:.2f}, {b[1]:.2f}]"
            )
            x0, x1 = _cell(d, di)
            y0, y1 = _cell(r, ri)
            p.rect(x0, y0, x1, y1, PHASE_COLORS[code], tip)
    caption = (
        "Two features, one dimension. Dense features: the more important one gets the dimension. Sparse "
        "features: both share it antipodally (W_1 = -W_2) and the ReLU filters the interference."
    )
    return write_page(
        path, "Phase diagram, n=2, m=1", [p], caption, _legend(list(zip(PHASE_COLORS, PHASES, strict=True)))
    )


def _cell(centers: list[float], i: int) -> tuple[float, float]:
    """Geometric-midpoint edges of cell i of a log-spaced grid."""
    lo = (centers[i] * centers[i - 1]) ** 0.5 if i > 0 else centers[0] / 1.5
    hi = (centers[i] * centers[i + 1]) ** 0.5 if i + 1 < len(centers) else centers[-1] * 1.5
    return lo, hi


def dimensionality_html(run: SparsityRun, path: str | Path) -> Path:
    """D* (left) and per-feature D_i (right) against 1/(1-S), with the stable fractions as dashed lines."""
    inv = (1 / (1 - run.sparsity_K)).tolist()
    dstar = metrics.dims_per_feature(run.fit.W_IMN).tolist()
    D_KN = metrics.dimensionality(run.fit.W_IMN)
    xlim = (min(inv) / 1.2, max(inv) * 1.2)
    left = Panel(
        "D* = m / ‖W‖²_F",
        xlim,
        (0, 1.1),
        "1/(1-S)",
        "dimensions per feature",
        xlog=True,
        width=420,
        height=320,
    )
    right = Panel(
        "feature dimensionality D_i", xlim, (0, 1.1), "1/(1-S)", "D_i", xlog=True, width=420, height=320
    )
    for p in (left, right):
        for frac, label in FRACTIONS:
            p.hline(frac, label)
    left.line(inv, dstar, color="#000")
    left.points(
        inv, dstar, "#000", [f"1/(1-S) = {x:.3g}\nD* = {v:.3f}" for x, v in zip(inv, dstar, strict=True)]
    )
    for k, x in enumerate(inv):
        ds = [v for v in D_KN[k].tolist() if v > 0.05]
        # Spread the points a little in x so overlapping features stay hoverable.
        xs = [x * (1 + 0.08 * ((j % 9) - 4) / 4) for j in range(len(ds))]
        right.points(xs, ds, "#1f77b4", [f"1/(1-S) = {x:.3g}\nD_i = {v:.3f}" for v in ds], r=2.5)
    caption = (
        "D* counts hidden dimensions per learned feature. With uniform importance it falls from 1 as "
        "features get sparser and sticks at 1/2 (antipodal pairs) over a range of sparsities; the D_i of "
        "single features cluster at the fractions of the paper's stable shapes."
    )
    return write_page(
        path, "Dimensionality: n={}, m={}".format(*run.fit.W_IMN.shape[2:0:-1]), [left, right], caption
    )
