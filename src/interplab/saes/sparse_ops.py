"""Sparse autograd kernels for TopK SAEs: only the k chosen latents per row cost anything after
the encoder's forward matmul.

A dense TopK step costs five [B, d_in] x [d_in, d_sae]-sized matmuls: encoder forward, decoder
forward, decoder weight grad, latent grad, encoder weight grad. With k of d_sae latents alive per
row, four of them are sparse products:

1. decode:   x_hat_b = Σ_j v_bj · W_dec[i_bj] + b_dec       (embedding_bag, B·k·d_in)
2. dv_bj   = <dx_hat_b, W_dec[i_bj]>                      (sampled dense-dense product, B·k·d_in)
3. dW_dec[f] = Σ_{(b,j): i_bj = f} v_bj · dx_hat_b         (sparse [d_sae, B] @ [B, d_in])
4. dW_enc[:, f] = Σ_{(b,j): i_bj = f} g_bj · sae_in_b      (same product, g = dv where v > 0)
   db_enc[f] = Σ g_bj,  db_dec = Σ_b dx_hat_b - W_enc @ db_enc (the second term when b_dec is
   subtracted from the input)

`TopKTrainKernel` runs a whole TopK training forward (encode, select, decode, squared error) as one
autograd node whose backward is exactly the list above: the squared-error gradient is formed once,
no [B, d_sae] tensor is kept for autograd, the two weight gradients share one sort of the latent
indices (when no AuxK latents are added), and none of the dozen [B, d_in] elementwise ops of a
composed graph is recorded or replayed.

The encoder (`encode_topk`) is the one dense product left. On CPU it runs in row blocks of
`_CPU_BLOCK_ELEMS` pre-activations (at least `_CPU_BLOCK_MIN_ROWS` rows) written into one reused buffer: the top-k reads each block while
it is still in cache, and the [B, d_sae] matrix never exists (a fresh 64 MB tensor per step costs
more in page faults than the top-k itself); the top-k of a block goes through the maxima of strided
groups first (`topk_by_group_maxima`, exact). On GPUs it is one addmm and torch.topk.

Products 2-4 dispatch by device. CPU: torch.sparse kernels (COO sparse @ dense, CSR sampled
dense-dense), much faster there than the dense products. GPU: a scattered dense tile times a dense
matrix on tensor cores, which at SAE sizes beats cuSPARSE and index_add; the GPU savings come from
the embedding_bag decoder, from never keeping [B, d_sae] tensors for autograd, and from folding the
AuxK latents into the same backward. The timings behind each choice: bench/README.md ("Kernel
choices").
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

# Cap on elements of any [rows, k, d_in] temporary, so big batches never allocate gigabytes.
_CHUNK_ELEMS = 1 << 26
# CPU encoder block: pre-activations per matmul (2^21 fp32 = 8 MB, 512 rows at d_sae 4096), small
# enough to be read back from cache by the top-k (larger blocks were slower; bench/README.md), but
# never fewer than _CPU_BLOCK_MIN_ROWS rows: with fewer, every block re-reads all of W_enc from memory
# (wider SAEs: 128 rows at d_sae 16,384 were 1.2x, 32 rows at 65,536 1.75x slower than 512 rows).
_CPU_BLOCK_ELEMS = 1 << 21
_CPU_BLOCK_MIN_ROWS = 512
# GPU dispatch between sparse kernels (cost ∝ k) and dense tiles on tensor cores (cost ∝ d_sae): the
# crossover ratios d_sae / k from H100 timings (bench/README.md, "Kernel choices").
_DOT_DENSE_RATIO = 74
_OUTER_DENSE_RATIO = 218


def _chunk_rows(n_rows: int, per_row: int, elems: int | None = None) -> int:
    cap = _CHUNK_ELEMS if elems is None else elems
    return max(1, min(n_rows, cap // max(1, per_row)))


def scatter_outer(idx_BK: Tensor, coef_BK: Tensor, rows_BD: Tensor, n_out: int) -> Tensor:
    """out[f] = Σ_{(b,j): idx[b,j]=f} coef[b,j] · rows[b]  -> [n_out, D] (float32 accumulation)."""
    if rows_BD.device.type == "cpu":
        return _outer_sparse_mm(idx_BK, coef_BK, rows_BD, n_out)
    return scatter_outer_many(idx_BK, [(coef_BK, rows_BD)], n_out)[0]


def scatter_outer_many(idx_BK: Tensor, pairs: list[tuple[Tensor, Tensor]], n_out: int) -> list[Tensor]:
    """`scatter_outer(idx, coef, rows, n_out)` for each (coef, rows) pair sharing one index pattern
    whose rows hold distinct indices (top-k indices do); on CPU the pattern is sorted once for all."""
    if idx_BK.device.type == "cpu":
        return _outer_sorted_coo(idx_BK, pairs, n_out)
    if n_out <= _OUTER_DENSE_RATIO * idx_BK.shape[1]:
        return [_outer_dense_tile(idx_BK, c, r, n_out) for c, r in pairs]
    return [_outer_index_add(idx_BK, c, r, n_out) for c, r in pairs]


def _acc_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _outer_sorted_coo(idx_BK: Tensor, pairs: list[tuple[Tensor, Tensor]], n_out: int) -> list[Tensor]:
    # CPU: a [n_out, B] sparse matrix times the dense rows (one axpy of a dense row per entry),
    # ~10x the speed of materialising B·k·D products there. The pattern is sorted by latent once
    # (stable, so rows stay ascending within a latent: a valid coalesced COO) and shared by every
    # pair; an unsorted COO would be re-sorted inside each product. Needs distinct (latent, row)
    # pairs, which the top-k indices of one row are (faster than MKL's CSR product; bench/README.md).
    B, K = idx_BK.shape
    flat = idx_BK.reshape(-1)
    order = torch.argsort(flat, stable=True)
    ind = torch.stack([flat[order], order // K])
    out = []
    for coef_BK, rows_BD in pairs:
        acc = _acc_dtype(rows_BD)
        g_FB = torch.sparse_coo_tensor(
            ind, coef_BK.reshape(-1)[order].to(acc), (n_out, B), check_invariants=False, is_coalesced=True
        )
        out.append(torch.sparse.mm(g_FB, rows_BD.to(acc)))
    return out


def _outer_sparse_mm(idx_BK: Tensor, coef_BK: Tensor, rows_BD: Tensor, n_out: int) -> Tensor:
    # Unsorted COO (torch coalesces it, summing repeated (latent, row) pairs): for index patterns
    # that may repeat a latent within a row, i.e. top-k and AuxK indices concatenated.
    B, K = idx_BK.shape
    acc = _acc_dtype(rows_BD)
    row_ids = torch.arange(B, device=idx_BK.device).repeat_interleave(K)
    g_FB = torch.sparse_coo_tensor(
        torch.stack([idx_BK.reshape(-1), row_ids]), coef_BK.reshape(-1).to(acc), (n_out, B),
        check_invariants=False,
    )
    return torch.sparse.mm(g_FB, rows_BD.to(acc))


def _outer_dense_tile(idx_BK: Tensor, coef_BK: Tensor, rows_BD: Tensor, n_out: int) -> Tensor:
    # GPUs, small dictionaries: a scattered dense [rows, n_out] tile times the rows on tensor
    # cores beats cuSPARSE and index_add (bench/README.md, "Kernel choices").
    B, D = rows_BD.shape
    acc = _acc_dtype(rows_BD)
    out_FD = torch.zeros(n_out, D, dtype=acc, device=rows_BD.device)
    step = _chunk_rows(B, n_out)
    for s in range(0, B, step):
        e = min(B, s + step)
        g_bF = torch.zeros(e - s, n_out, dtype=acc, device=rows_BD.device)
        g_bF.scatter_add_(1, idx_BK[s:e], coef_BK[s:e].to(acc))
        out_FD.addmm_(g_bF.T, rows_BD[s:e].to(acc))
    return out_FD


def _outer_index_add(idx_BK: Tensor, coef_BK: Tensor, rows_BD: Tensor, n_out: int) -> Tensor:
    # GPUs, large dictionaries: B·k·d_in products added into their rows, independent of d_sae.
    B, D = rows_BD.shape
    acc = _acc_dtype(rows_BD)
    out_FD = torch.zeros(n_out, D, dtype=acc, device=rows_BD.device)
    step = _chunk_rows(B, idx_BK.shape[1] * D)
    for s in range(0, B, step):
        prod = coef_BK[s : s + step, :, None].to(acc) * rows_BD[s : s + step, None, :].to(acc)
        out_FD.index_add_(0, idx_BK[s : s + step].reshape(-1), prod.reshape(-1, D))
    return out_FD


def sampled_dot(a_BD: Tensor, w_FD: Tensor, idx_BK: Tensor) -> Tensor:
    """out[b, j] = <a[b], w[idx[b, j]]>  -> [B, K] (dtype of a)."""
    if idx_BK.shape[1] == 0:
        return a_BD.new_zeros(idx_BK.shape)
    if a_BD.device.type == "cpu":
        return _dot_sddmm(a_BD, w_FD, idx_BK)
    if w_FD.shape[0] > _DOT_DENSE_RATIO * idx_BK.shape[1]:
        return _dot_gather_bmm(a_BD, w_FD, idx_BK)
    return _dot_dense_gather(a_BD, w_FD, idx_BK)


def _dot_sddmm(a_BD: Tensor, w_FD: Tensor, idx_BK: Tensor) -> Tensor:
    # CPU: sampled dense-dense product on a CSR pattern with exactly k entries per row.
    B, K = idx_BK.shape
    acc = _acc_dtype(a_BD)
    crow = torch.arange(0, B * K + 1, K, device=a_BD.device)
    with warnings.catch_warnings():
        # "CSR support is in beta" / "invariant checks disabled": the op is tested against a dense product.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        mask = torch.sparse_csr_tensor(
            crow, idx_BK.reshape(-1), torch.zeros(B * K, dtype=acc, device=a_BD.device),
            (B, w_FD.shape[0]), check_invariants=False,
        )
    out = torch.sparse.sampled_addmm(mask, a_BD.to(acc), w_FD.to(acc).T, beta=0.0)
    return out.values().view(B, K).to(a_BD.dtype)


def _dot_gather_bmm(a_BD: Tensor, w_FD: Tensor, idx_BK: Tensor) -> Tensor:
    # GPUs, k small next to d_sae: gather the k rows per token and batch-multiply (B·k·d_in work).
    B, K = idx_BK.shape
    out_BK = torch.empty(B, K, dtype=a_BD.dtype, device=a_BD.device)
    step = _chunk_rows(B, K * a_BD.shape[1])
    for s in range(0, B, step):
        w_bKD = w_FD[idx_BK[s : s + step]].to(a_BD.dtype)
        out_BK[s : s + step] = torch.bmm(w_bKD, a_BD[s : s + step, :, None]).squeeze(-1)
    return out_BK


def _dot_dense_gather(a_BD: Tensor, w_FD: Tensor, idx_BK: Tensor) -> Tensor:
    # GPUs, k large next to d_sae (AuxK): one dense [rows, d_sae] product then a gather is cheaper
    # than moving B·k·d_in gathered rows through memory.
    B, K = idx_BK.shape
    out_BK = torch.empty(B, K, dtype=a_BD.dtype, device=a_BD.device)
    step = _chunk_rows(B, w_FD.shape[0])
    for s in range(0, B, step):
        e = min(B, s + step)
        out_BK[s:e] = (a_BD[s:e] @ w_FD.to(a_BD.dtype).T).gather(1, idx_BK[s:e])
    return out_BK


def sparse_decode_plain(values_BK: Tensor, idx_BK: Tensor, w_FD: Tensor) -> Tensor:
    """Σ_j values[b, j] · w[idx[b, j]] without the bias (no custom backward)."""
    return torch.nn.functional.embedding_bag(
        idx_BK, w_FD, per_sample_weights=values_BK.to(w_FD.dtype), mode="sum"
    )


class SparseDecode(torch.autograd.Function):
    """x_hat_BD = Σ_j values[b, j] · W_dec[idx[b, j]] with sparse gradients for values and W_dec."""

    @staticmethod
    def forward(ctx: FunctionCtx, values_BK: Tensor, idx_BK: Tensor, w_dec_FD: Tensor) -> Tensor:
        ctx.save_for_backward(values_BK, idx_BK, w_dec_FD)
        return sparse_decode_plain(values_BK, idx_BK, w_dec_FD)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_BD: Tensor):  # type: ignore[override]
        values_BK, idx_BK, w_dec_FD = ctx.saved_tensors  # type: ignore[attr-defined]
        d_values = d_w = None
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]
            d_values = sampled_dot(grad_BD, w_dec_FD, idx_BK).to(values_BK.dtype)
        if ctx.needs_input_grad[2]:  # type: ignore[attr-defined]
            d_w = scatter_outer(idx_BK, values_BK, grad_BD, w_dec_FD.shape[0]).to(w_dec_FD.dtype)
        return d_values, None, d_w


# CPU top-k: strided groups of this many pre-activations per row (see `topk_by_group_maxima`).
_TOPK_GROUP = 8


def topk_by_group_maxima(pre_RF: Tensor, k: int, out: tuple[Tensor, Tensor]) -> None:
    """Exact per-row top-k (values, indices; unsorted) written into `out`; CPU blocks take the path
    below, other devices torch.topk.

    Each row is split into C = F / g strided groups {c, c + C, c + 2C, ...}; the k elements of a row's
    top-k lie in at most k groups, and those are among the k groups with the largest maxima (every
    group with a larger maximum holds a larger element). So one vectorised max over the groups, a
    top-k over the C maxima and a top-k over the k·g elements of the chosen groups give the exact
    values without torch.topk's copy and scan of the whole row (bench/README.md has the timing).
    Under exact ties the chosen indices may differ from torch.topk's, never the values.
    Falls back to torch.topk when F is not a multiple of g or has fewer than 2k groups.
    """
    R, F = pre_RF.shape
    g = _TOPK_GROUP
    C = F // g
    if pre_RF.device.type != "cpu" or F % g or C < 2 * k:
        torch.topk(pre_RF, k, dim=-1, sorted=False, out=out)
        return
    groups_RgC = pre_RF.view(R, g, C)
    top_groups_Rk = groups_RgC.amax(1).topk(k, dim=-1, sorted=False).indices
    cand_Rgk = groups_RgC.gather(2, top_groups_Rk[:, None, :].expand(R, g, k))
    values, j = cand_Rgk.view(R, g * k).topk(k, dim=-1, sorted=False)
    out[0].copy_(values)
    # candidate j sits at group row j // k of chosen group j % k, i.e. at (j // k)·C + that group's index
    torch.add(top_groups_Rk.gather(1, j.remainder(k)), j.div(k, rounding_mode="floor"), alpha=C, out=out[1])


def matmul_dtype(t: Tensor) -> torch.dtype:
    """The dtype autocast would run a matmul of `t` in (t's own dtype when autocast is off)."""
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


def encode_topk(
    sae_in_BD: Tensor, w_enc_DF: Tensor, b_enc_F: Tensor, k: int, dead_idx_N: Tensor, k_aux: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """ReLU(top-k) of pre = sae_in @ W_enc + b_enc per row, and ReLU(top-a) among the dead latents
    `dead_idx_N` (a = min(k_aux, n_dead)). Returns values [B, k], idx [B, k], aux values [B, a],
    aux idx [B, a]; the matmul runs in the autocast dtype when autocast is on (values then too)."""
    B, F = sae_in_BD.shape[0], w_enc_DF.shape[1]
    dt = matmul_dtype(sae_in_BD)
    x_BD, w_DF, b_F = sae_in_BD.to(dt), w_enc_DF.to(dt), b_enc_F.to(dt)
    dev = x_BD.device
    a = min(k_aux, dead_idx_N.numel())
    values_BK, idx_BK = x_BD.new_empty(B, k), torch.empty(B, k, dtype=torch.long, device=dev)
    aux_v_BA, aux_i_BA = x_BD.new_empty(B, a), torch.empty(B, a, dtype=torch.long, device=dev)
    rows = _chunk_rows(B, F, max(_CPU_BLOCK_ELEMS, _CPU_BLOCK_MIN_ROWS * F)) if dev.type == "cpu" else B
    block = x_BD.new_empty(rows, F) if rows < B else None
    with torch.autocast(dev.type, enabled=False):  # dtypes were chosen above; out= needs them fixed
        for s in range(0, B, rows):
            e = min(B, s + rows)
            if block is None:
                pre_bF = torch.addmm(b_F, x_BD[s:e], w_DF)
            else:
                pre_bF = torch.addmm(b_F, x_BD[s:e], w_DF, out=block[: e - s])
            topk_by_group_maxima(pre_bF, k, out=(values_BK[s:e], idx_BK[s:e]))
            if a:
                v, sub = pre_bF.index_select(1, dead_idx_N).topk(a, dim=-1, sorted=False)
                aux_v_BA[s:e], aux_i_BA[s:e] = v, dead_idx_N[sub]
    return values_BK.relu_(), idx_BK, aux_v_BA.relu_(), aux_i_BA


# TopKTrainKernel.forward's inputs, in order (backward returns one gradient slot per input).
_KERNEL_INPUTS = ("x_BD", "b_dec_D", "w_enc_DF", "b_enc_F", "w_dec_FD", "k", "dead_idx_N", "k_aux", "subtract_b_dec")


class TopKKernelOutput(NamedTuple):
    """TopKTrainKernel's outputs (and, in backward, the gradients with respect to them)."""

    mse: Tensor
    """‖x - x̂‖² summed over d_in, mean over rows."""
    x_hat_BD: Tensor
    """Reconstruction."""
    resid_BD: Tensor
    """x - x̂ (no grad)."""
    values_BK: Tensor
    """Kept latent values (ReLU applied)."""
    idx_BK: Tensor
    """Their latent indices."""
    aux_values_BA: Tensor
    """AuxK values among dead latents (A = 0 when none is dead)."""
    aux_idx_BA: Tensor
    """Their latent indices."""
    total: Tensor
    """Σ‖x - mean(x)‖² over the batch (no grad): the FVU denominator."""


class TopKTrainKernel(torch.autograd.Function):
    """A TopK SAE training forward (encode, top-k, decode, squared error) as one autograd node.

    Inputs: x_BD (no grad expected), b_dec_D, w_enc_DF, b_enc_F, w_dec_FD, k, dead_idx_N (long
    indices of dead latents, possibly empty), k_aux, subtract_b_dec (the encoder reads x - b_dec).
    Returns mse (‖x - x̂‖² summed over d_in, mean over rows), x_hat_BD, resid_BD = x - x̂ (no grad),
    values_BK, idx_BK, aux_values_BA, aux_idx_BA (A = 0 when no latent is dead), and total = Σ‖x - mean(x)‖²
    over the batch (no grad; the FVU denominator, from the encoder input already in hand).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x_BD: Tensor,
        b_dec_D: Tensor,
        w_enc_DF: Tensor,
        b_enc_F: Tensor,
        w_dec_FD: Tensor,
        k: int,
        dead_idx_N: Tensor,
        k_aux: int,
        subtract_b_dec: bool,
    ):
        sae_in_BD = x_BD - b_dec_D if subtract_b_dec else x_BD
        values_BK, idx_BK, aux_v, aux_i = encode_topk(sae_in_BD, w_enc_DF, b_enc_F, k, dead_idx_N, k_aux)
        x_hat_BD = sparse_decode_plain(values_BK, idx_BK, w_dec_FD).add_(b_dec_D)
        resid_BD = x_BD - x_hat_BD
        mse = torch.linalg.vector_norm(resid_BD).square() / x_BD.shape[0]
        with torch.no_grad():
            # Σ‖x - mean‖² = Σ‖s‖² - B‖mean(s)‖² for s = x - c, any constant c; with c = b_dec (near the
            # data's centre) the difference does not cancel badly, and no centred copy of x is made.
            if subtract_b_dec:
                total = torch.linalg.vector_norm(sae_in_BD).square() - sae_in_BD.sum(0).square().sum() / x_BD.shape[0]
            else:
                total = torch.linalg.vector_norm(x_BD - x_BD.mean(0)).square()
        ctx.subtract_b_dec = subtract_b_dec  # type: ignore[attr-defined]
        # Outputs the loss does not use get None in backward instead of [B, d_in] zero tensors.
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(resid_BD, idx_BK, aux_i, total)
        ctx.save_for_backward(sae_in_BD, resid_BD, w_enc_DF, w_dec_FD, values_BK, idx_BK, aux_v, aux_i)
        return mse, x_hat_BD, resid_BD, values_BK, idx_BK, aux_v, aux_i, total

    @staticmethod
    def backward(ctx: FunctionCtx, *grads_out):  # type: ignore[override]
        g = TopKKernelOutput(*grads_out)  # gradients arrive in the order of the outputs
        g_mse, g_x_hat, g_values, g_aux = g.mse, g.x_hat_BD, g.values_BK, g.aux_values_BA
        sae_in_BD, resid_BD, w_enc_DF, w_dec_FD, values_BK, idx_BK, aux_v, aux_i = ctx.saved_tensors  # type: ignore[attr-defined]
        needs = dict(zip(_KERNEL_INPUTS, ctx.needs_input_grad, strict=True))  # type: ignore[attr-defined]
        B, F = resid_BD.shape[0], w_enc_DF.shape[1]
        # d mse / d x_hat = -2 (x - x_hat) / B; any gradient on x_hat itself adds to it.
        d_mse_BD = resid_BD * (-2.0 / B * g_mse) if g_mse is not None else None
        if g_x_hat is None:
            d_xhat_BD = d_mse_BD if d_mse_BD is not None else torch.zeros_like(resid_BD)
        else:
            d_xhat_BD = g_x_hat if d_mse_BD is None else d_mse_BD + g_x_hat
        d_v_BK = sampled_dot(d_xhat_BD, w_dec_FD, idx_BK).to(values_BK.dtype)
        if g_values is not None:
            d_v_BK = d_v_BK + g_values
        # ReLU after top-k: gradient reaches the encoder only where the kept value is positive.
        g_BK = d_v_BK * (values_BK > 0)
        pairs: list[tuple[Tensor, Tensor]] = []
        if needs["w_dec_FD"]:
            pairs.append((values_BK, d_xhat_BD))
        if aux_i.shape[1]:
            g_aux_BA = g_aux if g_aux is not None else torch.zeros_like(aux_v)
            g_all, i_all = torch.cat([g_BK, g_aux_BA * (aux_v > 0)], 1), torch.cat([idx_BK, aux_i], 1)
        else:
            g_all, i_all = g_BK, idx_BK
            if needs["w_enc_DF"]:  # same index pattern: one sort for both weight gradients
                pairs.append((g_all, sae_in_BD))
        outer = scatter_outer_many(idx_BK, pairs, F) if pairs else []
        d_w_dec = outer.pop(0).to(w_dec_FD.dtype) if needs["w_dec_FD"] else None
        d_w_enc = None
        if needs["w_enc_DF"]:
            d_FD = outer.pop(0) if outer else scatter_outer(i_all, g_all, sae_in_BD, F)
            d_w_enc = d_FD.T.to(w_enc_DF.dtype)
        acc = _acc_dtype(resid_BD)
        db_enc_F = torch.zeros(F, dtype=acc, device=g_all.device).index_add_(
            0, i_all.reshape(-1), g_all.reshape(-1).to(acc)
        )
        d_b_enc = db_enc_F.to(w_enc_DF.dtype) if needs["b_enc_F"] else None
        d_b_dec = None
        if needs["b_dec_D"]:
            d_b_dec = d_xhat_BD.sum(0)
            if ctx.subtract_b_dec:  # type: ignore[attr-defined]
                # d(sae_in)/d(b_dec) = -I, summed over the batch: -Σ_b W_enc g_b = -W_enc @ db_enc.
                d_b_dec = d_b_dec - (w_enc_DF.to(acc) @ db_enc_F).to(d_b_dec.dtype)
        d_x = None
        if needs["x_BD"]:
            d_x = sparse_decode_plain(g_all, i_all, w_enc_DF.T).to(resid_BD.dtype)
            if d_mse_BD is not None:
                d_x = d_x - d_mse_BD
        grads = {"x_BD": d_x, "b_dec_D": d_b_dec, "w_enc_DF": d_w_enc, "b_enc_F": d_b_enc, "w_dec_FD": d_w_dec}
        return tuple(grads.get(name) for name in _KERNEL_INPUTS)


def topk_train_forward(x_BD: Tensor, b_dec_D: Tensor, w_enc_DF: Tensor, b_enc_F: Tensor, w_dec_FD: Tensor,
                       k: int, dead_idx_N: Tensor, k_aux: int, subtract_b_dec: bool) -> TopKKernelOutput:
    """`TopKTrainKernel` with its outputs named."""
    return TopKKernelOutput(*TopKTrainKernel.apply(
        x_BD, b_dec_D, w_enc_DF, b_enc_F, w_dec_FD, k, dead_idx_N, k_aux, subtract_b_dec))


def topk_among_dead(pre_BF: Tensor, dead_idx_N: Tensor, k_aux: int) -> tuple[Tensor, Tensor]:
    """ReLU(top-k_aux) of pre-activations restricted to the dead latents `dead_idx_N`; a [B, 0]
    pair when none are dead. Selecting the dead columns first makes it a top-k over [B, n_dead]
    rather than over a masked [B, d_sae] copy."""
    a = min(k_aux, dead_idx_N.numel())
    if a == 0:
        empty = pre_BF.new_zeros(pre_BF.shape[0], 0)
        return empty, torch.zeros(pre_BF.shape[0], 0, dtype=torch.long, device=pre_BF.device)
    values, sub_idx = pre_BF.index_select(1, dead_idx_N).topk(a, dim=-1, sorted=False)
    return values.relu(), dead_idx_N[sub_idx]
