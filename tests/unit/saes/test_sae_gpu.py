"""The sparse TopK kernel on CUDA (index_add / gather paths) matches the dense reference."""

from __future__ import annotations

import pytest
import torch

from interplab.saes import TopKConfig, TrainState, make_sae

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("d_sae", [4096, 16384])  # dense-tile and index_add dispatch branches
def test_sparse_kernel_matches_dense_on_cuda(dtype, tied, d_sae):
    torch.manual_seed(0)
    cfg = TopKConfig(d_in=384, d_sae=d_sae, k=32, dtype=dtype, tied=tied)
    fast = make_sae(cfg).cuda()
    ref = make_sae(cfg.replace(sparse_kernel=False)).cuda()
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(512, 384, device="cuda", dtype=fast.dtype)
    state = TrainState(dead_mask_F=torch.rand(d_sae, device="cuda") < 0.2)
    # TF32 would make the dense reference itself inexact
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        out_f, out_r = fast.training_forward(x, state), ref.training_forward(x, state)
        out_f.loss.backward()
        out_r.loss.backward()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    torch.testing.assert_close(out_f.loss, out_r.loss, rtol=1e-5, atol=1e-4)
    for (name, p), (_, q) in zip(fast.named_parameters(), ref.named_parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)
