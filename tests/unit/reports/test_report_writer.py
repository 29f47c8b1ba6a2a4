"""ReportWriter: a complete folder (config, tables, figures, index last); a finished report is never replaced
by accident, and an overwrite that dies midway leaves no stale index."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from interplab.common import InterplabError
from interplab.reports import ReportWriter, read_index, refuse_to_replace_report, start_report


def test_report_folder_has_index_tables_and_figures(tmp_path):
    report = ReportWriter(tmp_path / "rep", "test report", "test")
    report.write_config({"model": "x", "nan": float("nan")})
    report.table("t", [{"a": 1, "b": float("nan")}], "a table")
    report.heatmap("h", torch.tensor([[1.0, 0.5], [0.25, 0.0]]), ["r1", "r2"], ["c1", "c2"], "a heatmap",
                   caption="darker cells hold larger values")
    report.line_plot("l", [0, 1], {"s": [0.5, 0.7]}, "a plot", "layer", "acc", caption="higher is better")
    report.log_metric(name="x", value=1.0)
    index = json.loads(report.finish({"best": 1, "worst": float("inf")}).read_text())
    assert index["kind"] == "test" and index["summary"] == {"best": 1, "worst": None}
    assert [t["name"] for t in index["tables"]] == ["t", "h"]
    assert [f["name"] for f in index["figures"]] == ["h", "l"]
    assert [f["caption"] for f in index["figures"]] == ["darker cells hold larger values", "higher is better"]
    for entry in index["figures"] + index["tables"]:
        for key in ("png", "html", "csv", "json"):
            if entry.get(key):
                assert (tmp_path / "rep" / entry[key]).stat().st_size > 0
    assert (tmp_path / "rep" / "figures" / "l.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "rep" / "tables" / "h.csv") as handle:
        assert list(csv.DictReader(handle))[1] == {"train": "r2", "c1": "0.25", "c2": "0.0"}
    assert json.loads((tmp_path / "rep" / "tables" / "t.json").read_text()) == [{"a": 1, "b": None}]
    assert json.loads((tmp_path / "rep" / "config.json").read_text())["nan"] is None
    assert "<td>0.250</td>" in (tmp_path / "rep" / "figures" / "h.html").read_text()
    assert not list((tmp_path / "rep").rglob("*.tmp"))


def test_a_finished_report_is_refused_unless_overwrite(tmp_path):
    folder = tmp_path / "rep"
    ReportWriter(folder, "first", "test").finish()
    with pytest.raises(InterplabError, match="already holds a report; pass --overwrite"):
        refuse_to_replace_report(folder, overwrite=False)
    with pytest.raises(InterplabError, match="overwrite"):
        ReportWriter(folder, "again", "test")
    assert read_index(folder).title == "first"
    refuse_to_replace_report(tmp_path / "missing", overwrite=False)  # nothing there: fine
    refuse_to_replace_report(folder, overwrite=True)


def test_overwriting_removes_the_old_index_before_writing_anything(tmp_path):
    folder = tmp_path / "rep"
    ReportWriter(folder, "first", "test").finish()
    writer = ReportWriter(folder, "second", "test", overwrite=True)
    writer.table("t", [{"a": 1}], "a table")
    assert not (folder / "index.json").exists()  # a run killed here does not look finished
    writer.finish()
    assert read_index(folder).title == "second"


def test_start_report_creates_the_folder(tmp_path):
    folder = start_report(tmp_path / "a" / "b", overwrite=False)
    assert folder.is_dir() and not (folder / "index.json").exists()
