"""How well an SAE reconstructs activations, and how much of the model's behaviour survives the splice.

Reconstruction, streamed over batches so any number of tokens fits:
  FVU = Σ‖x - x̂‖² / Σ‖x - mean(x)‖²  (mean over the whole evaluation set), explained variance = 1 - FVU,
  MSE = mean squared error per element.
Batches from an activation store hold only the tokens its exclusion rule keeps: with attention sinks
left in, position 0 carries ~98 % of Σ‖x - mean(x)‖² on a causal LM and FVU would measure it alone.

Downstream loss (SAELens / SAEBench "CE loss recovered" and "KL div score"), per token:
1. Run the model clean, with the SAE spliced in at the hook (x -> decode(encode(x))), and with the hook
   zero-ablated.
2. CE = next-token cross-entropy (for encoders: the unmasked MLM loss on the input tokens);
   KL = KL(clean ‖ patched) of the output distributions.
3. CE recovered = (CE_zero - CE_sae) / (CE_zero - CE_clean); KL recovered = 1 - KL_sae / KL_zero.
   1 means the splice costs nothing, 0 means it is as bad as deleting the activation.
With an exclusion rule (the one the SAE was trained under) both the splice and the zero-ablation leave
the excluded positions (attention sinks) as they are: the SAE never learned them, and ablating them
too would credit it for sparing a damage it never faced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.evals.sparsity import SparsityAccumulator, SparsityStats

if TYPE_CHECKING:
    from interplab.activations.exclusion import ExclusionRule
    from interplab.models.interventions import Encoder
    from interplab.models.loading import LoadedModel
    from interplab.saes.base import SAE

log = get_logger(__name__)


class ReconstructionStats(NamedTuple):
    """Reconstruction quality over an evaluation set."""

    fvu: float
    """Fraction of variance unexplained (0 = perfect)."""
    explained_variance: float
    """1 - fvu."""
    mse: float
    """Mean squared error per element."""
    n_tokens: int
    """Tokens evaluated."""


class ReconstructionAccumulator:
    """Running sums for FVU / MSE in float64 (exact over many batches, unlike a mean of batch FVUs)."""

    def __init__(self, d: int):
        self.sse = 0.0
        self.sum_x_D = torch.zeros(d, dtype=torch.float64)
        self.sum_sq = 0.0
        self.n = 0

    def update(self, x_BD: Tensor, x_hat_BD: Tensor) -> None:
        if x_BD.shape != x_hat_BD.shape or x_BD.shape[-1] != self.sum_x_D.shape[0]:
            raise InterplabError(f"reconstruction shape {tuple(x_hat_BD.shape)} does not match input {tuple(x_BD.shape)}")
        x_BD = x_BD.reshape(-1, x_BD.shape[-1]).double()
        x_hat_BD = x_hat_BD.reshape(-1, x_BD.shape[-1]).double()
        self.sse += float((x_BD - x_hat_BD).pow(2).sum())
        self.sum_x_D += x_BD.sum(0).cpu()
        self.sum_sq += float(x_BD.pow(2).sum())
        self.n += x_BD.shape[0]

    def result(self) -> ReconstructionStats:
        if self.n == 0:
            raise InterplabError("no tokens were evaluated; give the evaluation at least one batch")
        # Σ‖x - μ‖² = Σ‖x‖² - n‖μ‖²
        total_var = self.sum_sq - float(self.sum_x_D.pow(2).sum()) / self.n
        fvu = self.sse / total_var if total_var > 0 else float("nan")
        return ReconstructionStats(
            fvu=fvu, explained_variance=1 - fvu, mse=self.sse / (self.n * self.sum_x_D.shape[0]), n_tokens=self.n
        )


def fvu(x_BD: Tensor, x_hat_BD: Tensor) -> float:
    """FVU of one set of activations."""
    acc = ReconstructionAccumulator(x_BD.shape[-1])
    acc.update(x_BD, x_hat_BD)
    return acc.result().fvu


class SAEEvaluation(NamedTuple):
    """Reconstruction and sparsity of an SAE on a stream of activations."""

    reconstruction: ReconstructionStats
    """FVU, explained variance, MSE."""
    sparsity: SparsityStats
    """L0, firing frequencies, dead and dense fractions."""

    def summary(self) -> dict[str, float]:
        """Flat JSON-safe scalars."""
        r, s = self.reconstruction, self.sparsity
        return {"fvu": r.fvu, "explained_variance": r.explained_variance, "mse": r.mse, "l0": s.l0,
                "dead_fraction": s.dead_fraction, "dense_fraction": s.dense_fraction, "n_tokens": r.n_tokens}


@torch.no_grad()
def evaluate_sae(
    sae: SAE, batches: Iterable[Tensor], max_batches: int | None = None, dense_threshold: float = 0.1
) -> SAEEvaluation:
    """Stream activation batches [..., d_in] through the SAE (inference rule) and collect the statistics."""
    rec = ReconstructionAccumulator(sae.cfg.d_in)
    spa = SparsityAccumulator(sae.cfg.d_sae, dense_threshold)
    for i, x in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        x_BD = x.reshape(-1, x.shape[-1]).to(sae.device)
        z_BF = sae.encode(x_BD)
        rec.update(x_BD, sae.decode(z_BF))
        spa.update(z_BF)
    return SAEEvaluation(reconstruction=rec.result(), sparsity=spa.result())


# ---- downstream loss ---------------------------------------------------------------------------


class LossRecovered(NamedTuple):
    """Token-averaged downstream losses and the recovered fractions."""

    ce_clean: float
    """CE of the unmodified model."""
    ce_spliced: float
    """CE with the activation replaced by the reconstruction."""
    ce_zero: float
    """CE with the activation zero-ablated."""
    kl_spliced: float
    """KL(clean ‖ spliced), nats per token."""
    kl_zero: float
    """KL(clean ‖ zero-ablated), nats per token."""
    ce_recovered: float
    """(ce_zero - ce_spliced) / (ce_zero - ce_clean); NaN when ablation does not change the CE."""
    kl_recovered: float
    """1 - kl_spliced / kl_zero; NaN when ablation does not change the outputs."""
    n_tokens: int
    """Tokens whose losses were averaged."""


def _ce_and_logprobs(lm: LoadedModel, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(per-token CE [n], its mask-selected count, log-probs [B, S, V], position mask [B, S])."""
    out = lm.model(**batch)
    logits = getattr(out, "logits", None)
    if logits is None:
        raise InterplabError(f"model {lm.name!r} has no LM head (no logits); CE/KL recovered needs a causal or "
                             "masked LM, so load it with its head (kind='causal' or a *ForMaskedLM checkpoint)")
    logp_BSV = logits.float().log_softmax(-1)
    ids_BS = batch["input_ids"]
    mask_BS = batch.get("attention_mask", torch.ones_like(ids_BS)).bool()
    if lm.is_causal:  # predict token t+1 from position t
        pred, target, m = logp_BSV[:, :-1], ids_BS[:, 1:], mask_BS[:, 1:] & mask_BS[:, :-1]
    else:  # unmasked MLM loss: predict each input token at its own position
        pred, target, m = logp_BSV, ids_BS, mask_BS
    ce_N = -pred.gather(-1, target.unsqueeze(-1)).squeeze(-1)[m]
    return ce_N, m.sum(), logp_BSV, mask_BS


