"""SAE-latent clamping (after Farrell et al. 2024, "Applying sparse autoencoders to unlearn knowledge in
language models", arXiv:2410.19278): a network edit, the weights stay as they are.

1. Train a TopK SAE on the organism's residual stream at layer L (facts of every person, both sets, and
   general text), once per organism and layer: it is cached under `data.cache_dir` and does not depend
   on the unlearning seed.
2. Score each latent by how much more often it fires on the forget set's tokens (from the person's name
   on) than on the retain set's and the general text's; keep the `n_latents` best with a positive score.
3. At inference, wherever a kept latent fires, clamp it to -`clamp_multiple` × its mean activation on
   forget tokens: the residual gets x + Σ_j (clamped_j - z_j) · W_dec[j], so the SAE's reconstruction
   error stays in place and tokens where no kept latent fires are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from interplab.common import InterplabError, get_logger
from interplab.models import LoadedModel, replace_activation, run_to_capture
from interplab.saes import SAE, TopKConfig, load_sae, make_sae, save_sae
from interplab.training import TrainConfig, fit
from interplab.training.causal_lm import encode_pairs, encode_texts
from interplab.unlearning.methods.base import UnlearningData, from_name_mask
from interplab.unlearning.served import ServedModel

log = get_logger(__name__)


@dataclass
class SAEClampConfig:
    """Negative clamping of SAE latents that fire on the forget set."""

    layer: int | None = None
    """Layer L of the SAE (blocks.L.resid_post; None: a third of the depth)."""
    d_sae: int = 2048
    """SAE latents."""
    k: int = 32
    """TopK: latents active per token."""
    sae_steps: int = 600
    """SAE training steps (batches of 512 activation rows)."""
    n_latents: int = 64
    """Latents to clamp (16 left the SmolLM2-135M organism at forget 0.38 with retain 0.33; 64 is the
    weakest setting of bench/unlearning_strength.py that makes it forget, with retain 0.00)."""
    clamp_multiple: float = 5.0
    """Clamp a firing latent to minus this multiple of its mean activation on forget tokens."""

    def check(self, n_layers: int) -> None:
        if self.layer is not None and not 0 <= self.layer < n_layers:
            raise InterplabError(f"SAE layer must be in 0..{n_layers - 1}, got {self.layer}")
        if self.n_latents < 1 or self.sae_steps < 1 or not 0 < self.k <= self.d_sae:
            raise InterplabError("SAE clamping needs n_latents, sae_steps >= 1 and 0 < k <= d_sae")


@dataclass
class LatentClamp:
    """The network edit: clamp `latents` of `sae` at `hook` to `values` (negative) where they fire."""

    sae: SAE
    hook: str
    latents: list[int]
    values: list[float]
    name: str = "sae_latent_clamp"

    @contextmanager
    def apply(self, model: nn.Module) -> Iterator[None]:
        idx = torch.tensor(self.latents)
        W_KD = self.sae.W_dec[idx].detach()
        values_K = torch.tensor(self.values)

        def clamp(x_BTD: Tensor) -> Tensor:
            z_BTK = self.sae.encode(x_BTD.to(W_KD.dtype))[..., idx.to(x_BTD.device)]
            coef_BTK = torch.where(z_BTK > 0, values_K.to(z_BTK) - z_BTK, torch.zeros_like(z_BTK))
            return x_BTD + (coef_BTK @ W_KD.to(x_BTD.device)).to(x_BTD.dtype)

        with replace_activation(model, self.hook, clamp):
            yield

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "hook": self.hook, "latents": self.latents, "values": self.values}


def sae_layer(cfg: SAEClampConfig, n_layers: int) -> int:
    return cfg.layer if cfg.layer is not None else max(0, n_layers // 3)


def _rows(lm: LoadedModel, hook: str, batches: list[tuple[Any, Tensor]]) -> Tensor:
    """Activations [n, d] at `hook` on the tokens each batch's mask selects."""
    return torch.cat([run_to_capture(lm.model, b.model_inputs(), hook)[hook][m] for b, m in batches])


