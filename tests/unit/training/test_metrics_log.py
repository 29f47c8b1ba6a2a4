"""JSON-lines metrics: strict JSON (NaN -> null), lines past a resumed checkpoint dropped, torn lines skipped."""

from __future__ import annotations

import json

from interplab.training.metrics_log import JsonlMetrics


def test_nan_is_written_as_null_and_empty_metrics_write_nothing(tmp_path):
    log = JsonlMetrics(tmp_path / "m.jsonl")
    log(1, {})
    log(2, {"fvu": float("nan"), "l0": 3.0})
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == {"step": 2, "fvu": None, "l0": 3.0}


def test_resume_drops_lines_after_the_checkpoint_and_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    log = JsonlMetrics(path)
    for step in (5, 10, 15):
        log(step, {"loss": float(step)})
    with path.open("a") as f:
        f.write('{"step": 20, "lo')  # a kill in the middle of a write
    assert [r["step"] for r in JsonlMetrics.read(path)] == [5, 10, 15]
    JsonlMetrics(path, resume=True)(15, {"loss": 0.5})  # resumed from the step-10 checkpoint
    assert JsonlMetrics.read(path) == [{"step": 5, "loss": 5.0}, {"step": 10, "loss": 10.0}, {"step": 15, "loss": 0.5}]


def test_resume_after_a_torn_line_keeps_the_next_line_whole(tmp_path):
    path = tmp_path / "m.jsonl"
    log = JsonlMetrics(path)
    for step in (5, 10):
        log(step, {"loss": float(step)})
    with path.open("a") as f:
        f.write('{"step": 15, "lo')  # killed while writing step 15, resumed from a step-10 checkpoint... at 15
    JsonlMetrics(path, resume=True)(15, {"loss": 1.5})
    assert [r["step"] for r in JsonlMetrics.read(path)] == [5, 10, 15]


def test_a_fresh_run_starts_an_empty_file(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1}\n')
    JsonlMetrics(path)
    assert path.read_text() == ""