def _kl_sum(logp_clean: Tensor, logp_other: Tensor, mask_BS: Tensor) -> float:
    kl_BS = (logp_clean.exp() * (logp_clean - logp_other)).sum(-1)
    return float(kl_BS[mask_BS].sum())


def _ratio(num: float, den: float, what: str) -> float:
    if abs(den) < 1e-9:
        log.warning("%s: zero-ablation leaves the model unchanged here, so the recovered fraction is undefined", what)
        return float("nan")
    return num / den


def _reconstruction(sae: Encoder) -> Callable[[Tensor], Tensor]:
    return lambda x: sae.decode(sae.encode(x)).to(x.dtype)


def _on_kept(fn: Callable[[Tensor], Tensor], batch: Mapping[str, Tensor],
             exclusion: ExclusionRule | None) -> Callable[[Tensor], Tensor]:
    """`fn` applied at the positions `exclusion` keeps; the others keep their activation."""
    if exclusion is None or exclusion.is_empty:
        return fn
    ids_BS = batch["input_ids"]
    real_BS = batch.get("attention_mask", torch.ones_like(ids_BS)).bool()

    def patched(x_BSD: Tensor) -> Tensor:
        keep_BS = exclusion.keep_mask(ids_BS.to(x_BSD.device), real_BS.to(x_BSD.device), x_BSD)
        return torch.where(keep_BS[..., None], fn(x_BSD), x_BSD)

    return patched


