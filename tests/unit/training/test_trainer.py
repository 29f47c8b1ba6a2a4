"""The `fit` loop: in-process resume, decoder norms, bf16, dead-latent tracking, callbacks, config errors."""

from __future__ import annotations

import pytest
import torch

from interplab.common import InterplabError
from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource
from interplab.evals import evaluate_sae
from interplab.saes import make_sae, sae_config
from interplab.training import Checkpointer, DeadLatentTracker, TrainConfig, fit
from sae_configs import config_for

TOY = ToyFeatureConfig(n_features=32, d=16, mean_active=3, batch_size=64, seed=1)


def _sae(arch: str = "topk", **kw):
    return make_sae(config_for(arch, d_in=16, d_sae=48, k=4, l1_coeff=0.3, **kw))


def _eval(sae) -> float:
    held_out = ToyFeatureSource(TOY)
    return evaluate_sae(sae, (held_out.batch(10_000 + i) for i in range(4))).reconstruction.fvu


def test_training_lowers_fvu_and_keeps_topk_decoder_rows_unit_norm():
    sae = _sae("topk")
    before = _eval(sae)
    res = fit(sae, ToyFeatureSource(TOY), TrainConfig(total_steps=150, lr=3e-3, log_every=50))
    assert res.steps == 150 and res.tokens == 150 * 64 and res.resumed_from == 0
    assert _eval(sae) < 0.5 * before
    torch.testing.assert_close(sae.W_dec.norm(dim=-1), torch.ones(48), atol=1e-5, rtol=0)


def test_plain_iterator_resume_skips_consumed_batches_and_matches_uninterrupted(tmp_path):
    rows = [ToyFeatureSource(TOY).batch(i) for i in range(30)]
    cfg = dict(total_steps=30, lr=3e-3, lr_warmup_steps=3, log_every=10)
    ref = _sae("relu")
    fit(ref, iter(rows), TrainConfig(**cfg))

    first = _sae("relu")
    ck_cfg = TrainConfig(**cfg, checkpoint_every=10, checkpoint_dir=str(tmp_path))
    fit(first, iter(rows[:17]), ck_cfg)  # the stream runs dry at step 17: the last checkpoint is step 10
    assert Checkpointer(tmp_path, 10).latest().name == "step_00000010"
    resumed = _sae("relu")
    res = fit(resumed, iter(rows), TrainConfig(**cfg, checkpoint_every=10, checkpoint_dir=str(tmp_path), resume=True))
    assert res.resumed_from == 10 and res.steps == 30
    for (name, a), b in zip(ref.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_resume_refuses_a_checkpoint_of_a_different_sae(tmp_path):
    cfg = TrainConfig(total_steps=4, checkpoint_every=2, checkpoint_dir=str(tmp_path), log_every=2)
    fit(_sae("topk"), ToyFeatureSource(TOY), cfg)
    other = make_sae(sae_config("topk", d_in=16, d_sae=48, k=8))
    with pytest.raises(InterplabError, match="different SAE config"):
        fit(other, ToyFeatureSource(TOY), TrainConfig(total_steps=8, checkpoint_every=2,
                                                      checkpoint_dir=str(tmp_path), resume=True))


def test_bf16_autocast_keeps_fp32_master_weights_and_trains_like_fp32():
    results, weights = {}, {}
    for dtype in ("float32", "bfloat16"):
        sae = _sae("relu")
        fit(sae, ToyFeatureSource(TOY), TrainConfig(total_steps=100, lr=3e-3, dtype=dtype, log_every=50))
        assert all(p.dtype == torch.float32 for p in sae.parameters())
        results[dtype], weights[dtype] = _eval(sae), sae.W_dec.detach().clone()
    assert results["bfloat16"] == pytest.approx(results["float32"], abs=0.05)
    assert not torch.equal(weights["bfloat16"], weights["float32"])  # the matmuls really ran in bf16


def test_tracker_marks_latents_dead_after_the_window_and_revives_on_fire():
    tr = DeadLatentTracker(3, dead_after_tokens=100, freq_window_tokens=1000, device=torch.device("cpu"))
    for _ in range(2):
        tr.update(torch.tensor([5, 0, 0]), 50)
    assert tr.dead_mask().tolist() == [False, True, True]
    tr.update(torch.tensor([0, 1, 0]), 50)
    assert tr.dead_mask().tolist() == [False, False, True]
    assert tr.freq_F[0] > tr.freq_F[1] > tr.freq_F[2] == 0


def test_tracker_skips_the_dead_mask_while_no_latent_can_be_dead_and_rechecks_after_load():
    tr = DeadLatentTracker(3, dead_after_tokens=100, freq_window_tokens=1000, device=torch.device("cpu"))
    tr.update(torch.tensor([1, 0, 0]), 60)
    assert tr.maybe_dead_mask() is None  # 60 tokens < 100: nothing can be dead, no device read
    tr.update(torch.tensor([1, 0, 1]), 60)
    assert tr.maybe_dead_mask().tolist() == [False, True, False]  # latent 1: 120 tokens
    tr.update(torch.tensor([1, 1, 1]), 10)
    assert tr.maybe_dead_mask() is None  # everything fired; the bound was refreshed from the device
    other = DeadLatentTracker(3, dead_after_tokens=100, freq_window_tokens=1000, device=torch.device("cpu"))
    other.load({**tr.tensors(), "trainer.tokens_since_fired_F": torch.tensor([0, 100, 5])})
    assert other.maybe_dead_mask().tolist() == [False, True, False]  # loaded counters are read, not assumed


def test_auxk_loss_turns_on_in_fit_once_latents_are_dead():
    sae = _sae("topk", k_aux=8)
    with torch.no_grad():
        sae.W_enc[:, :24].mul_(-1)  # half the latents cannot fire at first
    cfg = TrainConfig(total_steps=60, lr=3e-3, log_every=60, dead_after_tokens=64 * 5)
    seen: list[float] = []
    fit(sae, ToyFeatureSource(TOY), cfg, on_step=lambda d, m: seen.append(m.get("aux_loss", 0.0)))
    assert seen[-1] > 0  # AuxK ran once latents were marked dead
    assert _eval(sae) < 0.5


def test_adam_is_fused_on_cpu():
    from interplab.training.trainer import _adam

    opt = _adam(_sae("topk"), TrainConfig(), torch.device("cpu"))
    assert opt.defaults["fused"] is True


def test_on_step_sees_every_step_and_metrics_on_log_steps_with_evaluator_at_the_end():
    seen: list[tuple[int, dict]] = []
    res = fit(_sae("topk"), ToyFeatureSource(TOY), TrainConfig(total_steps=7, log_every=3),
              evaluator=lambda s: {"fvu": _eval(s)}, on_step=lambda step, m: seen.append((step, m)))
    assert [s for s, _ in seen] == list(range(1, 8))
    assert [s for s, m in seen if m] == [3, 6, 7]
    assert {"loss", "fvu", "l0", "lr", "dead_fraction", "tokens"} <= set(seen[2][1])
    assert "eval/fvu" in res.metrics and "eval/fvu" not in seen[2][1]
    assert res.metrics["step"] == 7


@pytest.mark.parametrize("bad, match", [(dict(dtype="fp8"), "bfloat16"), (dict(checkpoint_every=5), "checkpoint_dir"),
                                        (dict(b_dec_init="zeros"), "geometric_median")])
def test_bad_config_is_a_one_line_error_naming_the_fix(bad, match):
    with pytest.raises(InterplabError, match=match):
        fit(_sae(), ToyFeatureSource(TOY), TrainConfig(total_steps=2, **bad))
