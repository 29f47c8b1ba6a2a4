"""Attention–MLP interactions over a corpus: next-token latents, the heads that drive them, and what they read.

Neo, Cohen & Barez 2024, "Interpreting context look-ups in transformers: investigating attention-MLP
interactions" (https://arxiv.org/abs/2402.15055):

1. Next-token latents: a latent (transcoder latent or MLP neuron) whose output direction, read through
   the final norm's weight and the unembedding (logit lens), promotes a few tokens far above the rest.
   Specificity = (max logit − mean) / std over the vocabulary; `promoted` are its top tokens.
2. For one latent, scan a corpus (attention sinks left out, as everywhere) and decompose its
   pre-activation at every token into every head's direct contribution (head_contributions.py).
3. Rank heads by their mean contribution at the positions where the latent is most active (its top
   `top_positions` activations); score each head by how well what it writes predicts the latent over
   all positions: Pearson r between its contribution and the activation, and the AUROC of its
   contribution for telling the top positions from the rest.
4. Explain the top heads by what they read: at the positions where a head contributes most, the token it
   attends to most, how often that token is one the latent promotes (a context look-up: the head
   copies a token from the context and the latent predicts it next), and how often the real next
   token is one it promotes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from interplab.activations.exclusion import ExclusionRule
from interplab.circuits.head_contributions import Reader, _input_norm, contributions
from interplab.common import InterplabError
from interplab.models.hookpoints import base_model


@dataclass
class AttentionMLPConfig:
    """How latents are picked and heads are ranked and scored."""

    top_positions: int = 100
    """Positions of highest activation that count as "the latent is active"."""
    top_heads: int = 10
    """Heads listed (and explained) in the report."""
    n_promoted: int = 5
    """Tokens the latent promotes (logit lens) that count as its predictions."""
    batch_size: int = 8
    """Texts per forward pass."""
    context_size: int = 64
    """Tokens per text (longer texts are cut)."""
    max_texts: int = 256
    """Texts scanned."""
    examples_per_head: int = 20
    """Positions per head (its largest contributions) whose attended token explains it."""


def logit_lens(model: nn.Module, write_ND: Tensor) -> Tensor:
    """[N, vocab] logits each write direction adds through the final norm's weight and the unembedding."""
    w_U = model.get_output_embeddings().weight  # type: ignore[union-attr,operator]
    norm = getattr(base_model(model), "norm", None) or getattr(base_model(model), "ln_f", None) or getattr(
        base_model(model), "final_layer_norm", None)
    weight = getattr(norm, "weight", None)
    w = write_ND.to(w_U.dtype)
    if weight is not None:
        w = w * weight.detach().to(w.dtype)
    return w @ w_U.detach().T


def token_specificity(logits_NV: Tensor) -> Tensor:
    """[N] (max − mean) / std of each row: how much one token stands out."""
    return (logits_NV.max(-1).values - logits_NV.mean(-1)) / logits_NV.std(-1).clamp_min(1e-12)


def next_token_candidates(model: nn.Module, write_ND: Tensor, top: int, chunk: int = 512) -> list[tuple[int, float, list[int]]]:
    """The `top` rows of `write_ND` (decoder rows or neuron output rows) by token specificity:
    (index, specificity, its 5 most promoted tokens), most specific first."""
    spec, promoted = [], []
    for i in range(0, len(write_ND), chunk):
        logits = logit_lens(model, write_ND[i: i + chunk])
        spec.append(token_specificity(logits).float().cpu())
        promoted.append(logits.topk(5).indices.cpu())
    s_N, p_N5 = torch.cat(spec), torch.cat(promoted)
    order = s_N.argsort(descending=True)[:top].tolist()
    return [(i, float(s_N[i]), p_N5[i].tolist()) for i in order]


