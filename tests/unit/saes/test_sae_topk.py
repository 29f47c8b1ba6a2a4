"""TopK SAE: the sparse autograd kernel matches the plain dense implementation, and the pieces
(AuxK, decoder norm utilities, tied weights) do what the papers say."""

from __future__ import annotations

import pytest
import torch

from interplab.common import InterplabError
from interplab.saes import TopKConfig, TrainState, make_sae, sae_config, sparse_ops
from interplab.saes.sparse_ops import sampled_dot, scatter_outer, scatter_outer_many


def _pair(dtype: str, tied: bool = False, apply_b_dec: bool = True, **kw):
    """The same random SAE twice: sparse kernel and dense reference."""
    cfg = TopKConfig(dtype=dtype, tied=tied, apply_b_dec_to_input=apply_b_dec, **kw)
    fast = make_sae(cfg)
    ref = make_sae(cfg.replace(sparse_kernel=False))
    with torch.no_grad():  # move off the init so b_dec, b_enc matter
        for p in fast.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def _grads(sae):
    return {n: p.grad.clone() for n, p in sae.named_parameters()}


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("apply_b_dec", [False, True])
def test_sparse_kernel_gradients_match_dense_float64(tied, apply_b_dec):
    fast, ref = _pair("float64", tied=tied, apply_b_dec=apply_b_dec, d_in=12, d_sae=48, k=5, k_aux=7)
    x = torch.randn(33, 12, dtype=torch.float64)
    dead = torch.zeros(48, dtype=torch.bool)
    dead[::3] = True
    state = TrainState(dead_mask_F=dead)
    out_f, out_r = fast.training_forward(x, state), ref.training_forward(x, state)
    assert out_f.aux_loss.item() > 0
    torch.testing.assert_close(out_f.loss, out_r.loss)
    torch.testing.assert_close(out_f.x_hat_BD, out_r.x_hat_BD)
    out_f.loss.backward()
    out_r.loss.backward()
    gf, gr = _grads(fast), _grads(ref)
    assert gf.keys() == gr.keys()
    for name in gf:
        torch.testing.assert_close(gf[name], gr[name], msg=name)


def test_sparse_kernel_gradients_match_dense_float32_realistic_size():
    torch.manual_seed(1)
    fast, ref = _pair("float32", d_in=384, d_sae=4096, k=32)
    x = torch.randn(256, 384)
    dead = torch.rand(4096) < 0.2
    state = TrainState(dead_mask_F=dead)
    out_f, out_r = fast.training_forward(x, state), ref.training_forward(x, state)
    (out_f.loss).backward()
    (out_r.loss).backward()
    torch.testing.assert_close(out_f.loss, out_r.loss, rtol=1e-5, atol=1e-4)
    for name, g in _grads(fast).items():
        torch.testing.assert_close(g, _grads(ref)[name], rtol=1e-4, atol=1e-5, msg=name)


def test_sparse_primitives_match_dense_products():
    torch.manual_seed(0)
    idx = torch.stack([torch.randperm(20)[:4] for _ in range(9)])
    coef = torch.randn(9, 4, dtype=torch.float64)
    rows = torch.randn(9, 6, dtype=torch.float64)
    dense_BF = torch.zeros(9, 20, dtype=torch.float64).scatter(1, idx, coef)
    torch.testing.assert_close(scatter_outer(idx, coef, rows, 20), dense_BF.T @ rows)
    w = torch.randn(20, 6, dtype=torch.float64)
    torch.testing.assert_close(sampled_dot(rows, w, idx), (rows @ w.T).gather(1, idx))


@pytest.mark.parametrize("outer", ["_outer_sparse_mm", "_outer_dense_tile", "_outer_index_add"])
@pytest.mark.parametrize("dot", ["_dot_sddmm", "_dot_gather_bmm", "_dot_dense_gather"])
def test_every_device_variant_of_the_primitives_is_exact(outer, dot, monkeypatch):
    # The GPU variants are picked by device and size; run each here against the dense product,
    # with chunking forced so the chunk loops are covered too.
    monkeypatch.setattr(sparse_ops, "_CHUNK_ELEMS", 64)
    torch.manual_seed(1)
    idx = torch.stack([torch.randperm(30)[:5] for _ in range(13)])
    coef = torch.randn(13, 5, dtype=torch.float64)
    rows = torch.randn(13, 7, dtype=torch.float64)
    w = torch.randn(30, 7, dtype=torch.float64)
    dense_BF = torch.zeros(13, 30, dtype=torch.float64).scatter(1, idx, coef)
    torch.testing.assert_close(getattr(sparse_ops, outer)(idx, coef, rows, 30), dense_BF.T @ rows)
    torch.testing.assert_close(getattr(sparse_ops, dot)(rows, w, idx), (rows @ w.T).gather(1, idx))


