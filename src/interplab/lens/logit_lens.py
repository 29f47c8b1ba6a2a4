"""Per-layer next-token predictions (logit lens, tuned lens) and their KL to the model's output.

1. Run the model once, capturing the residual stream after the embeddings and after every block
   (`embed`, `blocks.{L}.resid_post`), and keep the model's own next-token log-probabilities.
2. Decode each captured stream with the final norm and unembedding (lens/decode.py); a tuned lens first
   applies its layer's translator (lens/tuned.py).
3. Per layer and position: the top-k tokens with their probabilities, and KL(model output || lens), the
   measure Belrose et al. 2023 (https://arxiv.org/abs/2303.08112) compare lenses with (in nats).
Large vocabularies (Gemma: 262k) are decoded a few hundred positions at a time and only top-k and KL kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.lens.decode import FinalDecoder, final_decoder, kl_from_log_probs, layer_labels, lens_hooks
from interplab.lens.tuned import TunedLens
from interplab.models import LoadedModel, capture

ROWS_PER_CHUNK = 256  # positions decoded at once: 256 x 262k float32 logits is 268 MB


@dataclass
class LensGrid:
    """A lens read of one prompt: rows are layers, columns are positions (the prediction after that token)."""

    kind: str
    """'logit' or 'tuned'."""
    tokens: list[str]
    """The prompt's tokens, one per position."""
    layers: list[str]
    """Row labels: 'embed', '0', '1', ..."""
    top_tokens: list[list[list[str]]]
    """[layer][position][rank] the top-k predicted tokens."""
    top_ids_LSK: Tensor
    top_probs_LSK: Tensor
    kl_LS: Tensor
    """KL(model output || lens) in nats at each layer and position."""
    final_tokens: list[list[str]]
    """[position][rank] the model's own top-k next tokens."""


@dataclass
class StreamChunk:
    """Up to ROWS_PER_CHUNK non-padding positions: each lens layer's residual stream and the model's output."""

    streams_LND: Tensor
    final_log_probs_NV: Tensor


def _tokenize_right(lm: LoadedModel, texts: Sequence[str], max_length: int) -> dict[str, Tensor]:
    side = lm.tokenizer.padding_side
    lm.tokenizer.padding_side = "right"  # positions stay the unpadded ones
    try:
        return lm.tokenize(list(texts), max_length=max_length)
    finally:
        lm.tokenizer.padding_side = side


def run_streams(lm: LoadedModel, batch: dict[str, Tensor], logits_to_keep: int = 0) -> tuple[Tensor, Tensor]:
    """(streams [L, B, S, d] of every lens layer, the model's logits [B, S, V]) for one tokenized batch; with
    `logits_to_keep` > 0 the logits of the last that many positions only ([B, k, V]: on short prompts
    Gemma's 262k-token unembedding costs more than all its blocks)."""
    hooks = lens_hooks(lm)
    extra = {"logits_to_keep": logits_to_keep} if logits_to_keep else {}
    with capture(lm.model, hooks) as acts, torch.no_grad():
        logits = lm.model(**batch, **extra).logits
    return torch.stack([acts[h] for h in hooks]), logits


def stream_chunks(lm: LoadedModel, texts: Sequence[str], max_length: int = 128,
                  batch_size: int = 4) -> Iterator[StreamChunk]:
    """Every non-padding position of `texts`, in chunks of at most ROWS_PER_CHUNK positions."""
    for start in range(0, len(texts), batch_size):
        batch = _tokenize_right(lm, texts[start:start + batch_size], max_length)
        streams_LBSD, logits_BSV = run_streams(lm, batch)
        keep_BS = batch["attention_mask"].bool()
        streams_LND = streams_LBSD[:, keep_BS].float()
        logits_NV = logits_BSV[keep_BS]
        for row in range(0, streams_LND.shape[1], ROWS_PER_CHUNK):
            final = torch.log_softmax(logits_NV[row:row + ROWS_PER_CHUNK].float(), dim=-1)
            yield StreamChunk(streams_LND[:, row:row + ROWS_PER_CHUNK], final)


