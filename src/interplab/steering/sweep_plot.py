"""Figures of a steering sweep: target and perplexity against the coefficient (PNG and offline HTML).

Two panels side by side, sharing the coefficient axis, so the trade-off reads at a glance: the target
should move with the coefficient while perplexity stays near its value at 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from interplab.reports.png_charts import save_png
from interplab.reports.svg_charts import Panel, write_page

SWEEP_CAPTION = "Target behaviour and coherence (perplexity of the completions under the unsteered model)."
"""How to read the sweep figure (shown in the HTML page and on the report page)."""


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _lim(values: Sequence[float]) -> tuple[float, float]:
    kept = _finite(values) or [0.0, 1.0]
    lo, hi = min(kept), max(kept)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 0.5)
    return lo - pad, hi + pad


def sweep_png(rows: Sequence[Any], target_name: str, path: str | Path, title: str) -> Path:
    """Target (left) and perplexity (right, log scale) against the coefficient."""
    coefs = [r.coef for r in rows]
    fig = Figure(figsize=(9, 3.4))
    for k, (name, values, color) in enumerate(
        (
            (target_name, [r.target for r in rows], "#1f77b4"),
            ("perplexity", [r.perplexity for r in rows], "#d62728"),
        )
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.plot(coefs, values, marker="o", color=color)
        kept = _finite(values)
        if name == "perplexity" and kept and min(kept) > 0 and max(kept) / min(kept) > 20:
            ax.set_yscale("log")  # only when steering blows perplexity up by orders of magnitude
        ax.axvline(0, color="#999", lw=0.8, ls="--")
        ax.set_xlabel("coefficient")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=100, tight=True)


def sweep_html(rows: Sequence[Any], target_name: str, path: str | Path, title: str) -> Path:
    """The same two panels as self-contained HTML; hover a point for its numbers and an example."""
    coefs = [r.coef for r in rows]
    tips = [
        f"coef {r.coef:g}\n{target_name} {r.target:.3g}\nperplexity {r.perplexity:.3g}"
        f"\ne.g. {r.example[:80]!r}"
        for r in rows
    ]
    panels = []
    for name, values, color in (
        (target_name, [r.target for r in rows], "#1f77b4"),
        ("perplexity", [r.perplexity for r in rows], "#d62728"),
    ):
        panel = Panel(
            name, _lim(coefs), _lim(values), xlabel="coefficient", ylabel=name, width=380, height=280
        )
        pts = [(c, v) for c, v in zip(coefs, values, strict=True) if math.isfinite(v)]
        if pts:
            panel.line([c for c, _ in pts], [v for _, v in pts], color=color)
        keep = [i for i, v in enumerate(values) if math.isfinite(v)]
        panel.points(
            [coefs[i] for i in keep], [values[i] for i in keep], colors=color, tips=[tips[i] for i in keep]
        )
        panels.append(panel)
    return write_page(path, title, panels, SWEEP_CAPTION)
