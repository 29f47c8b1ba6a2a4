"""How well transcoders stand in for a model's MLPs.

1. Reconstruction per layer: FVU of the MLP output (`blocks.L.mlp_out`) predicted from the MLP input
   (`blocks.L.mlp_in`), Σ over all evaluated tokens (ReconstructionAccumulator), and L0.
2. Downstream, with every given layer's MLP replaced by its transcoder at once
   (`splice_transcoders`) and, for the baseline, with those MLP outputs zeroed (`ablate_mlps`):
   CE recovered = (CE_zero - CE_tc) / (CE_zero - CE_clean); KL recovered = 1 - KL_tc / KL_zero,
   as in reconstruction.py.
3. With an exclusion rule (the one the transcoders were trained under: attention sinks), a token
   counts and is replaced only if every layer's MLP input and output keep it; the others keep their
   real MLP output in both the splice and the zero-ablation, as reconstruction.py does for SAEs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.evals.reconstruction import ReconstructionAccumulator, _ce_and_logprobs, _kl_sum, _ratio

if TYPE_CHECKING:
    from interplab.activations.exclusion import ExclusionRule
    from interplab.models.loading import LoadedModel


@torch.no_grad()
def evaluate_transcoders(lm: LoadedModel, batches: Iterable[Mapping[str, Tensor]],
                         transcoders: Mapping[int, Any], exclusion: ExclusionRule | None = None) -> dict[str, Any]:
    """Per-layer FVU / L0 of the MLP output and CE / KL recovered with all `transcoders` spliced in.

    Returns {"layers": {L: {"fvu", "l0"}}, "fvu_mean", "ce_clean", "ce_spliced", "ce_zero",
    "ce_recovered", "kl_spliced", "kl_zero", "kl_recovered", "n_tokens", "n_excluded"}.
    """
    from interplab.models.interventions import ablate_mlps, capture, splice_transcoders

    layers = sorted(transcoders)
    hooks = [f"blocks.{L}.{s}" for L in layers for s in ("mlp_in", "mlp_out")]
    rec = {L: ReconstructionAccumulator(lm.d_model) for L in layers}
    l0 = {L: 0.0 for L in layers}
    sums = dict(ce_clean=0.0, ce_spliced=0.0, ce_zero=0.0, kl_spliced=0.0, kl_zero=0.0)
    n_ce = n_kl = n_tok = n_real = 0
    for batch in batches:
        with capture(lm.model, hooks) as acts:
            ce_clean, count, logp_clean, mask_BS = _ce_and_logprobs(lm, batch)
        keep_BS = _kept(batch, mask_BS, acts, hooks, exclusion)
        for L in layers:
            x, y = acts[f"blocks.{L}.mlp_in"][keep_BS], acts[f"blocks.{L}.mlp_out"][keep_BS]
            out = transcoders[L](x)
            rec[L].update(y, out.x_hat)
            l0[L] += float((out.latents != 0).sum())
        splice_at = None if exclusion is None or exclusion.is_empty else keep_BS
        with splice_transcoders(lm.model, transcoders, splice_at):
            ce_tc, _, logp_tc, _ = _ce_and_logprobs(lm, batch)
        with ablate_mlps(lm.model, layers, splice_at):
            ce_zero, _, logp_zero, _ = _ce_and_logprobs(lm, batch)
        sums["ce_clean"] += float(ce_clean.sum())
        sums["ce_spliced"] += float(ce_tc.sum())
        sums["ce_zero"] += float(ce_zero.sum())
        sums["kl_spliced"] += _kl_sum(logp_clean, logp_tc, mask_BS)
        sums["kl_zero"] += _kl_sum(logp_clean, logp_zero, mask_BS)
        n_ce += int(count)
        n_kl += int(mask_BS.sum())
        n_tok += int(keep_BS.sum())
        n_real += int(mask_BS.sum())
    if n_ce == 0 or n_tok == 0:
        raise InterplabError("no tokens to score; give at least one text with two or more tokens")
    per_layer = {L: {"fvu": rec[L].result().fvu, "l0": l0[L] / n_tok} for L in layers}
    ce = {k: v / n_ce for k, v in sums.items() if k.startswith("ce")}
    kl = {k: v / n_kl for k, v in sums.items() if k.startswith("kl")}
    return {
        "layers": per_layer,
        "fvu_mean": sum(v["fvu"] for v in per_layer.values()) / len(per_layer),
        **ce, **kl,
        "ce_recovered": _ratio(ce["ce_zero"] - ce["ce_spliced"], ce["ce_zero"] - ce["ce_clean"], "CE recovered"),
        "kl_recovered": 1 - _ratio(kl["kl_spliced"], kl["kl_zero"], "KL recovered"),
        "n_tokens": n_tok,
        "n_excluded": n_real - n_tok,
    }


def _kept(batch: Mapping[str, Tensor], mask_BS: Tensor, acts: Mapping[str, Tensor], hooks: list[str],
          exclusion: ExclusionRule | None) -> Tensor:
    """[B, S] bool: real tokens that every hook keeps under `exclusion` (all real tokens without one)."""
    if exclusion is None or exclusion.is_empty:
        return mask_BS
    ids_BS = batch["input_ids"].to(mask_BS.device)
    keep_BS = exclusion.keep_mask(ids_BS, mask_BS)
    if exclusion.max_norm_ratio is not None:
        for h in hooks:
            keep_BS &= exclusion.keep_mask(ids_BS, mask_BS, acts[h])
    return keep_BS
