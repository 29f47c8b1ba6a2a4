"""Jinja2 rendering for the web pages: one environment with autoescape always on, and small view helpers.

Model text (tokens, explanations, report titles) reaches templates only as plain strings, so Jinja escapes
it; no template marks model text `|safe`. The one exception, for speed, is `token_spans`: it escapes each
token itself (markupsafe.escape) and hands Jinja the finished spans. Colours and bar sizes are computed here from numbers; colours are
classes, not inline styles, because the pages' Content-Security-Policy allows no inline style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from interplab.web.guide import FEATURE_NOTES, figure_sentence, report_guide

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

# Byte-level BPE and SentencePiece mark a leading space with these; newlines become a visible arrow.
_TOKEN_MARKS = {"Ġ": " ", "▁": " ", "Ċ": "↵", "\n": "↵", "\r": "", "\t": "⇥"}


_TOKEN_TABLE = str.maketrans(_TOKEN_MARKS)


def display_token(token: str) -> str:
    """A token as shown on a page (raw tokenizer pieces made readable); still escaped by Jinja."""
    return token.translate(_TOKEN_TABLE)


_SPACE_LED = (" ", "Ġ", "▁", "\n", "\t", "Ċ")
_WORDPIECE_SPECIALS = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"}


def looks_wordpiece(tokens: list[str]) -> bool:
    """Tokens decoded one by one from a WordPiece (BERT) tokenizer: no piece carries its space, and words
    continue with "##". Byte-level BPE / SentencePiece contexts always have space-led pieces."""
    if any(t.startswith(_SPACE_LED) for t in tokens):
        return False
    return any(t.startswith("##") or t in _WORDPIECE_SPECIALS for t in tokens) or sum(t.isalpha() for t in tokens) >= 3


def spaced_tokens(tokens: list[str]) -> list[str]:
    """WordPiece contexts with the spaces a reader expects ("##" continues a word, anything else starts one);
    other tokenizers' pieces are returned unchanged."""
    if not looks_wordpiece(tokens):
        return tokens
    return [t[2:] if t.startswith("##") and len(t) > 2 else (t if i == 0 else " " + t) for i, t in enumerate(tokens)]


def opacity(value: float, max_value: float) -> str:
    """Background alpha in [0, 1] for a token: its activation over the latent's maximum."""
    if max_value <= 0 or not math.isfinite(value) or value <= 0:
        return "0"
    return f"{min(value / max_value, 1.0):.3f}"


SHADES = 20  # highlight levels: classes h0 (none) .. h20 (full) in style.css, so pages need no inline style
_SHADE_CLASSES = [f"h{i}" for i in range(SHADES + 1)]


def shade(value: float, max_value: float) -> str:
    """The highlight class of a token: its activation over the maximum in 1/SHADES steps, rounded up, so any
    token that fires shows (h1 at least)."""
    if max_value <= 0 or not math.isfinite(value) or value <= 0:
        return "h0"
    alpha = round(min(value / max_value, 1.0), 3)  # as `opacity` shows it
    return _SHADE_CLASSES[math.ceil(alpha * SHADES - 1e-9)]


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell; None (no score) shows as n/a."""
    if value is None:
        return "n/a"
    if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e6):
        return f"{value:.{digits}e}"
    return f"{value:.{digits}f}"


def token_cells(tokens: list[str], acts: list[float], max_value: float) -> list[tuple[str, str, str]]:
    """(shown text, highlight class, title) per token; computed here once, not per token in Jinja."""
    shown = spaced_tokens(tokens)
    return [(display_token(t), shade(a, max_value), fmt(a)) for t, a in zip(shown, acts, strict=False)]


@lru_cache(maxsize=1 << 16)
def _token_text_html(token: str) -> str:
    """A token's shown text, HTML-escaped (a vocabulary is finite, so the cache holds it all)."""
    return str(escape(display_token(token)))


_ZERO_SPAN = f'<span class="tok h0" title="{fmt(0.0)}">'


def token_spans(tokens: list[str], acts: list[float], max_value: float) -> Markup:
    """The context as HTML: one `<span class="tok hN" title="value">text</span>` per token (`token_cells`),
    built here in one pass: a feature page has hundreds of tokens and Jinja's per-token escaping and
    macro calls were its largest cost. The token text is escaped (markupsafe.escape); the class and the
    title are made from numbers only."""
    parts = ['<span class="ctx">']
    for token, act in zip(spaced_tokens(tokens), acts, strict=False):
        zero = act == 0 and math.copysign(1.0, act) > 0  # -0.0 shows as "-0.000"
        head = _ZERO_SPAN if zero else f'<span class="tok {shade(act, max_value)}" title="{fmt(act)}">'
        parts.append(f"{head}{_token_text_html(token)}</span>")
    parts.append("</span>")
    return Markup("".join(parts))


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # "lo–hi: count" for the bar's tooltip


def histogram_bars(edges: list[float], counts: list[int], width: float = 600, height: float = 160) -> list[Bar]:
    """SVG rectangles (in a width x height box) of a histogram, heights relative to the largest count."""
    n = len(counts)
    if n == 0 or len(edges) != n + 1:
        return []
    top = max(max(counts), 1)
    bar_w = width / n
    shown_w = round(max(bar_w - 1, 0.5), 2)
    shown = [fmt(e) for e in edges]  # each edge formatted once: it labels two bars
    bars = []
    for i, count in enumerate(counts):
        h = height * count / top
        bars.append(Bar(x=round(i * bar_w, 2), y=round(height - h, 2), width=shown_w, height=round(h, 2),
                        label=f"{shown[i]}–{shown[i + 1]}: {count}"))
    return bars


def bar_rects(bars: list[Bar]) -> Markup:
    """The bars as SVG `<rect>`s with their tooltip, built in one pass (numbers and `fmt` text only)."""
    return Markup("".join(f'<rect class="bar" x="{b.x}" y="{b.y}" width="{b.width}" height="{b.height}">'
                          f"<title>{escape(b.label)}</title></rect>" for b in bars))


def make_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["tok"] = display_token
    env.filters["fmt"] = fmt
    env.globals["shade"] = shade
    env.globals["token_cells"] = token_cells
    env.globals["token_spans"] = token_spans
    env.globals["histogram_bars"] = histogram_bars
    env.globals["bar_rects"] = bar_rects
    env.globals["notes"] = FEATURE_NOTES  # plain-language sentences (web/guide.py)
    env.globals["figure_sentence"] = figure_sentence
    env.globals["report_guide"] = report_guide
    return env


class Pages:
    """Renders templates to HTML responses."""

    def __init__(self) -> None:
        self.env = make_environment()

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status_code)
