"""View helpers: token highlight alphas, readable WordPiece contexts, histogram bars."""

from __future__ import annotations

import random

from jinja2 import Environment

from interplab.web.render import (
    bar_rects,
    display_token,
    histogram_bars,
    opacity,
    spaced_tokens,
    token_cells,
    token_spans,
)

# The markup the templates made per token before `token_spans` built it in Python (Jinja autoescape).
CELLS_TEMPLATE = ('<span class="ctx">{% for text, shade, value in cells %}<span class="tok {{ shade }}" '
                  'title="{{ value }}">{{ text }}</span>{% endfor %}</span>')


def test_alpha_is_activation_over_max_clipped_to_0_1() -> None:
    assert [opacity(v, 4.0) for v in (4.0, 2.0, 0.0, -1.0, 8.0, float("nan"))] == ["1.000", "0.500", "0", "0", "1.000", "0"]
    assert opacity(1.0, 0.0) == "0"


def test_wordpiece_contexts_get_spaces_and_bpe_contexts_stay_as_they_are() -> None:
    bert = ["[CLS]", "token", "##ization", "of", "un", "##bel", "##ie", "##va", "##bly", "words", "[SEP]"]
    assert "".join(spaced_tokens(bert)) == "[CLS] tokenization of unbelievably words [SEP]"
    assert "".join(spaced_tokens(["the", "cats", "were", "running"])) == "the cats were running"
    gpt2 = ["The", " cat", " sat", "##"]
    assert spaced_tokens(gpt2) == gpt2
    assert display_token("Ġcat") == " cat" and display_token("a\nb") == "a↵b"


def test_token_cells_keep_one_cell_per_token() -> None:
    cells = token_cells(["un", "##bel", "<script>"], [0.0, 2.0, 1.0], 2.0)
    assert cells == [("un", "h0", "0.000"), ("bel", "h20", "2.000"), (" <script>", "h10", "1.000")]


def test_histogram_bars_scale_to_the_largest_count() -> None:
    bars = histogram_bars([0.0, 1.0, 2.0], [10, 5], width=100, height=50)
    assert [(b.x, b.height) for b in bars] == [(0.0, 50.0), (50.0, 25.0)]
    assert histogram_bars([0.0, 1.0], [1, 2]) == []  # inconsistent edges: no bars, no crash


def test_token_spans_are_the_escaped_markup_of_token_cells() -> None:
    env = Environment(autoescape=True)
    rng = random.Random(0)
    words = ["<script>", "a&b", '"q"', "Ġcat", "\n", "##ing", "x", "é"]
    for n in range(40):
        tokens = [rng.choice(words) for _ in range(n % 9)]
        acts = [rng.choice([0.0, -0.0, -1.5, 1e-7, 2.5, 3e6, float("nan")]) for _ in tokens]
        top = rng.choice([0.0, 2.5, 4.0])
        want = env.from_string(CELLS_TEMPLATE).render(cells=token_cells(tokens, acts, top))
        assert str(token_spans(tokens, acts, top)) == want
    assert "&lt;script&gt;" in token_spans(["<script>"], [1.0], 1.0)


def test_bar_rects_draw_each_bar_with_its_range_and_count() -> None:
    svg = str(bar_rects(histogram_bars([0.0, 1.0, 2.0], [10, 5], width=100, height=50)))
    assert svg.count("<rect") == 2 and "<title>0.000–1.000: 10</title>" in svg and 'height="25.0"' in svg
