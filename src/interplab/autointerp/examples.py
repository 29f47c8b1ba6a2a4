"""Activating and non-activating token windows of SAE latents: what explanations are made from and scored on.

Computed straight from a model + SAE + texts (no dashboards database needed):
1. Tokenize the texts and cut them into windows of `context` tokens.
2. Run the model to the SAE's hook, encode every token with the SAE: acts [windows, context, d_sae].
   Positions that are never a latent's example count as silent: the first `skip_first` of each window
   (a causal LM parks attention there, and its huge residual fires latents that mean nothing) and
   special tokens (the EOS put between texts).
3. Per latent: the `n_top` windows with the largest activation ("top"); windows sampled evenly across
   activation quantiles of the remaining activating windows ("quantile", so explanations and scores
   also see weak activations, as in Bills et al. 2023 and Paulo et al. 2024 arXiv:2410.13928); and
   random windows where the latent never fires ("random", the negatives of detection scoring).
4. Without a list of latents, the `top_n` most frequently firing ones are taken among those that leave
   `n_random` silent windows: a latent that fires in every window has no negatives, so detection
   cannot score it (the most frequent latents of a real SAE are often such).
Tokens are display strings from `interplab.models.tokens` (word starts of WordPiece models get their
space back), so a window's tokens join into readable text.
`split_held_out` then separates the examples an explanation is written from and the ones it is scored on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel
from interplab.models.tokens import token_texts

log = get_logger(__name__)


@dataclass
class Example:
    """One token window and a latent's activation on each token."""

    tokens: list[str]
    """Display strings of the tokens (a word start carries its leading space), joining into the text."""
    acts: list[float]
    """The latent's activation per token (0 where it does not fire)."""

    @property
    def max_act(self) -> float:
        return max(self.acts, default=0.0)

    def text(self) -> str:
        return "".join(self.tokens)


@dataclass
class LatentExamples:
    """Everything known about one latent's behaviour on text."""

    top: list[Example] = field(default_factory=list)
    """Strongest activating windows, strongest first."""
    quantile: list[Example] = field(default_factory=list)
    """Activating windows sampled across the activation range."""
    random: list[Example] = field(default_factory=list)
    """Windows where the latent does not fire."""


@dataclass
class ExampleConfig:
    """How windows are cut and sampled."""

    context: int = 24
    """Tokens per window: enough context for a reader, short enough for many per prompt."""
    n_top: int = 10
    """Top windows kept per latent."""
    n_quantiles: int = 4
    """Activation bins the quantile samples are spread across."""
    n_per_quantile: int = 2
    """Windows sampled per bin."""
    n_random: int = 10
    """Non-activating windows per latent."""
    batch_size: int = 16
    """Windows per forward pass."""
    max_windows: int = 4096
    """Windows read at most (about 100k tokens at the default context): bounds time on big corpora."""
    seed: int = 0
    """Seed for quantile and random sampling."""
    skip_first: int | None = None
    """Leading tokens of every window never taken as activating; None: 1 for causal LMs (the attention
    sink: each window is a separate forward pass), 0 for encoders."""


def token_windows(lm: LoadedModel, texts: Sequence[str], context: int) -> Tensor:
    """Token ids [n_windows, context], texts concatenated with EOS between them (like activation caching)."""
    sep = lm.tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids += lm.tokenizer(text, add_special_tokens=False)["input_ids"] + ([sep] if sep is not None else [])
    n = len(ids) // context
    if n == 0:
        raise InterplabError(
            f"the texts hold {len(ids)} tokens, fewer than one window of {context}; pass more --data"
        )
    return torch.tensor(ids[: n * context]).view(n, context)


def kept_positions(lm: LoadedModel, windows_NS: Tensor, skip_first: int | None) -> Tensor:
    """[n_windows, context] bool: positions that may be a latent's example (see the module docstring)."""
    n_skip = (1 if lm.is_causal else 0) if skip_first is None else skip_first
    keep_NS = torch.ones_like(windows_NS, dtype=torch.bool)
    keep_NS[:, :n_skip] = False
    special = sorted({int(i) for i in getattr(lm.tokenizer, "all_special_ids", []) or []})
    if special:
        keep_NS &= ~torch.isin(windows_NS, torch.tensor(special, dtype=windows_NS.dtype))
    return keep_NS


def _encoded_batches(lm: LoadedModel, sae, hook: str, windows_NS: Tensor, cfg: ExampleConfig):
    """Yield SAE latents [batch, context, d_sae] window batch by window batch, 0 where not kept."""
    keep_NS = kept_positions(lm, windows_NS, cfg.skip_first)
    for start in range(0, len(windows_NS), cfg.batch_size):
        ids_BS = windows_NS[start : start + cfg.batch_size].to(lm.device)
        batch = {"input_ids": ids_BS, "attention_mask": torch.ones_like(ids_BS)}
        acts_BSD = run_to_capture(lm.model, batch, hook)[hook]
        with torch.no_grad():
            z_BSF = sae.encode(acts_BSD.to(sae.W_dec.dtype))
        yield z_BSF * keep_NS[start : start + cfg.batch_size, :, None].to(z_BSF.device)


def latent_acts(
    lm: LoadedModel, sae, hook: str, windows_NS: Tensor, cfg: ExampleConfig, features: Sequence[int]
) -> Tensor:
    """Activations of the chosen latents [n_windows, context, len(features)] (float32, CPU).

    Only the chosen columns are kept: all of a 16k-latent SAE over 1000 windows would be gigabytes.
    """
    index = torch.as_tensor(list(features), dtype=torch.long)
    parts = [z[..., index.to(z.device)].float().cpu() for z in _encoded_batches(lm, sae, hook, windows_NS, cfg)]
    return torch.cat(parts)