def test_shared_pattern_outer_products_match_dense_products():
    torch.manual_seed(2)
    idx = torch.stack([torch.randperm(40)[:6] for _ in range(17)])
    pairs = [(torch.randn(17, 6, dtype=torch.float64), torch.randn(17, 5, dtype=torch.float64)) for _ in range(2)]
    outs = scatter_outer_many(idx, pairs, 40)
    for (coef, rows), out in zip(pairs, outs, strict=True):
        dense_BF = torch.zeros(17, 40, dtype=torch.float64).scatter(1, idx, coef)
        torch.testing.assert_close(out, dense_BF.T @ rows)


def test_scatter_outer_sums_a_latent_repeated_within_a_row():
    idx = torch.tensor([[3, 3], [1, 3]])  # top-k and AuxK indices concatenated can repeat a latent
    coef = torch.tensor([[1.0, 2.0], [4.0, 8.0]], dtype=torch.float64)
    rows = torch.tensor([[1.0], [10.0]], dtype=torch.float64)
    expected = torch.zeros(5, 1, dtype=torch.float64)
    expected[3] = 1 + 2 + 80
    expected[1] = 40
    torch.testing.assert_close(scatter_outer(idx, coef, rows, 5), expected)


def test_blocked_encoder_selects_the_same_latents_as_one_matmul(monkeypatch):
    torch.manual_seed(3)
    x, w, b = torch.randn(37, 8, dtype=torch.float64), torch.randn(8, 50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    dead = torch.arange(0, 50, 4)
    pre = torch.addmm(b, x, w)
    monkeypatch.setattr(sparse_ops, "_CPU_BLOCK_ELEMS", 50 * 5)  # blocks of 5 rows, last one partial
    monkeypatch.setattr(sparse_ops, "_CPU_BLOCK_MIN_ROWS", 1)
    v, i, av, ai = sparse_ops.encode_topk(x, w, b, 6, dead, 4)
    ref_v, ref_i = pre.topk(6, dim=-1)
    torch.testing.assert_close(v.sort(-1).values, ref_v.relu().sort(-1).values)
    torch.testing.assert_close(pre.gather(1, i).relu(), v)
    ref_av = pre[:, dead].topk(4, dim=-1).values.relu()
    torch.testing.assert_close(av.sort(-1).values, ref_av.sort(-1).values)
    assert torch.isin(ai, dead).all()
    assert ai.shape == (37, 4) and i.shape == (37, 6)


@pytest.mark.parametrize("rows, F, k, integers", [(33, 256, 6, False), (20, 512, 32, False), (17, 256, 9, True),
                                                  (9, 100, 4, False), (9, 64, 16, False)])
def test_group_maxima_top_k_gives_exactly_the_top_k_values(rows, F, k, integers):
    # (9, 100, 4): F not a multiple of the group size; (9, 64, 16): fewer than 2k groups -> torch.topk.
    gen = torch.Generator().manual_seed(F + k)
    pre = torch.randint(-5, 6, (rows, F), generator=gen).float() if integers else torch.randn(rows, F, generator=gen)
    values, idx = torch.empty(rows, k), torch.empty(rows, k, dtype=torch.long)
    sparse_ops.topk_by_group_maxima(pre, k, out=(values, idx))
    expected = pre.topk(k, dim=-1).values  # sorted, descending
    torch.testing.assert_close(values.sort(-1, descending=True).values, expected, rtol=0, atol=0)
    torch.testing.assert_close(pre.gather(1, idx), values, rtol=0, atol=0)
    assert all(row.unique().numel() == k for row in idx)  # k distinct latents per row, even with ties


def test_fused_kernel_passes_gradients_to_inputs_and_through_x_hat():
    # A loss on x_hat (not only on the built-in squared error) and an input that needs grad.
    fast, ref = _pair("float64", d_in=10, d_sae=40, k=4, k_aux=5)
    x = torch.randn(21, 10, dtype=torch.float64)
    dead = torch.zeros(40, dtype=torch.bool)
    dead[1::2] = True
    grads = []
    for sae in (fast, ref):
        xg = x.clone().requires_grad_(True)
        out = sae.training_forward(xg, TrainState(dead_mask_F=dead))
        (out.loss + out.x_hat_BD.sin().sum()).backward()
        grads.append({"x": xg.grad, **_grads(sae)})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_fused_kernel_gradients_when_the_loss_ignores_the_squared_error():
    # Only x_hat is used: the built-in error gets no gradient (None, not a zero tensor) in backward.
    fast, ref = _pair("float64", d_in=10, d_sae=40, k=4, k_aux=5)
    x = torch.randn(21, 10, dtype=torch.float64)
    grads = []
    for sae in (fast, ref):
        sae.training_forward(x).x_hat_BD.pow(3).sum().backward()
        grads.append(_grads(sae))
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_encode_keeps_exactly_k_largest_relu_values():
    sae = make_sae(TopKConfig(d_in=10, d_sae=40, k=6))
    x = torch.randn(7, 10)
    z = sae.encode(x)
    pre = sae.pre_acts(x)
    assert ((z > 0).sum(-1) <= 6).all()
    kth = pre.topk(6, dim=-1).values[:, -1:]
    torch.testing.assert_close(z, torch.where(pre >= kth, pre.relu(), torch.zeros_like(pre)))
    values, idx = sae.encode_sparse(x)
    torch.testing.assert_close(z.gather(1, idx), values)


def test_forward_works_on_batch_seq_inputs_and_training_reports_stats():
    sae = make_sae(TopKConfig(d_in=8, d_sae=32, k=4))
    out = sae(torch.randn(2, 5, 8))
    assert out.x_hat.shape == (2, 5, 8) and out.latents.shape == (2, 5, 32)
    x = torch.randn(64, 8)
    tr = sae.training_forward(x)
    assert tr.aux_loss.item() == 0  # nothing is dead without a mask
    assert tr.fire_counts_F.sum().item() == (tr.top_values_BK > 0).sum().item()
    expected_fvu = (x - tr.x_hat_BD).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    torch.testing.assert_close(tr.fvu, expected_fvu.detach())
    assert 0 < tr.l0.item() <= 4


def test_tied_weights_share_the_decoder_and_halve_the_matrices():
    untied = make_sae(TopKConfig(d_in=8, d_sae=32, k=4))
    tied = make_sae(TopKConfig(d_in=8, d_sae=32, k=4, tied=True))
    assert untied.n_params() - tied.n_params() == 8 * 32
    assert "W_enc" not in dict(tied.named_parameters())
    torch.testing.assert_close(tied.W_enc, tied.W_dec.T)
    x = torch.randn(5, 8)
    tied.training_forward(x).loss.backward()
    assert tied.W_dec.grad is not None and tied(x).x_hat.shape == (5, 8)


def test_encoder_starts_as_scaled_decoder_transpose_with_unit_rows():
    sae = make_sae(TopKConfig(d_in=16, d_sae=64, k=4))
    torch.testing.assert_close(sae.W_enc, sae.cfg.init_encoder_scale * sae.W_dec.T)
    assert 0 < sae.cfg.init_encoder_scale < 1  # TopK's default starts the encoder smaller
    torch.testing.assert_close(sae.decoder_norms(), torch.ones(64))


@pytest.mark.parametrize("arch, default", [("topk", 0.5), ("batchtopk", 0.5), ("relu", 1.0), ("jumprelu", 1.0)])
def test_init_encoder_scale_in_the_config_overrides_the_architecture_default(arch, default):
    base = make_sae(sae_config(arch, d_in=16, d_sae=64))
    assert base.cfg.init_encoder_scale == default
    torch.testing.assert_close(base.W_enc, default * base.W_dec.T)
    sae = make_sae(sae_config(arch, d_in=16, d_sae=64, init_encoder_scale=0.25))
    torch.testing.assert_close(sae.W_enc, 0.25 * sae.W_dec.T)
    torch.testing.assert_close(sae.W_dec, base.W_dec)  # the decoder does not depend on it


def test_gradient_projection_removes_the_radial_component():
    sae = make_sae(TopKConfig(d_in=8, d_sae=16, k=3, dtype="float64"))
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(16, 1, dtype=torch.float64) + 0.5)
    sae.training_forward(torch.randn(20, 8, dtype=torch.float64)).loss.backward()
    before = sae.W_dec.grad.clone()
    sae.remove_gradient_parallel_to_decoder_()
    radial = (sae.W_dec.grad * sae.W_dec).sum(-1)
    torch.testing.assert_close(radial, torch.zeros(16, dtype=torch.float64))
    # only the radial part was removed
    w_unit = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(before - sae.W_dec.grad, (before * w_unit).sum(-1, keepdim=True) * w_unit)
    sae.set_decoder_norm_to_unit_()
    torch.testing.assert_close(sae.decoder_norms(), torch.ones(16, dtype=torch.float64))


