"""The index.json format: what writers write reads back unchanged; missing or odd fields take defaults."""

from __future__ import annotations

import json

import pytest

from interplab.common import InterplabError
from interplab.reports import FigureEntry, ReportIndex, TableEntry, parse_index, read_index, write_index


def test_an_index_reads_back_as_written(tmp_path):
    index = ReportIndex(
        title="Ünïcode report", kind="probe-study", summary={"best": 0.9, "layers": [0, 1]},
        figures=[FigureEntry("a", "A", png="figures/a.png", html="figures/a.html", caption="read me", group="g"),
                 FigureEntry("b", "B", png="figures/b.png")],
        tables=[TableEntry("t", "T", csv="tables/t.csv", json="tables/t.json")],
    )
    path = write_index(tmp_path, index)
    assert "Ünïcode" in path.read_text(encoding="utf-8")
    assert json.loads(path.read_text())["version"] == 1
    assert read_index(tmp_path) == index


def test_missing_caption_html_title_and_kind_take_defaults():
    index = parse_index({"figures": [{"name": "acc", "png": "acc.png"}],
                         "tables": [{"name": "t", "csv": "t.csv"}]}, default_title="folder")
    assert index.title == "folder" and index.kind == "report" and index.summary == {}
    (fig,) = index.figures
    assert (fig.title, fig.caption, fig.html, fig.group) == ("acc", None, None, None)
    assert index.tables == [TableEntry("t", "t", csv="t.csv", json=None)]


def test_entries_of_the_wrong_type_are_skipped_or_coerced():
    index = parse_index({"title": 3, "summary": [1, 2], "figures": ["x", None, {"name": 7, "caption": {"a": 1}}],
                         "tables": {"not": "a list"}})
    assert index.title == "3" and index.summary == {} and index.tables == []
    assert index.figures == [FigureEntry(name="7", title="7")]


def test_toy_indexes_written_before_titles_existed_get_one_from_their_presets():
    index = parse_index({"kind": "toy", "presets": ["intro", "phase"],
                         "figures": [{"preset": "intro", "name": "intro", "title": "t", "png": "intro.png"}]})
    assert index.title == "Toy models of superposition: intro, phase" and index.figures[0].group == "intro"


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", ""])
def test_an_index_that_is_not_a_json_object_names_the_fix(tmp_path, text):
    (tmp_path / "index.json").write_text(text)
    with pytest.raises(InterplabError, match="rerun the command that wrote the report"):
        read_index(tmp_path)
