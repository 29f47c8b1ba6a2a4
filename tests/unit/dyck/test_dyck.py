"""The Dyck lab: bracket strings with known labels, the model's head interventions, and the lab's numbers."""

from __future__ import annotations

import json

import pytest
import torch

from interplab.data.synthetic.dyck import (
    CLOSE,
    OPEN,
    DyckDataConfig,
    dyck_split,
    encode,
    is_balanced,
    sample_strings,
)
from interplab.dyck import (
    DyckModelConfig,
    DyckTrainConfig,
    DyckTransformer,
    accuracy,
    depth_class,
    head_ablation_table,
    load_dyck_model,
    save_dyck_model,
    train_dyck_model,
)
from interplab.dyck.analysis import ablated_head_fn, same_length_donors


def test_labels_and_depths_agree_with_a_plain_bracket_check() -> None:
    strings = sample_strings(400, DyckDataConfig(max_pairs=6, max_depth=4), seed=1)
    data = encode(strings, DyckDataConfig(max_pairs=6, max_depth=4))
    assert data.balanced_B.tolist() == [is_balanced(s) for s, _ in strings]
    assert 0.35 < float(data.balanced_B.float().mean()) < 0.65
    for row, (text, kind) in enumerate(strings):
        brackets = data.tokens_BT[row][(data.tokens_BT[row] == OPEN) | (data.tokens_BT[row] == CLOSE)]
        depths = data.depth_BT[row][1:1 + len(text)]
        assert depths.tolist() == torch.cumsum(torch.where(brackets == OPEN, 1, -1), 0).tolist()
        if kind == "balanced":
            assert int(depths.max()) <= 4
        elif kind == "order":  # as many opens as closes, but a prefix below zero
            assert text.count("(") == text.count(")") and int(depths.min()) < 0


def test_held_out_strings_never_occur_in_training() -> None:
    train, test = dyck_split(3000, 500, DyckDataConfig(max_pairs=5))
    assert not set(test.strings()) & set(train.strings())


def test_depth_classes_clip_deep_and_mark_negative_depths() -> None:
    assert depth_class(torch.tensor([0, 3, 9, -1]), 8).tolist() == [0, 3, 8, 9]


def test_same_length_donors_are_other_strings_of_the_same_length() -> None:
    data = encode(sample_strings(200, DyckDataConfig(max_pairs=4), seed=2), DyckDataConfig(max_pairs=4))
    donors = same_length_donors(data)
    lengths = data.mask_BT.sum(1)
    assert torch.equal(lengths[donors], lengths)
    groups = [int((lengths == n).sum()) for n in lengths.unique()]
    assert int((donors == torch.arange(len(data))).sum()) == sum(1 for g in groups if g == 1)


def test_ablating_a_head_changes_only_that_heads_output() -> None:
    cfg = DyckModelConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=16, seq_len=10, max_depth=4)
    torch.manual_seed(0)
    model = DyckTransformer(cfg).eval()
    data = encode(sample_strings(64, DyckDataConfig(max_pairs=4), 3), DyckDataConfig(max_pairs=4))
    seen: list[torch.Tensor] = []
    fn = ablated_head_fn(model, data, layer=1, head=0, how="mean")

    def spy(layer: int, z: torch.Tensor) -> torch.Tensor:
        out = fn(layer, z)
        seen.append((out - z).abs().sum(dim=(0, 2, 3)))
        return out

    with torch.no_grad():
        model(data.tokens_BT, data.mask_BT, spy)
    assert float(seen[0].sum()) == 0.0  # layer 0 untouched
    assert float(seen[1][0]) > 0 and float(seen[1][1]) == 0.0  # layer 1: head 0 replaced, head 1 kept


def test_a_short_training_learns_the_task_and_the_model_round_trips(tmp_path) -> None:
    data_cfg = DyckDataConfig(max_pairs=4, max_depth=4)
    train, test = dyck_split(4000, 400, data_cfg)
    cfg = DyckModelConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, seq_len=data_cfg.seq_len, max_depth=4)
    model = train_dyck_model(train, cfg, DyckTrainConfig(steps=300, batch_size=64, threads=1))
    acc = accuracy(model, test)
    assert acc > 0.8
    back = load_dyck_model(save_dyck_model(model, tmp_path / "m"))
    assert accuracy(back, test) == acc
    rows = head_ablation_table(model, test, "mean")
    assert [r["head"] for r in rows] == ["L0H0", "L0H1"]
    assert all(r["cost_points"] == pytest.approx(100 * (acc - r["accuracy"])) for r in rows)


@pytest.mark.slow
def test_the_dyck_lab_meets_its_targets(tmp_path) -> None:
    """The issue's bar: >= 98 % held-out, a depth probe >= 95 %, the identified head >= 30 points and every other
    < 5 (mean ablation), an SAE latent >= 0.8 with each depth 0..4. About 30 CPU-seconds of training."""
    from interplab.pipelines.dyck import run_dyck_lab

    summary = json.loads(run_dyck_lab(tmp_path / "dyck").read_text())["summary"]
    assert summary["heldout_accuracy"] >= 0.98
    assert summary["best_depth_probe"] >= 0.95
    assert summary["identified_head_cost_mean"] >= 30 and summary["largest_other_head_cost_mean"] < 5
    assert summary["min_depth_latent_correlation_0_4"] >= 0.8



def test_the_attention_table_of_the_report_keeps_a_column_per_token(tmp_path) -> None:
    from interplab.pipelines.dyck import _pattern_figure
    from interplab.reports import ReportWriter

    model = DyckTransformer(DyckModelConfig(d_model=16, d_mlp=16, seq_len=22, max_depth=8)).eval()
    writer = ReportWriter(tmp_path / "r", "t", "dyck")
    _pattern_figure(writer, model, 0, 1)
    pattern = json.loads((writer.folder / "tables" / "identified_head_pattern.json").read_text())
    assert len(pattern) == 12 and all(len(row) == 13 for row in pattern)  # query + <s>, 10 brackets, </s>
