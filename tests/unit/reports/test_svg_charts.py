"""The offline SVG chart builder behind the interactive HTML figures."""

import xml.etree.ElementTree as ET

import pytest

from interplab.reports.svg_charts import Panel, _ticks, page

NS = "{http://www.w3.org/2000/svg}"


def test_data_coordinates_map_to_the_plot_area_on_linear_and_log_axes():
    p = Panel("t", (0, 10), (1, 1000), ylog=True, width=300, height=260)
    left, right = p.sx(0), p.sx(10)
    assert left < p.sx(5) < right and p.sx(5) == pytest.approx((left + right) / 2)
    # Log axis: each decade takes the same height, and larger values are higher up (smaller pixel y).
    assert p.sy(1) - p.sy(10) == pytest.approx(p.sy(10) - p.sy(100))
    assert p.sy(1000) < p.sy(1)


def test_ticks_are_round_numbers_inside_the_range():
    assert _ticks(0, 1, False) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert _ticks(0.01, 1, True) == pytest.approx([0.01, 0.1, 1.0])


def test_panels_are_valid_svg_and_tooltips_are_escaped():
    p = Panel("a <b> & c", (0, 1), (0, 1), xlabel="x", ylabel="y")
    p.line([0, 1], [0, 1], tip='line "one" <1>')
    p.points([0.5], [0.5], "#f00", ["pt & more"])
    p.rect(0.1, 0.1, 0.2, 0.3, "#0f0", "cell")
    p.hline(0.5, "1/2")
    root = ET.fromstring(p.svg())
    tips = [el.get("data-tip") for el in root.iter() if el.get("data-tip")]
    assert tips == ['line "one" <1>', "pt & more", "cell", "1/2"]
    rect = next(el for el in root.iter(f"{NS}rect") if el.get("data-tip") == "cell")
    assert float(rect.get("width")) > 0 and float(rect.get("height")) > 0


def test_page_is_one_self_contained_document():
    html = page("title", [Panel("p", (0, 1), (0, 1))], caption="cap")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 1
    assert 'id="tip"' in html and "addEventListener" in html
    assert "src=" not in html and "href=" not in html
