"""What the Dyck transformer computes: accuracy, depth probes per layer, head ablations, depth latents of an SAE.

1. Accuracy: "balanced" when the balanced logit > 0, on held-out strings never seen in training.
2. Depth probes: a multinomial logistic probe per residual stream (embeddings, after each block, and the
   last after the final LayerNorm) predicting
   the depth after each bracket of balanced strings (fit on training strings, scored on held-out ones).
3. Head ablations (one head at a time; accuracy lost, in points):
   mean: the head's output z_h replaced by its mean over held-out strings at the same position;
   resample: z_h replaced by its value on another held-out string of the same length (Chan et al. 2022,
   causal scrubbing, https://www.alignmentforum.org/posts/JvZhhzycHu2Yd57RN), so the rest of the model
   receives a real but wrong count.
4. SAE latents vs depth: a TopK SAE (interplab.saes, trained with training.fit) on the final residual stream
   after the final LayerNorm (what the read-outs see);
   for each depth d, the latent whose activation correlates best (Pearson, over held-out brackets) with
   the indicator "depth == d".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.data.synthetic.dyck import CLOSE, OPEN, DyckSet
from interplab.dyck.model import DyckTransformer, depth_class
from interplab.probes import train_softmax_probe
from interplab.saes import SAE, make_sae, sae_config
from interplab.training import TrainConfig, fit

ABLATIONS = ("mean", "resample")


@torch.no_grad()
def accuracy(model: DyckTransformer, data: DyckSet, head_fn=None) -> float:
    """Share of strings whose balanced / unbalanced label the model gets right."""
    out = model(data.tokens_BT, data.mask_BT, head_fn)
    return float(((out.balanced_logit_B > 0) == data.balanced_B).float().mean())


@torch.no_grad()
def depth_accuracy(model: DyckTransformer, data: DyckSet) -> float:
    """Share of real tokens whose depth class the model's depth read-out gets right."""
    out = model(data.tokens_BT, data.mask_BT)
    target = depth_class(data.depth_BT, model.cfg.max_depth)
    return float((out.depth_logits_BTC.argmax(-1) == target)[data.mask_BT].float().mean())


def bracket_mask(data: DyckSet, balanced_only: bool = True) -> Tensor:
    """[B, T] True at the brackets (of balanced strings only, by default)."""
    mask = (data.tokens_BT == OPEN) | (data.tokens_BT == CLOSE)
    return mask & data.balanced_B[:, None] if balanced_only else mask


@torch.no_grad()
def residuals_at_brackets(model: DyckTransformer, data: DyckSet) -> tuple[list[Tensor], Tensor]:
    """(residual streams [N, d] at the brackets of balanced strings: embeddings, after each block, and the
    last one after the final LayerNorm; the depth after each bracket [N])."""
    mask = bracket_mask(data)
    out = model(data.tokens_BT, data.mask_BT)
    streams = [r[mask] for r in out.resid]
    return [*streams, model.ln_final(streams[-1])], data.depth_BT[mask]


def depth_probe_accuracies(model: DyckTransformer, train: DyckSet, test: DyckSet,
                           max_rows: int = 5_000) -> list[float]:
    """Held-out accuracy of a depth probe on each residual stream (embeddings, after block 0, ..., final LN)."""
    train_resid, train_depth = residuals_at_brackets(model, train)
    test_resid, test_depth = residuals_at_brackets(model, test)
    n_classes = model.cfg.max_depth + 1
    accs = []
    for x_tr, x_te in zip(train_resid, test_resid, strict=True):
        probe = train_softmax_probe(x_tr[:max_rows], train_depth[:max_rows].clamp(max=model.cfg.max_depth), n_classes)
        accs.append(probe.accuracy(x_te, test_depth.clamp(max=model.cfg.max_depth)))
    return accs


@torch.no_grad()
def head_outputs(model: DyckTransformer, data: DyckSet) -> list[Tensor]:
    """Each block's per-head outputs z [B, H, T, d_head] on a clean run."""
    zs: list[Tensor] = []

    def record(layer: int, z: Tensor) -> Tensor:
        zs.append(z)
        return z

    model(data.tokens_BT, data.mask_BT, record)
    return zs


def same_length_donors(data: DyckSet, seed: int = 0) -> Tensor:
    """For each string, the index of another string of the same length (itself when it is the only one)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = data.mask_BT.sum(1)
    donors = torch.arange(len(data))
    for length in lengths.unique():
        idx = torch.nonzero(lengths == length).flatten()
        if idx.numel() > 1:
            shift = torch.randperm(idx.numel(), generator=gen)
            donors[idx] = idx[torch.roll(shift, 1)][torch.argsort(shift)]
    return donors


def ablated_head_fn(model: DyckTransformer, data: DyckSet, layer: int, head: int, how: str, seed: int = 0):
    """The head_fn replacing head (layer, head) by its mean ('mean') or a same-length donor's ('resample')."""
    clean = head_outputs(model, data)[layer][:, head]  # [B, T, d_head]
    if how == "mean":
        mask = data.mask_BT[..., None].float()
        replacement = ((clean * mask).sum(0) / mask.sum(0).clamp_min(1)).expand_as(clean)
    elif how == "resample":
        replacement = clean[same_length_donors(data, seed)]
    else:
        raise ValueError(f"unknown ablation {how!r}; use one of {ABLATIONS}")

    def fn(at: int, z: Tensor) -> Tensor:
        if at != layer:
            return z
        z = z.clone()
        z[:, head] = replacement
        return z

    return fn