@torch.no_grad()
def loss_recovered(
    lm: LoadedModel,
    batches: Iterable[Mapping[str, Tensor]],
    hook: str,
    sae: Encoder | None = None,
    replace_fn: Callable[[Tensor], Tensor] | None = None,
    exclusion: ExclusionRule | None = None,
) -> LossRecovered:
    """CE / KL recovered when the activation at `hook` is replaced by `sae`'s reconstruction (or `replace_fn`),
    at the positions `exclusion` keeps (all when None)."""
    from interplab.models.interventions import replace_activation

    if (sae is None) == (replace_fn is None):
        raise InterplabError("loss_recovered needs exactly one of sae= or replace_fn=")
    patch_fn = replace_fn if replace_fn is not None else _reconstruction(sae)  # type: ignore[arg-type]
    sums = dict(ce_clean=0.0, ce_spliced=0.0, ce_zero=0.0, kl_spliced=0.0, kl_zero=0.0)
    n_ce = n_kl = 0
    for batch in batches:
        ce_clean, count, logp_clean, mask_BS = _ce_and_logprobs(lm, batch)
        with replace_activation(lm.model, hook, _on_kept(patch_fn, batch, exclusion)):
            ce_sp, _, logp_sp, _ = _ce_and_logprobs(lm, batch)
        with replace_activation(lm.model, hook, _on_kept(torch.zeros_like, batch, exclusion)):
            ce_zero, _, logp_zero, _ = _ce_and_logprobs(lm, batch)
        sums["ce_clean"] += float(ce_clean.sum())
        sums["ce_spliced"] += float(ce_sp.sum())
        sums["ce_zero"] += float(ce_zero.sum())
        sums["kl_spliced"] += _kl_sum(logp_clean, logp_sp, mask_BS)
        sums["kl_zero"] += _kl_sum(logp_clean, logp_zero, mask_BS)
        n_ce += int(count)
        n_kl += int(mask_BS.sum())
    if n_ce == 0:
        raise InterplabError("no tokens to score; give at least one text with two or more tokens")
    ce = {k: v / n_ce for k, v in sums.items() if k.startswith("ce")}
    kl = {k: v / n_kl for k, v in sums.items() if k.startswith("kl")}
    return LossRecovered(
        **ce, **kl,
        ce_recovered=_ratio(ce["ce_zero"] - ce["ce_spliced"], ce["ce_zero"] - ce["ce_clean"], "CE recovered"),
        kl_recovered=1 - _ratio(kl["kl_spliced"], kl["kl_zero"], "KL recovered"),
        n_tokens=n_ce,
    )


def loss_recovered_on_texts(
    lm: LoadedModel,
    texts: Sequence[str],
    hook: str,
    sae: Encoder | None = None,
    replace_fn: Callable[[Tensor], Tensor] | None = None,
    batch_size: int = 8,
    max_length: int = 128,
    exclusion: ExclusionRule | None = None,
) -> LossRecovered:
    """`loss_recovered` over texts, tokenized in batches (truncated to max_length tokens)."""
    if not texts:
        raise InterplabError("no texts given for CE/KL recovered")
    batches = (lm.tokenize(texts[i : i + batch_size], max_length=max_length) for i in range(0, len(texts), batch_size))
    return loss_recovered(lm, batches, hook, sae=sae, replace_fn=replace_fn, exclusion=exclusion)
