"""Static (PNG) figures of the toy models, in the style of Elhage et al. 2022.

https://transformer-circuits.pub/2022/toy_model/

Figures:
1. `plot_intro`: each feature's direction W_i in the 2-D hidden space, one panel per sparsity.
2. `plot_sweep`: ‖W_i‖ bars colored by superposition Σ_{j≠i}(Ŵ_i·W_j)² (black: none, yellow: ≥ 1), linear vs ReLU.
3. `plot_wtw`: WᵀW and b per sparsity (which features interfere with which).
4. `plot_phase`: the n=2, m=1 phase diagram.
5. `plot_dimensionality`: D* = m/‖W‖_F² and per-feature D_i against 1/(1-S), with the fractions ¾ ⅔ ½ ⅖ ⅜.
Uses matplotlib's object API (no pyplot) so no global backend state is touched.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from interplab.toy import metrics
from interplab.toy.experiments import SparsityRun, SweepResult
from interplab.toy.phase import PHASES, PhaseDiagram

FRACTIONS = ((1.0, "1"), (3 / 4, "3/4"), (2 / 3, "2/3"), (1 / 2, "1/2"), (2 / 5, "2/5"), (3 / 8, "3/8"))
"""Dimensionality of the paper's stable configurations: dedicated, tetrahedron (3/4), triangle (2/3),
antipodal pair (1/2), pentagon (2/5), square antiprism (3/8)."""
PHASE_COLORS = ("#cfd8dc", "#1f77b4", "#ff7f0e")
"""Colors of PHASES: not learned (grey), dedicated (blue), superposition (orange)."""
SUPERPOSITION_CMAP = "inferno"
"""Black (no superposition) to yellow (≥ 1), as in the paper's bar charts."""


def _sparsity_title(s: float) -> str:
    return f"1-S = {1 - s:.3g}"


def plot_intro(run: SparsityRun) -> Figure:
    """Feature directions W_i in the m=2 hidden plane, one panel per sparsity."""
    W_KMN = run.fit.W_IMN.numpy()
    K, _, n = W_KMN.shape
    fig = Figure(figsize=(2.4 * K, 2.8))
    cmap = colormaps["viridis"]
    imp = run.importance_N.numpy()
    for k in range(K):
        ax = fig.add_subplot(1, K, k + 1)
        for i in range(n):
            c = cmap(i / max(n - 1, 1))
            ax.plot([0, W_KMN[k, 0, i]], [0, W_KMN[k, 1, i]], color=c, lw=2)
            ax.scatter(
                [W_KMN[k, 0, i]],
                [W_KMN[k, 1, i]],
                color=c,
                s=18,
                zorder=3,
                label=f"feature {i} (I={imp[i]:.2f})",
            )
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(_sparsity_title(float(run.sparsity_K[k])), fontsize=9)
    fig.axes[-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"Feature directions W_i in 2-D (n={n}, m=2; color: importance, purple = most)", fontsize=10)
    return fig


def _norm_bars(ax, run: SparsityRun, k: int) -> None:
    W_KMN = run.fit.W_IMN
    norms = metrics.feature_norms(W_KMN)[k].numpy()
    sup = metrics.superposition(W_KMN)[k].clamp(0, 1).numpy()
    n = len(norms)
    ax.barh(np.arange(n), norms, color=colormaps[SUPERPOSITION_CMAP](sup * 0.9), height=0.8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, 1.3)
    ax.set_yticks([])
    ax.set_xticks([0, 1])


def plot_sweep(sweep: SweepResult) -> Figure:
    """‖W_i‖ (bar length) and superposition (bar color) per feature: linear vs ReLU across sparsity."""
    K = len(sweep.relu.sparsity_K)
    fig = Figure(figsize=(1.6 * K + 0.8, 5.2))
    for row, (name, run) in enumerate((("linear", sweep.linear), ("ReLU", sweep.relu))):
        for k in range(K):
            ax = fig.add_subplot(2, K, row * K + k + 1)
            _norm_bars(ax, run, k)
            if row == 0:
                ax.set_title(_sparsity_title(float(run.sparsity_K[k])), fontsize=9)
            if k == 0:
                ax.set_ylabel(f"{name}\nfeature (most important on top)", fontsize=8)
    n, m = sweep.relu.fit.W_IMN.shape[2], sweep.relu.fit.W_IMN.shape[1]
    fig.suptitle(
        f"‖W_i‖ per feature, color = superposition (black none, yellow ≥1); n={n}, m={m}", fontsize=10
    )
    return fig