def _fact_batches(lm: LoadedModel, its: list, from_name: bool) -> list[tuple[Any, Tensor]]:
    out = []
    for start in range(0, len(its), 64):
        chunk = its[start:start + 64]
        b = encode_pairs(lm.tokenizer, [(i.prompt, i.answer) for i in chunk], lm.device)
        out.append((b, from_name_mask(lm.tokenizer, chunk, b.attention_mask) if from_name else b.attention_mask.bool()))
    return out


def _text_batches(lm: LoadedModel, texts: list[str]) -> list[tuple[Any, Tensor]]:
    out = []
    for start in range(0, len(texts), 16):
        b = encode_texts(lm.tokenizer, texts[start:start + 16], 64, lm.device)
        out.append((b, b.attention_mask.bool()))
    return out


def train_sae(x_ND: Tensor, cfg: SAEClampConfig, hook: str, device: torch.device) -> SAE:
    """A TopK SAE fit on the rows of `x_ND` (seed 0: it belongs to the organism, not to a run)."""
    sae = make_sae(TopKConfig(d_in=x_ND.shape[1], d_sae=cfg.d_sae, k=cfg.k, metadata={"hook_name": hook}))

    def batches() -> Iterator[Tensor]:
        gen = torch.Generator().manual_seed(0)
        while True:
            for idx in torch.randperm(len(x_ND), generator=gen).split(512):
                if len(idx) == 512 or len(x_ND) < 512:
                    yield x_ND[idx]

    fit(sae, batches(), TrainConfig(total_steps=cfg.sae_steps, batch_size=512, lr=1e-3, device=str(device),
                                    log_every=max(1, cfg.sae_steps), dead_after_tokens=50_000))
    return sae


def organism_sae(lm: LoadedModel, data: UnlearningData, cfg: SAEClampConfig, hook: str) -> SAE:
    """The SAE at `hook`, trained once per organism (cached in `data.cache_dir` when set)."""
    folder = None
    if data.cache_dir is not None:
        folder = data.cache_dir / f"sae-{hook}-d{cfg.d_sae}-k{cfg.k}-s{cfg.sae_steps}"
        if (folder / "cfg.json").exists():
            return load_sae(folder, device=lm.device)
    everyone = data.forget_items() + data.retain_items()
    x_ND = torch.cat([_rows(lm, hook, _fact_batches(lm, everyone, False)), _rows(lm, hook, _text_batches(lm, data.texts))])
    sae = train_sae(x_ND, cfg, hook, lm.device)
    if folder is not None:
        save_sae(sae, folder)
    return sae


def sae_clamp(lm: LoadedModel, data: UnlearningData, cfg: SAEClampConfig, seed: int) -> ServedModel:
    cfg.check(lm.n_layers)
    hook = f"blocks.{sae_layer(cfg, lm.n_layers)}.resid_post"
    sae = organism_sae(lm, data, cfg, hook).requires_grad_(False)  # part of the edit, never trained by attacks
    with torch.no_grad():
        z_forget = sae.encode(_rows(lm, hook, _fact_batches(lm, data.forget_items(), True)))
        z_retain = sae.encode(torch.cat([_rows(lm, hook, _fact_batches(lm, data.retain_items(), True)),
                                         _rows(lm, hook, _text_batches(lm, data.texts))]))
    score_F = (z_forget > 0).float().mean(0) - (z_retain > 0).float().mean(0)
    order = [int(i) for i in score_F.argsort(descending=True) if score_F[i] > 0][: cfg.n_latents]
    if not order:
        raise InterplabError("no SAE latent fires more on the forget set than elsewhere; try another layer")
    fired = z_forget[:, order]
    mean_active = (fired.sum(0) / (fired > 0).sum(0).clamp_min(1)).tolist()
    values = [-cfg.clamp_multiple * m for m in mean_active]
    log.info("clamping %d latents at %s (forget-minus-retain firing rate %.3f..%.3f)", len(order), hook,
             float(score_F[order[0]]), float(score_F[order[-1]]))
    return ServedModel(lm, edits=(LatentClamp(sae, hook, order, values),))