def firing_counts(lm: LoadedModel, sae, hook: str, windows_NS: Tensor, cfg: ExampleConfig) -> tuple[Tensor, Tensor]:
    """(tokens, windows) each latent fires on, both [d_sae] (one streaming pass, to pick top-n latents)."""
    tokens_F = windows_F = None
    for z_BSF in _encoded_batches(lm, sae, hook, windows_NS, cfg):
        fires_BSF = (z_BSF > 0).cpu()
        batch_tokens_F, batch_windows_F = fires_BSF.sum((0, 1)), fires_BSF.any(1).sum(0)
        tokens_F = batch_tokens_F if tokens_F is None else tokens_F + batch_tokens_F
        windows_F = batch_windows_F if windows_F is None else windows_F + batch_windows_F
    assert tokens_F is not None and windows_F is not None  # token_windows guarantees at least one window
    return tokens_F, windows_F


def most_frequent_scoreable(tokens_F: Tensor, windows_F: Tensor, n_windows: int, top_n: int,
                            n_random: int) -> list[int]:
    """The `top_n` latents firing on the most tokens among those silent in at least `n_random` windows."""
    scoreable_F = (n_windows - windows_F >= n_random) & (tokens_F > 0)
    ranked = [int(i) for i in tokens_F.argsort(descending=True, stable=True) if bool(scoreable_F[i])]
    n_dense = int(((n_windows - windows_F < n_random) & (tokens_F > 0)).sum())
    if n_dense:
        log.info("top-n: passed over %d latents that fire in all but < %d of %d windows (no negatives "
                 "for detection); name them with --features to explain them anyway", n_dense, n_random, n_windows)
    return ranked[:top_n]


def _example(tokens: list[list[str]], acts_NS: Tensor, n: int) -> Example:
    return Example(tokens=tokens[n], acts=[round(float(a), 4) for a in acts_NS[n]])


def _quantile_sample(max_N: Tensor, exclude: set[int], cfg: ExampleConfig, rng: random.Random) -> list[int]:
    active = [int(i) for i in torch.nonzero(max_N > 0).flatten() if int(i) not in exclude]
    active.sort(key=lambda i: float(max_N[i]))
    picked: list[int] = []
    for q in range(cfg.n_quantiles):
        bin_ = active[q * len(active) // cfg.n_quantiles : (q + 1) * len(active) // cfg.n_quantiles]
        picked += rng.sample(bin_, min(cfg.n_per_quantile, len(bin_)))
    return picked


def examples_for_latent(tokens: list[list[str]], acts_NS: Tensor, cfg: ExampleConfig) -> LatentExamples:
    """Top, quantile and random windows of one latent from its activations [n_windows, context]."""
    rng = random.Random(cfg.seed)
    max_N = acts_NS.amax(1)
    n_active = int((max_N > 0).sum())
    top = max_N.topk(min(cfg.n_top, n_active)).indices.tolist() if n_active else []
    quantile = _quantile_sample(max_N, set(top), cfg, rng)
    silent = torch.nonzero(max_N <= 0).flatten().tolist()
    rand = rng.sample(silent, min(cfg.n_random, len(silent)))
    return LatentExamples(
        top=[_example(tokens, acts_NS, i) for i in top],
        quantile=[_example(tokens, acts_NS, i) for i in quantile],
        random=[_example(tokens, acts_NS, i) for i in rand],
    )


def collect_examples(
    lm: LoadedModel,
    sae,
    hook: str,
    texts: Sequence[str],
    features: Sequence[int] | None = None,
    cfg: ExampleConfig | None = None,
    top_n: int | None = None,
) -> dict[int, LatentExamples]:
    """Examples for the given latents, or for the `top_n` most frequently firing ones when none are given."""
    cfg = cfg or ExampleConfig()
    windows_NS = token_windows(lm, texts, cfg.context)[: cfg.max_windows]
    d_sae = int(sae.W_dec.shape[0])
    if features is None:  # one extra pass to rank latents by firing frequency
        tokens_F, windows_F = firing_counts(lm, sae, hook, windows_NS, cfg)
        features = most_frequent_scoreable(tokens_F, windows_F, len(windows_NS), top_n or 10, cfg.n_random)
        if not features:
            raise InterplabError("no latent fires on --data while leaving silent windows; pass more --data "
                                 "or name latents with --features")
    bad = [f for f in features if not 0 <= f < d_sae]
    if bad:
        raise InterplabError(f"features {bad} out of range; the SAE has {d_sae} latents (0..{d_sae - 1})")
    acts_NSK = latent_acts(lm, sae, hook, windows_NS, cfg, features)
    text = token_texts(lm.tokenizer)
    tokens = [[text(int(t)) for t in row] for row in windows_NS]
    return {int(f): examples_for_latent(tokens, acts_NSK[..., k], cfg) for k, f in enumerate(features)}


def split_held_out(examples: LatentExamples, seed: int = 0) -> tuple[LatentExamples, LatentExamples]:
    """(explain set, held-out scoring set): top examples alternate, quantile and random ones split in half.

    Alternating the top list gives both halves strong examples; the explanation never sees the
    windows it is scored on.
    """
    rng = random.Random(seed)
    quantile, rand = examples.quantile[:], examples.random[:]
    rng.shuffle(quantile)
    rng.shuffle(rand)
    half_q, half_r = len(quantile) // 2, len(rand) // 2
    explain = LatentExamples(top=examples.top[0::2], quantile=quantile[:half_q], random=rand[:half_r])
    held = LatentExamples(top=examples.top[1::2], quantile=quantile[half_q:], random=rand[half_r:])
    return explain, held
