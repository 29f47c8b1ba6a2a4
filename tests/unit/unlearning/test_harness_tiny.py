"""The harness on a tiny organism (seconds): the fake output filter is caught, the gold standard is not
flagged, every method gets a row with numbers and a verdict, and the report renders its tables."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from interplab.common import InterplabError
from interplab.pipelines.unlearning import unlearning_eval_run
from interplab.reports import read_index
from interplab.unlearning import GOLD, METHODS, NOT_FORGOTTEN, ORGANISM, REMOVED, SUPPRESSED
from interplab.unlearning.evaluate import compute_precision
from interplab.unlearning.report import markdown_summary
from unlearning_data import TINY_EVAL, TINY_METHODS


@pytest.fixture(scope="module")
def report(tiny_organism: Path, tmp_path_factory) -> Path:
    return unlearning_eval_run(tiny_organism, tmp_path_factory.mktemp("report") / "unlearning", ["all"], [0],
                               cfg=TINY_EVAL, method_configs=TINY_METHODS, text_source="demo", device="cpu",
                               threads=1, show_progress=False)


def _rows(report: Path) -> dict[str, dict]:
    return {r["method"]: r for r in json.loads((report / "tables" / "runs.json").read_text())}


def test_tiny_organism_knows_every_fact_and_gold_standard_does_not_know_the_forget_set(tiny_organism: Path) -> None:
    build = json.loads((tiny_organism / "card.json").read_text())["build"]
    assert build["organism"]["forget_qa_em"] >= 0.9 and build["organism"]["retain_qa_em"] >= 0.9
    assert build["gold"]["retain_qa_em"] >= 0.9 and build["gold"]["forget_qa_em"] <= 0.4


def test_fake_output_block_hides_answers_but_is_flagged_suppressed(report: Path) -> None:
    rows = _rows(report)
    fake, organism = rows["output-block"], rows[ORGANISM]
    assert fake["forget_qa_em"] <= 0.05 and fake["forget_mc"] <= 0.05
    assert fake["retain_qa_em"] == organism["retain_qa_em"]  # the filter touches only forget-set prompts
    assert fake["relearn_best"] >= 0.8 and fake["direction_best"] >= 0.8
    assert fake["verdict"] == SUPPRESSED and "relearning recovers" in fake["reasons"]


def test_gold_standard_stays_near_chance_under_attack_and_is_not_flagged(report: Path) -> None:
    gold = _rows(report)[GOLD]
    assert gold["relearn_best"] < gold["chance_held_out"] + TINY_EVAL.verdict.margin
    assert gold["verdict"] == REMOVED


def test_every_method_has_a_row_with_numbers_and_a_verdict(report: Path) -> None:
    rows = _rows(report)
    assert set(rows) == {ORGANISM, GOLD, *METHODS}
    for name in (GOLD, *METHODS):
        row = rows[name]
        assert row["verdict"] in (REMOVED, SUPPRESSED, NOT_FORGOTTEN), name
        for key in ("forget_qa_em", "forget_paraphrase_em", "forget_mc", "retain_qa_em", "fluency_ppl",
                    "relearn_best", "probe_best", "direction_best"):
            assert isinstance(row[key], float), (name, key)


def test_report_lists_summary_curves_and_figures(report: Path) -> None:
    index = read_index(report)
    assert index.kind == "unlearning"
    assert {t.name for t in index.tables} >= {"summary", "runs", "relearning", "probes", "direction_removal"}
    assert {f.name for f in index.figures} == {"relearning", "probes", "tradeoff"}
    for fig in index.figures:
        assert (report / fig.png).stat().st_size > 0 and (report / fig.html).exists()
    summary = {r["method"]: r for r in json.loads((report / "tables" / "summary.json").read_text())}
    assert summary["output-block"]["verdict"] == f"{SUPPRESSED} (1/1)"
    assert index.summary["verdicts"]["output-block"] == f"{SUPPRESSED} (1/1)"


def test_markdown_table_has_a_row_per_method_with_its_verdict(report: Path) -> None:
    rows = json.loads((report / "tables" / "summary.json").read_text())
    table = markdown_summary(rows)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(lines) >= {ORGANISM, GOLD, *METHODS}
    assert lines["output-block"].endswith(f"| {SUPPRESSED} (1/1) |") and "Chance (best constant answer)" in table


def test_bfloat16_evaluation_still_catches_the_fake_filter(tiny_organism: Path, tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY_EVAL, dtype="bfloat16")
    out = unlearning_eval_run(tiny_organism, tmp_path / "bf16", ["output-block"], [0], cfg=cfg, text_source="demo",
                              device="cpu", threads=1, show_progress=False)
    rows = _rows(out)
    assert rows["output-block"]["verdict"] == SUPPRESSED and rows[GOLD]["verdict"] == REMOVED
    runs = json.loads((out / "tables" / "runs.json").read_text())
    assert {r.get("dtype") for r in runs} == {"bfloat16"}


def test_an_unknown_compute_dtype_is_refused_before_anything_runs(tiny_organism: Path, tmp_path: Path) -> None:
    with pytest.raises(InterplabError, match="dtype must be 'float32' or 'bfloat16'"):
        unlearning_eval_run(tiny_organism, tmp_path / "fp16", ["output-block"], [0],
                            cfg=dataclasses.replace(TINY_EVAL, dtype="float16"), text_source="demo", show_progress=False)
    assert not (tmp_path / "fp16").exists()


def test_a_training_region_in_bfloat16_runs_the_weights_as_they_are_now_not_as_first_cast() -> None:
    # autocast caches each weight's bfloat16 copy until its region ends: relearning and unlearning train
    # inside one region, so with the cache on every step after the first ran the stale weights.
    lin, x = torch.nn.Linear(8, 8), torch.randn(4, 8)
    with compute_precision(dataclasses.replace(TINY_EVAL, dtype="bfloat16"), torch.device("cpu"), weights_change=True):
        before = lin(x).float()
        with torch.no_grad():
            lin.weight.mul_(2.0)
        after = lin(x).float()
    assert after.dtype == torch.float32 and not torch.allclose(before, after, atol=1e-2)
