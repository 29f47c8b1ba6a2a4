"""The full side-by-side table on SmolLM2-135M: every method, 3 seeds, default settings (slow).

Builds the knowledge organism first (or reuses the finished one named by INTERPLAB_UNLEARNING_ORGANISM,
since the build is the long part and does not depend on the table), then checks the issue's "done when":
the fake output filter is flagged "suppressed, not removed" with forget accuracy <= 5%, >= 80% of
held-out facts back within 20 relearning steps and probes decoding >= 90%; the gold standard stays near
chance and is not flagged; every method has a verdict and a collateral-damage flag on every seed. It runs
in bfloat16, the setting of the 20-minute table (`bench/unlearning.py --dtype bfloat16`, two workers);
timings are in the report's summary (docs/unlearning.md holds the last ones); none is asserted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from interplab.pipelines.unlearning import build_organism_run, unlearning_eval_run
from interplab.unlearning import GOLD, METHODS, NOT_FORGOTTEN, REMOVED, SUPPRESSED, EvalConfig, OrganismConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def organism(tmp_path_factory, smollm2) -> Path:
    given = os.environ.get("INTERPLAB_UNLEARNING_ORGANISM")
    if given:
        return Path(given)
    return build_organism_run(OrganismConfig(), tmp_path_factory.mktemp("organism") / "smollm2",
                              show_progress=False).folder


@pytest.fixture(scope="module")
def rows(organism: Path, tmp_path_factory) -> list[dict]:
    report = unlearning_eval_run(organism, tmp_path_factory.mktemp("report") / "table", ["all"], [0, 1, 2],
                                 cfg=EvalConfig(dtype="bfloat16"), show_progress=False)
    return json.loads((report / "tables" / "runs.json").read_text())


def test_fake_output_filter_is_suppressed_not_removed_on_every_seed(rows: list[dict]) -> None:
    fake = [r for r in rows if r["method"] == "output-block"]
    assert len(fake) == 3
    for r in fake:
        assert r["forget_qa_em"] <= 0.05 and r["relearn_best"] >= 0.8, r
        assert r["verdict"] == SUPPRESSED


def test_probes_decode_the_filtered_facts(rows: list[dict]) -> None:
    # 0.98-1.00 on the 80-person organism (2026-12-01, docs/unlearning.md), by the model's own readout at
    # the last layer (lens@29), chosen on validation people; the fitted probes alone read 0.70 ± 0.15
    for r in (r for r in rows if r["method"] == "output-block"):
        assert r["probe_best"] >= 0.9, r


def test_gold_standard_stays_near_chance_and_is_not_flagged(rows: list[dict]) -> None:
    for r in (r for r in rows if r["method"] == GOLD):
        assert r["relearn_best"] < r["chance_held_out"] + 0.15, r
        assert r["verdict"] == REMOVED


def test_every_method_has_a_verdict_on_three_seeds(rows: list[dict]) -> None:
    for name in METHODS:
        mine = [r for r in rows if r["method"] == name]
        assert sorted(r["seed"] for r in mine) == [0, 1, 2]
        assert all(r["verdict"] in (REMOVED, SUPPRESSED, NOT_FORGOTTEN) for r in mine)
        assert all(isinstance(r["collateral"], bool) and r["dtype"] == "bfloat16" for r in mine)