@torch.no_grad()
def candidate_activity(lm: Any, texts: Sequence[str], layer: int, indices: list[int], promoted: list[list[int]],
                       transcoder: Any | None, cfg: AttentionMLPConfig) -> list[dict[str, Any]]:
    """For candidate latents (transcoder latents, or MLP neurons when `transcoder` is None) of `layer`:
    how often each fires on `texts` and how often its top positions precede a token it promotes."""
    from interplab.models.interventions import capture
    from interplab.models.neurons import neuron_weights

    rule = ExclusionRule.for_tokenizer(lm.tokenizer, 1, True, None)
    out_module = None if transcoder is not None else neuron_weights(lm.model, layer).out_module
    acts, nexts = [], []
    seen: list[Tensor] = []
    for batch in _batches(lm, texts, cfg):
        batch = {k: v.to(lm.device) for k, v in batch.items()}
        handle = None if out_module is None else out_module.register_forward_pre_hook(
            lambda m, a: seen.append(a[0]))
        try:
            with capture(lm.model, [f"blocks.{layer}.mlp_in"]) as cap:
                lm.model(**batch, use_cache=False)
        finally:
            if handle is not None:
                handle.remove()
        if transcoder is not None:
            x = cap[f"blocks.{layer}.mlp_in"]
            a = transcoder.encode(x.to(transcoder.W_enc.dtype))[..., indices]
        else:
            a = seen.pop()[..., indices]
        ids, real = batch["input_ids"], batch["attention_mask"].bool()
        keep = rule.keep_mask(ids, real)
        nxt = torch.full_like(ids, -1)
        nxt[:, :-1] = torch.where(real[:, 1:], ids[:, 1:], -1)
        acts.append(a[keep].float().cpu())
        nexts.append(nxt[keep].cpu())
    a_NC, n_N = torch.cat(acts), torch.cat(nexts)
    rows = []
    for c, (i, prom) in enumerate(zip(indices, promoted, strict=True)):
        col = a_NC[:, c]
        k = min(cfg.top_positions, int((col > 0).sum()))
        top = col.topk(k).indices if k else torch.zeros(0, dtype=torch.long)
        hits = sum(int(t) in set(prom) for t in n_N[top].tolist())
        rows.append({"index": i, "fires": int((col > 0).sum()), "next_token_precision": hits / max(k, 1)})
    return rows


@dataclass
class Scan:
    """One latent over the corpus: per kept position, its activation and every head's contribution."""

    reader: Reader
    activation_N: Tensor
    heads_NLH: Tensor
    next_token_N: Tensor
    """The real next token at each position (-1 at a text's last token)."""
    source_token_NLH: Tensor
    """Per position and head, the token it attends to most."""
    promoted: list[int]
    texts: int


def _batches(lm: Any, texts: Sequence[str], cfg: AttentionMLPConfig) -> Any:
    for i in range(0, min(len(texts), cfg.max_texts), cfg.batch_size):
        yield lm.tokenize(list(texts[i: min(i + cfg.batch_size, cfg.max_texts)]), max_length=cfg.context_size)


def scan(lm: Any, texts: Sequence[str], reader: Reader, cfg: AttentionMLPConfig | None = None,
         exclusion: ExclusionRule | None = None) -> Scan:
    """Decompose `reader`'s pre-activation at every kept token of `texts` (module docstring, step 2)."""
    cfg = cfg or AttentionMLPConfig()
    rule = exclusion if exclusion is not None else ExclusionRule.for_tokenizer(lm.tokenizer, 1, True, None)
    promoted = logit_lens(lm.model, reader.write_D[None])[0].topk(cfg.n_promoted).indices.tolist()
    acts, heads, nexts, sources = [], [], [], []
    norm = None
    for batch in _batches(lm, texts, cfg):
        batch = {k: v.to(lm.device) for k, v in batch.items()}
        norm = norm or _input_norm(lm.model, reader.layer, batch)
        c = contributions(lm.model, batch, reader, norm)
        ids, real = batch["input_ids"], batch["attention_mask"].bool()
        keep = rule.keep_mask(ids, real)
        nxt = torch.full_like(ids, -1)
        nxt[:, :-1] = torch.where(real[:, 1:], ids[:, 1:], -1)
        src = torch.stack([ids.gather(1, p.argmax(-1).flatten(1)).view(p.shape[0], p.shape[1], -1)
                           for p in c.patterns.values()], 2) if c.patterns else ids.new_zeros(*ids.shape[:1], 0, 0, 0)
        acts.append(c.activation_BS[keep].float().cpu())
        heads.append(c.heads_BSLH[keep].float().cpu())
        nexts.append(nxt[keep].cpu())
        sources.append(src.permute(0, 3, 2, 1)[keep].cpu() if c.patterns else ids.new_zeros(int(keep.sum()), 0, 0))
    if not acts:
        raise InterplabError("no texts to scan")
    return Scan(reader, torch.cat(acts), torch.cat(heads), torch.cat(nexts), torch.cat(sources), promoted,
                min(len(texts), cfg.max_texts))


