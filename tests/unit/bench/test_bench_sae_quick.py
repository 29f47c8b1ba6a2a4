"""Smoke test of bench/sae.py (our rows only, so CI needs no peers) and checks of its two metrics."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[3] / "bench" / "sae.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_sae", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sae"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_sae", None)


def test_quick_run_writes_rows_with_sane_numbers(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--peers", "none", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["config"]["d_in"] == 32 and report["fastest_peer"] is None
    rows = {r["trainer"]: r for r in report["rows"]}
    assert set(rows) == {"interplab", "interplab-dense"}
    for row in rows.values():
        assert row["status"] == "ok"
        assert {"tokens_per_s", "peak_mem_mb", "fvu", "mmcs", "seconds", "vs_fastest_peer"} <= set(row)
        assert row["tokens_per_s"] > 0
        assert 0.0 <= row["fvu"] <= 1.5
        assert 0.0 < row["mmcs"] <= 1.0
        assert row["vs_fastest_peer"] is None
    # Same seed, same batches: the sparse kernel and the dense reference must learn the same SAE.
    assert rows["interplab"]["fvu"] == pytest.approx(rows["interplab-dense"]["fvu"], rel=1e-3)
    assert rows["interplab"]["mmcs"] == pytest.approx(rows["interplab-dense"]["mmcs"], rel=1e-3)


def test_mmcs_is_one_for_the_true_directions_and_below_for_random_ones(bench) -> None:
    gen = torch.Generator().manual_seed(0)
    true_GD = torch.randn(50, 16, generator=gen)
    shuffled_FD = 3.0 * torch.cat(
        [true_GD[torch.randperm(50, generator=gen)], torch.randn(20, 16, generator=gen)]
    )
    assert bench.mmcs(shuffled_FD, true_GD) == pytest.approx(1.0, abs=1e-6)
    random_FD = torch.randn(70, 16, generator=gen)
    expected = (
        torch.nn.functional.cosine_similarity(true_GD[:, None], random_FD[None], dim=-1).max(1).values.mean()
    )
    assert bench.mmcs(random_FD, true_GD) == pytest.approx(expected.item(), abs=1e-5)


def test_fvu_is_one_minus_sklearn_variance_weighted_r2(bench) -> None:
    from sklearn.metrics import r2_score

    gen = torch.Generator().manual_seed(1)
    x_ND = torch.randn(300, 8, generator=gen) * torch.linspace(0.5, 2.0, 8) + 1.0
    w_DD = torch.eye(8) + 0.2 * torch.randn(8, 8, generator=gen)

    class Linear:
        def encode_decode(self, x):
            return x @ w_DD + 0.1

    x_hat_ND = Linear().encode_decode(x_ND)
    r2 = r2_score(x_ND.numpy(), x_hat_ND.numpy(), multioutput="variance_weighted")
    # chunked evaluation (3 chunks of 128, 128, 44 rows) must not change the result
    assert bench.fvu(Linear(), x_ND, chunk=128) == pytest.approx(1 - r2, rel=1e-5)


def test_our_fit_row_trains_the_same_sae_as_the_hand_written_step(bench) -> None:
    from peers import InterplabTopK

    gen = torch.Generator().manual_seed(2)
    batches = [torch.randn(64, 16, generator=gen) + 0.5 for _ in range(6)]
    via_fit, by_hand = InterplabTopK(torch.device("cpu")), InterplabTopK(torch.device("cpu"))
    for adapter in (via_fit, by_hand):
        adapter.make(d_in=16, d_sae=48, k=4, lr=1e-2, seed=0)
    done: list[int] = []
    via_fit.train(iter(batches), len(batches), done.append)
    by_hand_loop = super(InterplabTopK, by_hand).train  # StepLoop.train: train_step in a loop
    by_hand_loop(iter(batches), len(batches), lambda _d: None)
    assert done == list(range(1, 7))
    fresh = InterplabTopK(torch.device("cpu"))
    fresh.make(d_in=16, d_sae=48, k=4, lr=1e-2, seed=0)
    assert not torch.allclose(fresh.sae.W_dec, via_fit.sae.W_dec, atol=1e-3)  # it did train
    for name, p in via_fit.sae.named_parameters():
        torch.testing.assert_close(p, dict(by_hand.sae.named_parameters())[name], msg=name)


def test_store_run_reads_real_activations_and_reports_mmcs_as_na(tmp_path: Path, tiny_model_dir) -> None:
    from interplab.activations.cache import CacheConfig, cache_activations
    from interplab.data.corpus import load_demo_corpus
    from interplab.models.loading import load_model

    lm = load_model(str(tiny_model_dir("gpt2")))
    store_dir = tmp_path / "store"
    cfg = CacheConfig(context_size=32, max_tokens=6000, shard_tokens=2048)
    cache_activations(lm, load_demo_corpus(), "blocks.1.resid_post", store_dir, cfg)
    out = tmp_path / "out.json"
    cmd = [sys.executable, str(BENCH), "--quick", "--peers", "none", "--no-dense", "--store", str(store_dir)]
    proc = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["config"]["d_in"] == lm.d_model  # the store decides the width
    (row,) = report["rows"]
    assert row["status"] == "ok" and row["mmcs"] is None
    assert 0.0 <= row["fvu"] <= 1.5