def test_auxk_gives_dead_latents_gradient():
    sae = make_sae(TopKConfig(d_in=8, d_sae=64, k=2, k_aux=4))
    x = torch.randn(32, 8)
    with torch.no_grad():
        live = sae.training_forward(x).fire_counts_F > 0
    dead = ~live
    sae.training_forward(x, TrainState(dead_mask_F=dead)).loss.backward()
    assert sae.W_dec.grad[dead].abs().sum(-1).gt(0).any()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(InterplabError, match="k <= d_sae"):
        make_sae(TopKConfig(d_in=4, d_sae=8, k=9))
    with pytest.raises(InterplabError, match="unknown SAE architecture"):
        sae_config("nope", d_in=4, d_sae=8)
    with pytest.raises(InterplabError, match="l1_coeff"):  # a ReLU field is not silently dropped
        sae_config("topk", d_in=4, d_sae=8, l1_coeff=1.0)
    sae = make_sae(TopKConfig(d_in=4, d_sae=8, k=2))
    with pytest.raises(InterplabError, match="d_in=4"):
        sae.encode(torch.randn(3, 5))
    with pytest.raises(InterplabError, match="dead_mask_F"):
        sae.training_forward(torch.randn(3, 4), TrainState(dead_mask_F=torch.ones(3, dtype=torch.bool)))