def plot_wtw(run: SparsityRun, title: str = "ReLU model") -> Figure:
    """WᵀW (red +, blue -) with the bias b as an extra column, one panel per sparsity."""
    W_KMN = run.fit.W_IMN.numpy()
    K, _, n = W_KMN.shape
    fig = Figure(figsize=(2.2 * K, 2.6))
    for k in range(K):
        ax = fig.add_subplot(1, K, k + 1)
        wtw = W_KMN[k].T @ W_KMN[k]
        img = np.concatenate([wtw, np.full((n, 1), np.nan), run.fit.b_IN[k].numpy()[:, None]], axis=1)
        ax.imshow(img, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(_sparsity_title(float(run.sparsity_K[k])), fontsize=9)
    fig.suptitle(f"WᵀW and b ({title}); red positive, blue negative", fontsize=10)
    return fig


def plot_phase(diagram: PhaseDiagram) -> Figure:
    """Phase of feature 2 per (density, relative importance) cell."""
    fig = Figure(figsize=(5.2, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    d, r = diagram.density_D.numpy(), diagram.ratio_R.numpy()
    ax.pcolormesh(
        _edges(d),
        _edges(r),
        diagram.phase_RD.numpy(),
        cmap=ListedColormap(PHASE_COLORS),
        vmin=-0.5,
        vmax=2.5,
        shading="flat",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("feature density 1-S")
    ax.set_ylabel("relative importance of feature 2")
    handles = [ax.bar([0], [0], color=c, label=name) for c, name in zip(PHASE_COLORS, PHASES, strict=True)]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title("n=2, m=1 phase diagram (feature 2)", fontsize=10)
    return fig


def _edges(centers: np.ndarray) -> np.ndarray:
    """Cell edges for log-spaced centers (geometric midpoints)."""
    logc = np.log10(centers)
    if len(centers) == 1:
        return 10 ** np.array([logc[0] - 0.5, logc[0] + 0.5])
    mid = (logc[1:] + logc[:-1]) / 2
    return 10 ** np.concatenate([[2 * logc[0] - mid[0]], mid, [2 * logc[-1] - mid[-1]]])


def plot_dimensionality(run: SparsityRun) -> Figure:
    """D* against 1/(1-S) (left) and every feature's D_i (right), with the stable fractions marked."""
    inv_K = (1 / (1 - run.sparsity_K)).numpy()
    W_KMN = run.fit.W_IMN
    dstar = metrics.dims_per_feature(W_KMN).numpy()
    D_KN = metrics.dimensionality(W_KMN).numpy()
    fig = Figure(figsize=(10, 4))
    fig.subplots_adjust(wspace=0.35)  # room for the fraction labels right of the left panel
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.plot(inv_K, dstar, "o-", color="black")
    ax1.set_ylabel("dimensions per feature D* = m / ‖W‖²_F")
    for k in range(len(inv_K)):
        learned = D_KN[k] > 0.05
        jitter = np.exp(np.random.default_rng(k).uniform(-0.04, 0.04, learned.sum()))
        ax2.scatter(inv_K[k] * jitter, D_KN[k][learned], s=4, alpha=0.4, color="tab:blue")
    ax2.set_ylabel("feature dimensionality D_i")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("1 / (1 - S)")
        ax.set_ylim(0, 1.1)
        for frac, label in FRACTIONS:
            ax.axhline(frac, color="grey", lw=0.6, ls="--")
            # x in axes coordinates, y in data: labels sit just right of the plot whatever the x range.
            ax.text(
                1.01, frac, label, fontsize=8, va="center", color="grey", transform=ax.get_yaxis_transform()
            )
    n, m = W_KMN.shape[2], W_KMN.shape[1]
    fig.suptitle(f"Uniform importance, n={n}, m={m}: D* sticks at 1/2 (antipodal pairs)", fontsize=10)
    return fig