def lens_log_probs(decoder: FinalDecoder, layer: int, h_ND: Tensor, tuned: TunedLens | None) -> Tensor:
    """Log-probabilities [N, V] that the (tuned) lens reads from lens layer `layer`."""
    if tuned is not None:
        h_ND = tuned.translate(layer, h_ND.to(tuned.weight_LDD.device))
    return decoder.log_probs(h_ND.to(next(decoder.head.parameters()).device))


def check_lens(lm: LoadedModel, tuned: TunedLens | None) -> None:
    """A tuned lens must have been trained on this model's shape."""
    if tuned is None:
        return
    expected = layer_labels(lm.n_layers)
    if tuned.labels != expected or tuned.d_model != lm.d_model:
        raise InterplabError(f"the tuned lens has {len(tuned.labels)} layers of d={tuned.d_model} but {lm.name} "
                             f"has {len(expected)} of d={lm.d_model}: use a lens trained on this model")


def _decode_tokens(lm: LoadedModel, ids: list[int]) -> list[str]:
    return [str(lm.tokenizer.decode([i])) for i in ids]


def lens_grid(lm: LoadedModel, prompt: str, tuned: TunedLens | None = None, k: int = 5,
              max_tokens: int = 64) -> LensGrid:
    """The lens's top-k next tokens at every layer and position of `prompt` (logit lens when `tuned` is None)."""
    check_lens(lm, tuned)
    if not prompt.strip():
        raise InterplabError("the lens needs a non-empty prompt")
    decoder = final_decoder(lm)
    batch = lm.tokenize(prompt, max_length=max_tokens)
    streams_LBSD, logits_BSV = run_streams(lm, batch)
    final_SV = torch.log_softmax(logits_BSV[0].float(), dim=-1)
    k = min(k, final_SV.shape[-1])
    probs, ids, kls = [], [], []
    with torch.no_grad():
        for layer in range(streams_LBSD.shape[0]):
            logp_SV = lens_log_probs(decoder, layer, streams_LBSD[layer, 0].float(), tuned)
            top = logp_SV.topk(k, dim=-1)
            probs.append(top.values.exp().cpu())
            ids.append(top.indices.cpu())
            kls.append(kl_from_log_probs(final_SV, logp_SV).clamp_min(0).cpu())
    ids_LSK = torch.stack(ids)
    final_ids = final_SV.topk(k, dim=-1).indices.tolist()
    return LensGrid(
        kind="tuned" if tuned is not None else "logit",
        tokens=_decode_tokens(lm, batch["input_ids"][0].tolist()),
        layers=layer_labels(lm.n_layers),
        top_tokens=[[_decode_tokens(lm, pos) for pos in layer] for layer in ids_LSK.tolist()],
        top_ids_LSK=ids_LSK,
        top_probs_LSK=torch.stack(probs),
        kl_LS=torch.stack(kls),
        final_tokens=[_decode_tokens(lm, pos) for pos in final_ids],
    )


def kl_by_layer(lm: LoadedModel, texts: Sequence[str], tuned: TunedLens | None = None, max_length: int = 128,
                batch_size: int = 4) -> Tensor:
    """Mean KL(model output || lens) per lens layer [L] over every non-padding position of `texts` (nats)."""
    return compare_lenses(lm, texts, {"lens": tuned}, max_length, batch_size)["lens"]


def compare_lenses(lm: LoadedModel, texts: Sequence[str], lenses: dict[str, TunedLens | None],
                   max_length: int = 128, batch_size: int = 4) -> dict[str, Tensor]:
    """Mean KL per layer [L] for each named lens (None = the logit lens), from one pass over `texts`."""
    for tuned in lenses.values():
        check_lens(lm, tuned)
    decoder = final_decoder(lm)
    n_layers = len(lens_hooks(lm))
    sums = {name: torch.zeros(n_layers, dtype=torch.float64) for name in lenses}
    count = 0
    with torch.no_grad():
        for chunk in stream_chunks(lm, texts, max_length, batch_size):
            count += chunk.final_log_probs_NV.shape[0]
            for layer in range(n_layers):
                for name, tuned in lenses.items():
                    logp_NV = lens_log_probs(decoder, layer, chunk.streams_LND[layer], tuned)
                    sums[name][layer] += float(kl_from_log_probs(chunk.final_log_probs_NV, logp_NV).sum())
    if count == 0:
        raise InterplabError("no tokens to measure the lens on: pass non-empty texts")
    return {name: (total / count).float() for name, total in sums.items()}
