"""A tiny offline chart builder: inline-SVG panels with hover tooltips in one self-contained HTML file.

Why not plotly/bokeh: the web UI and students must open the figures with no internet and no extra
packages, so every figure is plain SVG plus ~10 lines of inline JS for the tooltips (no CDN, no fetch).

Usage:
1. `Panel(title, xlim, ylim, ...)` maps data coordinates to pixels (linear or log axes).
2. Add marks in data coordinates: `line`, `points`, `rect`, `hline`, `text`; `tip` is the hover text.
3. `write_page(path, title, panels, caption)` lays the panels out in a grid and writes the HTML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from interplab.files import write_text_atomic

_MARGIN_L, _MARGIN_R, _MARGIN_T, _MARGIN_B = 48, 12, 28, 40

_TOOLTIP_JS = """
const tip = document.getElementById('tip');
document.querySelectorAll('[data-tip]').forEach(el => {
  el.addEventListener('mousemove', ev => {
    tip.textContent = el.getAttribute('data-tip');
    tip.style.display = 'block';
    tip.style.left = (ev.pageX + 12) + 'px';
    tip.style.top = (ev.pageY + 12) + 'px';
  });
  el.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
});
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #222; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
svg { background: #fff; border: 1px solid #ddd; }
svg text { font-size: 11px; fill: #333; }
[data-tip]:hover { opacity: 0.75; }
#tip { position: absolute; display: none; background: #222; color: #fff; padding: 4px 6px;
       border-radius: 3px; font-size: 12px; pointer-events: none; white-space: pre; }
"""


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _attr(tip: str | None) -> str:
    return f' data-tip="{html.escape(tip)}"' if tip else ""


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [
            10.0**k for k in range(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9) + 1)
        ]
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


@dataclass
class Panel:
    """One chart: data-coordinate marks drawn into an SVG of `width` x `height` pixels."""

    title: str
    """Shown above the plot area."""
    xlim: tuple[float, float]
    """Data range of the x axis (positive for a log axis)."""
    ylim: tuple[float, float]
    """Data range of the y axis."""
    xlabel: str = ""
    """x-axis label."""
    ylabel: str = ""
    """y-axis label."""
    xlog: bool = False
    """Log-scaled x axis."""
    ylog: bool = False
    """Log-scaled y axis."""
    width: int = 300
    """Pixels, margins included."""
    height: int = 260
    """Pixels, margins included."""
    axes: bool = True
    """Draw the frame and tick labels."""
    marks: list[str] = field(default_factory=list)
    """SVG fragments added so far (in pixel space)."""

    def _map(self, v: float, lim: tuple[float, float], log: bool, p0: float, p1: float) -> float:
        lo, hi = (math.log10(lim[0]), math.log10(lim[1])) if log else lim
        v = math.log10(max(v, 1e-300)) if log else v
        return p0 + (v - lo) / ((hi - lo) or 1.0) * (p1 - p0)

    def sx(self, x: float) -> float:
        return self._map(x, self.xlim, self.xlog, _MARGIN_L, self.width - _MARGIN_R)

    def sy(self, y: float) -> float:
        return self._map(y, self.ylim, self.ylog, self.height - _MARGIN_B, _MARGIN_T)

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        color: str = "#1f77b4",
        width: float = 2,
        tip: str | None = None,
        dash: str | None = None,
    ) -> None:
        pts = " ".join(f"{self.sx(x):.1f},{self.sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
        style = f' stroke-dasharray="{dash}"' if dash else ""
        self.marks.append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"'
            f"{style}{_attr(tip)}/>"
        )

    def points(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        colors: Sequence[str] | str = "#1f77b4",
        tips: Sequence[str] | None = None,
        r: float = 4,
    ) -> None:
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            c = colors if isinstance(colors, str) else colors[i]
            tip = tips[i] if tips is not None else None
            self.marks.append(
                f'<circle cx="{self.sx(x):.1f}" cy="{self.sy(y):.1f}" r="{r}" fill="{c}"{_attr(tip)}/>'
            )

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: str, tip: str | None = None) -> None:
        px0, px1 = sorted((self.sx(x0), self.sx(x1)))
        py0, py1 = sorted((self.sy(y0), self.sy(y1)))
        self.marks.append(
            f'<rect x="{px0:.1f}" y="{py0:.1f}" width="{px1 - px0:.1f}" height="{py1 - py0:.1f}" '
            f'fill="{color}"{_attr(tip)}/>'
        )

    def hline(self, y: float, label: str = "", color: str = "#999") -> None:
        self.line(self.xlim, (y, y), color=color, width=1, dash="4 3", tip=label or None)
        if label:
            self.text(self.xlim[1], y, label, anchor="end", color=color)

    def text(self, x: float, y: float, s: str, anchor: str = "start", color: str = "#333") -> None:
        self.marks.append(
            f'<text x="{self.sx(x):.1f}" y="{self.sy(y) - 3:.1f}" text-anchor="{anchor}" '
            f'fill="{color}">{html.escape(s)}</text>'
        )

    def _axes_svg(self) -> list[str]:
        x0, x1, y0, y1 = _MARGIN_L, self.width - _MARGIN_R, self.height - _MARGIN_B, _MARGIN_T
        out = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#aaa"/>']
        for t in _ticks(*self.xlim, self.xlog):
            out.append(f'<text x="{self.sx(t):.1f}" y="{y0 + 14}" text-anchor="middle">{_fmt(t)}</text>')
        for t in _ticks(*self.ylim, self.ylog):
            out.append(f'<text x="{x0 - 4}" y="{self.sy(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
        out.append(
            f'<text x="{(x0 + x1) / 2}" y="{self.height - 6}" text-anchor="middle">'
            f"{html.escape(self.xlabel)}</text>"
        )
        out.append(
            f'<text transform="translate(12,{(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">'
            f"{html.escape(self.ylabel)}</text>"
        )
        return out

    def svg(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}">'
        )
        title = (
            f'<text x="{self.width / 2}" y="16" text-anchor="middle" font-weight="bold">'
            f"{html.escape(self.title)}</text>"
        )
        body = (self._axes_svg() if self.axes else []) + self.marks
        return "\n".join([head, title, *body, "</svg>"])


def page(title: str, panels: Sequence[Panel], caption: str = "", legend_html: str = "") -> str:
    """A complete, self-contained HTML document (no external resources of any kind)."""
    grid = "\n".join(p.svg() for p in panels)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n<h2>{html.escape(title)}</h2>\n"
        f'<p>{html.escape(caption)}</p>\n{legend_html}\n<div class="grid">\n{grid}\n</div>\n'
        f'<div id="tip"></div>\n<script>{_TOOLTIP_JS}</script>\n</body></html>\n'
    )


def write_page(
    path: str | Path, title: str, panels: Sequence[Panel], caption: str = "", legend_html: str = ""
) -> Path:
    """Write `page(...)` to `path` in one step and return the path."""
    path = Path(path)
    write_text_atomic(path, page(title, panels, caption, legend_html))
    return path