def head_ablation_table(model: DyckTransformer, data: DyckSet, how: str = "mean", seed: int = 0) -> list[dict[str, Any]]:
    """One row per head: layer, head, accuracy with the head ablated, and the points of accuracy lost."""
    base = accuracy(model, data)
    rows = []
    for layer in range(model.cfg.n_layers):
        for head in range(model.cfg.n_heads):
            acc = accuracy(model, data, ablated_head_fn(model, data, layer, head, how, seed))
            rows.append({"head": f"L{layer}H{head}", "layer": layer, "index": head, "ablation": how,
                         "accuracy": acc, "cost_points": 100 * (base - acc)})
    return rows


@dataclass
class DyckSAEConfig:
    """The SAE trained on the Dyck model's residual stream."""

    d_sae: int = 24
    """Latents."""
    k: int = 2
    """Active latents per position (TopK)."""
    steps: int = 3000
    """Training steps."""
    batch_size: int = 512
    """Rows per step."""
    lr: float = 3e-3
    """Adam learning rate."""
    seed: int = 0
    """Seed of the SAE and of the batch draws."""


def _row_batches(x_ND: Tensor, batch_size: int, seed: int) -> Iterator[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield x_ND[torch.randint(0, x_ND.shape[0], (batch_size,), generator=gen)]


def train_depth_sae(model: DyckTransformer, train: DyckSet, cfg: DyckSAEConfig) -> SAE:
    """A TopK SAE on the final residual stream as the read-outs see it (after the final LayerNorm, the
    `ln_final` hook of the HF families) at the brackets of the balanced training strings."""
    x_ND = residuals_at_brackets(model, train)[0][-1]
    sae = make_sae(sae_config("topk", d_in=x_ND.shape[1], d_sae=cfg.d_sae, k=cfg.k, seed=cfg.seed,
                              metadata={"model": "dyck", "hook": "ln_final"}))
    fit(sae, _row_batches(x_ND, cfg.batch_size, cfg.seed),
        TrainConfig(total_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, device="cpu",
                    log_every=100))
    return sae


def _pearson_columns(a_NF: Tensor, b_N: Tensor) -> Tensor:
    a = a_NF - a_NF.mean(0)
    b = b_N - b_N.mean()
    return (a * b[:, None]).sum(0) / (a.norm(dim=0) * b.norm()).clamp_min(1e-12)


@torch.no_grad()
def depth_latents(model: DyckTransformer, sae: SAE, test: DyckSet, depths: range = range(5)) -> list[dict[str, Any]]:
    """For each depth: the latent best correlated with "depth == d" on held-out brackets, and its correlation."""
    resid, depth_N = residuals_at_brackets(model, test)
    latents_NF = sae.encode(resid[-1]).float()
    rows = []
    for d in depths:
        corr_F = _pearson_columns(latents_NF, (depth_N == d).float())
        best = int(corr_F.nan_to_num(-1.0).argmax())
        rows.append({"depth": d, "latent": best, "correlation": float(corr_F[best]),
                     "n_brackets": int((depth_N == d).sum())})
    return rows


@torch.no_grad()
def counting_evidence(model: DyckTransformer, data: DyckSet, layer: int, head: int) -> dict[str, float]:
    """How much head (layer, head) looks like a counter, on the real tokens of `data`:
    tv_from_uniform: mean total-variation distance between its attention and uniform attention over the
    prefix (0 = exactly uniform); r2_depth_ratio: R² of a linear fit of its output from depth/(t+1) and
    1/(t+1) (uniform attention over the prefix outputs exactly such a function of the bracket counts)."""
    pattern_BTT = model.attention_patterns(data.tokens_BT, data.mask_BT)[layer][:, head]
    mask_BT = data.mask_BT
    allowed_BTT = torch.ones_like(pattern_BTT, dtype=torch.bool).tril() & mask_BT[:, None, :]
    uniform_BTT = allowed_BTT.float() / allowed_BTT.float().sum(-1, keepdim=True).clamp_min(1)
    tv_BT = 0.5 * (pattern_BTT - uniform_BTT).abs().sum(-1)
    z_ND = head_outputs(model, data)[layer][:, head][mask_BT]
    t_BT = mask_BT.long().cumsum(1).float()  # tokens seen so far, BOS included
    features_NF = torch.stack([(data.depth_BT.float() / t_BT)[mask_BT], (1 / t_BT)[mask_BT],
                               torch.ones(int(mask_BT.sum()))], dim=1)
    coef = torch.linalg.lstsq(features_NF, z_ND).solution
    residual = z_ND - features_NF @ coef
    r2 = 1 - float(residual.pow(2).sum() / (z_ND - z_ND.mean(0)).pow(2).sum().clamp_min(1e-12))
    return {"tv_from_uniform": float(tv_BT[mask_BT].mean()), "r2_depth_ratio": r2}