def auroc(scores_N: Tensor, positive_N: Tensor) -> float:
    """Area under the ROC curve of `scores` for `positive` (ties count half), by the rank-sum formula."""
    n_pos, n = int(positive_N.sum()), len(scores_N)
    if n_pos in (0, n):
        return float("nan")
    order = scores_N.double().argsort()
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[order] = torch.arange(1, n + 1, dtype=torch.float64)
    sorted_scores = scores_N.double()[order]
    # average ranks over ties
    uniq, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    ranks[order] = mean_rank[inverse]
    return float((ranks[positive_N].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos)))


def pearson(a_N: Tensor, b_N: Tensor) -> float:
    a, b = a_N.double() - a_N.double().mean(), b_N.double() - b_N.double().mean()
    den = float(a.norm() * b.norm())
    return float(a @ b) / den if den > 0 else float("nan")


def active_mask(s: Scan, top_positions: int) -> Tensor:
    """[N] bool: the `top_positions` highest activations among those above zero."""
    act = s.activation_N
    k = min(top_positions, int((act > 0).sum()))
    mask = torch.zeros_like(act, dtype=torch.bool)
    if k:
        mask[act.topk(k).indices] = True
    return mask


def head_table(s: Scan, cfg: AttentionMLPConfig, decode: Any) -> list[dict[str, Any]]:
    """One row per head, by mean contribution where the latent is active (module docstring, steps 3-4)."""
    active = active_mask(s, cfg.top_positions)
    if not bool(active.any()):
        raise InterplabError(f"{s.reader.name} never fires on the {s.texts} texts scanned; pick another latent "
                             "or give more text")
    n_layers, n_heads = s.heads_NLH.shape[1:]
    mean_active = s.heads_NLH[active].mean(0)  # [L, H]
    order = mean_active.flatten().argsort(descending=True)
    promoted = set(s.promoted)
    rows = []
    for flat in order.tolist():
        layer, head = divmod(flat, n_heads)
        contrib = s.heads_NLH[:, layer, head]
        rows.append({"layer": layer, "head": head, "mean_when_active": float(mean_active[layer, head]),
                     "mean_overall": float(contrib.mean()), "pearson_r": pearson(contrib, s.activation_N),
                     "auroc": auroc(contrib, active), **_lookups(s, layer, head, active, cfg, promoted, decode)})
    return rows


def _lookups(s: Scan, layer: int, head: int, active: Tensor, cfg: AttentionMLPConfig, promoted: set[int],
             decode: Any) -> dict[str, Any]:
    """What the head reads where it drives the latent most (among the active positions)."""
    idx = active.nonzero()[:, 0]
    contrib = s.heads_NLH[idx, layer, head]
    top = idx[contrib.topk(min(cfg.examples_per_head, len(idx))).indices]
    src = s.source_token_NLH[top, layer, head].tolist()
    common = Counter(src).most_common(3)
    return {"lookup_rate": sum(t in promoted for t in src) / max(len(src), 1),
            "next_token_rate": sum(int(t) in promoted for t in s.next_token_N[top].tolist()) / max(len(src), 1),
            "attends_to": " | ".join(f"{decode(t)!r}×{n}" for t, n in common)}


def summary(s: Scan, cfg: AttentionMLPConfig, decode: Any) -> dict[str, Any]:
    """Headline numbers of one scan."""
    active = active_mask(s, cfg.top_positions)
    promoted = set(s.promoted)
    nxt = s.next_token_N[active].tolist()
    return {"latent": s.reader.name, "texts": s.texts, "positions": int(len(s.activation_N)),
            "active_positions": int(active.sum()), "fires": int((s.activation_N > 0).sum()),
            "promoted_tokens": " ".join(repr(decode(t)) for t in s.promoted),
            "next_token_precision": sum(t in promoted for t in nxt) / max(len(nxt), 1)}
