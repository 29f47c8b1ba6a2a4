"""A dashboards build on CUDA writes the same statistics and contexts as on CPU."""

from __future__ import annotations

import pytest
import torch

from interplab.dashboards import DashboardConfig, build_dashboards
from interplab.dashboards.db import DashboardDB

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_build_matches_the_cpu_build(gpt2_store, random_sae, tmp_path):
    model_dir, store = gpt2_store
    cfg = DashboardConfig(top_k=4, window=3, batch_tokens=64, write_batch=16)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # TF32 matmuls would move activations by ~1e-3
    try:
        for device in ("cpu", "cuda"):
            build_dashboards(random_sae, store, tmp_path / f"{device}.db", cfg, model=str(model_dir), device=device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    cpu, gpu = DashboardDB(tmp_path / "cpu.db"), DashboardDB(tmp_path / "cuda.db")
    for f in range(48):
        a, b = cpu.get_feature(1, f), gpu.get_feature(1, f)
        assert a is not None and b is not None
        # CPU and CUDA matmuls differ by ulps: a value right at 0 or at a bin edge may move
        assert a.frequency == pytest.approx(b.frequency, abs=2 / 384)
        assert sum(abs(x - y) for x, y in zip(a.hist_counts, b.hist_counts, strict=True)) <= 4
        assert a.max_act == pytest.approx(b.max_act, rel=1e-5)
        assert [n for n, _ in a.neighbours] == [n for n, _ in b.neighbours]
        top_a, top_b = cpu.get_examples(1, f, "top"), gpu.get_examples(1, f, "top")
        assert [e.position for e in top_a] == [e.position for e in top_b]
        quant_a, quant_b = cpu.get_examples(1, f, "quantile"), gpu.get_examples(1, f, "quantile")
        assert [e.position for e in quant_a] == [e.position for e in quant_b]
