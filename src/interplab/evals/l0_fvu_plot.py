"""The L0 vs FVU trajectory of an SAE run: PNG for papers, self-contained HTML to explore."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from interplab.common import InterplabError
from interplab.reports.png_charts import save_png
from interplab.reports.svg_charts import Panel, write_page


def _points(records: Sequence[dict[str, Any]]) -> tuple[list[float], list[float], list[int]]:
    rows = [r for r in records if r.get("l0") is not None and r.get("fvu") is not None]
    if not rows:
        raise InterplabError("no metrics with l0 and fvu to plot; train for at least log_every steps")
    return [float(r["l0"]) for r in rows], [float(r["fvu"]) for r in rows], [int(r["step"]) for r in rows]


def plot_l0_fvu(records: Sequence[dict[str, Any]], out_dir: str | Path, final: dict[str, float] | None = None,
                title: str = "L0 vs FVU during training") -> tuple[Path, Path]:
    """Write out_dir/l0_fvu.png and out_dir/l0_fvu.html from metrics records (step, l0, fvu).

    Each point is one logged training step (the batch's L0 and FVU), coloured by step; `final` (an
    evaluation with l0 and fvu) is drawn as a star. Returns (png path, html path).
    """
    l0, fvu, steps = _points(records)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    sc = ax.scatter(l0, fvu, c=steps, cmap="viridis", s=14)
    fig.colorbar(sc, ax=ax, label="step")
    if final is not None:
        ax.scatter([final["l0"]], [final["fvu"]], marker="*", s=160, c="red", label="final eval")
        ax.legend()
    ax.set_xlabel("L0 (active latents per token)")
    ax.set_ylabel("FVU (fraction of variance unexplained)")
    ax.set_title(title)
    fig.tight_layout()
    png = save_png(fig, out_dir / "l0_fvu.png", dpi=120)

    xs = [*l0, *([final["l0"]] if final else [])]
    ys = [*fvu, *([final["fvu"]] if final else [])]
    pad_x, pad_y = 0.05 * (max(xs) - min(xs) or 1), 0.05 * (max(ys) - min(ys) or 1)
    panel = Panel(title, (min(xs) - pad_x, max(xs) + pad_x), (min(ys) - pad_y, max(ys) + pad_y),
                  xlabel="L0", ylabel="FVU", width=520, height=380)
    panel.line(l0, fvu, color="#bbb", width=1)
    panel.points(l0, fvu, tips=[f"step {s}\nL0 {a:.2f}\nFVU {b:.4f}" for s, a, b in zip(steps, l0, fvu, strict=True)])
    if final is not None:
        panel.points([final["l0"]], [final["fvu"]], colors="#d62728", r=7,
                     tips=[f"final eval\nL0 {final['l0']:.2f}\nFVU {final['fvu']:.4f}"])
    html = write_page(out_dir / "l0_fvu.html", title, [panel], caption="Hover a point for its step, L0 and FVU.")
    return png, html
