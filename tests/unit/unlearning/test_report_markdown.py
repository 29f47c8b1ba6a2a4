"""The Markdown table keeps one cell per column when seeds disagree on the verdict."""

from __future__ import annotations

from interplab.unlearning import REMOVED, SUPPRESSED, ArmResult
from interplab.unlearning.report import markdown_summary, summary_rows

METRICS = {"forget_qa_em": 0.0, "forget_qa_prob": 0.0, "forget_paraphrase_em": 0.0, "forget_paraphrase_prob": 0.0,
           "forget_mc": 0.2, "retain_qa_em": 0.0, "retain_qa_prob": 0.0, "retain_paraphrase_em": 0.0,
           "retain_paraphrase_prob": 0.0, "retain_mc": 0.2, "fluency_ppl": 40.0}


def test_mixed_verdicts_stay_in_one_markdown_cell() -> None:
    arms = [ArmResult("sae-clamp", seed, dict(METRICS), 0.13, 0.15, relearn=[(0, 0.1), (20, r)],
                      verdict=v) for seed, (r, v) in enumerate([(0.3, SUPPRESSED), (0.2, REMOVED), (0.3, SUPPRESSED)])]
    table = markdown_summary(summary_rows(arms))
    header, _, row = table.splitlines()[:3]
    assert row.count("|") == header.count("|")
    assert "suppressed, not removed (2/3); removed (1/3)" in row


def test_collateral_damage_is_counted_beside_the_verdict() -> None:
    def arm(seed: int, retain: float) -> ArmResult:
        return ArmResult("npo", seed, {**METRICS, "retain_qa_em": retain}, 0.13, 0.15, verdict=REMOVED,
                         retain_reference=1.0)

    rows = summary_rows([arm(0, 0.3), arm(1, 0.95), arm(2, 0.5)])
    assert rows[0]["collateral"] == 2
    assert "| removed (3/3); retain damaged (2/3) |" in markdown_summary(rows)
