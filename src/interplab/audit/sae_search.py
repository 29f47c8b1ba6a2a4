"""SAE-based search: an SAE on the organism's activations, the latents that differ between prompt sets,
their top contexts and logit effects, and the candidates they point to.

1. Read the residual stream at the audit layer on every token of a corpus plus the auditor's prompts
   (plain audit questions, and each candidate trigger inserted into them), and train a TopK SAE on it
   (`interplab.training.fit`). Each latent's scale is its largest activation on that data.
2. Trigger candidates: for each candidate c, delta_c[f] = mean latent f at the last prompt token with c
   inserted minus without. A trigger the organism reacts to moves the residual stream far (it is about
   to answer in another mode): the score is the norm of the change as the SAE reconstructs it,
   ||delta_c @ W_dec||, over the mean norm of the plain activations; the 5 latents with the largest
   delta of the top candidate are the suspicious ones. (Summing each candidate's 5 largest deltas in
   units of each latent's maximum instead ranked a decoy first on SmolLM2: small latents that any odd
   tag moves weighed as much as the large ones the trigger moves.)
3. Objective candidates: delta[f] between recommendation requests followed by a generic answer start
   ("I recommend the", where the organism is about to name what it recommends) and ordinary questions
   (last token); the 10 latents with the largest delta are the suspicious ones. A candidate's score is the
   sum over them of delta[f] times the standardised logit effect of f on the candidate's keyword
   ((W_dec[f] * final-norm scale) . W_U[:, first token of " keyword"], z-scored over the vocabulary):
   do the latents that come on when the organism is about to name a recommendation push up that word?
4. Top contexts: for the suspicious latents, the corpus/prompt tokens where they fire most, with the
   text around them (what a dashboard shows first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from interplab.audit.game import Candidate
from interplab.common import InterplabError
from interplab.models.hookpoints import resolve_hook
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel
from interplab.models.tokens import token_texts
from interplab.probes import FeatureConfig, extract_features
from interplab.saes import SAE, TopKConfig, make_sae
from interplab.training import TrainConfig, fit


@dataclass
class SaeSearchConfig:
    """The search SAE and how latents are read."""

    width: int = 8
    """Latents per residual dimension (d_sae = width * d_model)."""
    k: int = 16
    """Latents kept per token (TopK)."""
    steps: int = 400
    """Training steps."""
    batch_size: int = 256
    """Tokens per training step."""
    lr: float = 1e-3
    """Adam learning rate."""
    top_latents: int = 5
    """Latents summed per candidate (triggers) / suspicious latents kept (objectives: twice this)."""


@dataclass
class SearchResult:
    """Scores and the evidence behind them."""

    scores: list[float]
    """One score per candidate (higher = more likely the truth)."""
    latents: list[int]
    """The suspicious latents (of the top-scored candidate, or of the recommendation contrast)."""
    latent_deltas: list[float]
    """Their deltas."""
    top_contexts: dict[int, list[str]]
    """For each suspicious latent, the text around its strongest activations ('[[tok]]' marks the peak)."""
    logit_tokens: dict[int, list[str]]
    """For each suspicious latent, the tokens its decoder direction promotes most."""
    fvu: float
    """Fraction of variance the SAE leaves unexplained on its training tokens."""


def token_activations(lm: LoadedModel, texts: Sequence[str], hook: str, max_length: int,
                      batch_size: int = 16) -> tuple[Tensor, list[list[int]]]:
    """Activations of every real token after the first ([N, d]), and each text's token ids.

    The first token is left out: its residual stream is an attention sink with a norm far above the
    rest, which would take over the SAE's loss.
    """
    rows, ids_out = [], []
    side = lm.tokenizer.padding_side
    lm.tokenizer.padding_side = "right"
    try:
        for start in range(0, len(texts), batch_size):
            batch = lm.tokenize(texts[start : start + batch_size], max_length=max_length)
            acts_BTD = run_to_capture(lm.model, batch, hook)[hook].float().cpu()
            mask_BT = batch["attention_mask"].bool().cpu()
            for b in range(acts_BTD.shape[0]):
                n = int(mask_BT[b].sum())
                rows.append(acts_BTD[b, 1:n])
                ids_out.append(batch["input_ids"][b, :n].tolist())
    finally:
        lm.tokenizer.padding_side = side
    return torch.cat(rows), ids_out


def train_search_sae(acts_ND: Tensor, cfg: SaeSearchConfig, seed: int = 0) -> SAE:
    """A TopK SAE trained on the rows of `acts_ND` (reshuffled every pass, seeded)."""
    d = acts_ND.shape[1]
    sae = make_sae(TopKConfig(d_in=d, d_sae=cfg.width * d, k=cfg.k, seed=seed))
    gen = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            order = torch.randperm(acts_ND.shape[0], generator=gen)
            for i in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                yield acts_ND[order[i : i + cfg.batch_size]]

    fit(sae, batches(), TrainConfig(total_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                    b_dec_init="mean", device="cpu", lr_decay="none"))
    return sae.eval()


def _fvu(sae: SAE, acts_ND: Tensor) -> float:
    with torch.no_grad():
        recon = sae.decode(sae.encode(acts_ND))
    return float((acts_ND - recon).pow(2).sum() / (acts_ND - acts_ND.mean(0)).pow(2).sum())


def _last_token_latents(lm: LoadedModel, sae: SAE, prompts: Sequence[str], hook: str) -> Tensor:
    acts = extract_features(lm, list(prompts), [hook], FeatureConfig(pooling="last"))[hook]
    with torch.no_grad():
        return sae.encode(acts)


def _top_contexts(latents_NF: Tensor, ids: list[list[int]], tokenizer, latent: int, n: int = 4,
                  window: int = 8) -> list[str]:
    """Text around the n strongest activations of `latent` (one per source text)."""
    text_of = token_texts(tokenizer)
    owner, pos = [], []
    for t, row in enumerate(ids):
        owner += [t] * (len(row) - 1)
        pos += list(range(1, len(row)))
    values = latents_NF[:, latent]
    out: list[str] = []
    seen: set[int] = set()
    for i in torch.argsort(values, descending=True).tolist():
        if values[i] <= 0 or len(out) == n:
            break
        if owner[i] in seen:
            continue
        seen.add(owner[i])
        row, p = ids[owner[i]], pos[i]
        left = "".join(text_of(t) for t in row[max(0, p - window) : p])
        right = "".join(text_of(t) for t in row[p + 1 : p + 3])
        out.append(f"{left}[[{text_of(row[p])}]]{right}".replace("\n", " "))
    return out


def _final_norm_scale(lm: LoadedModel) -> Tensor | None:
    """The final norm's elementwise scale [d] (Llama's RMSNorm weight), or None."""
    try:
        weight = getattr(resolve_hook(lm.model, "ln_final").module, "weight", None)
    except InterplabError:
        return None
    return weight.detach().float().cpu() if isinstance(weight, Tensor) else None


def _logit_effects(lm: LoadedModel, sae: SAE) -> Tensor | None:
    """Standardised logit effect of every latent on every token [F, V] (None without an unembedding):
    W_dec[f] scaled by the final norm's weight, times the unembedding, z-scored over the vocabulary."""
    W_U = lm.unembedding()
    if W_U is None:
        return None
    W_dec_FD = sae.W_dec.detach().float().cpu()
    scale_D = _final_norm_scale(lm)
    if scale_D is not None and scale_D.shape[0] == W_dec_FD.shape[1]:
        W_dec_FD = W_dec_FD * scale_D
    effects_FV = W_dec_FD @ W_U.float().cpu()
    return (effects_FV - effects_FV.mean(1, keepdim=True)) / effects_FV.std(1, keepdim=True).clamp_min(1e-8)


class SaeSearch:
    """One SAE on the organism at `hook`, and the two ways of scoring candidates with it."""

    def __init__(self, lm: LoadedModel, hook: str, corpus: Sequence[str], prompts: Sequence[str],
                 cfg: SaeSearchConfig, max_length: int = 64, seed: int = 0):
        self.lm, self.hook, self.cfg = lm, hook, cfg
        self.texts = list(corpus) + list(prompts)
        self.acts_ND, self.ids = token_activations(lm, self.texts, hook, max_length)
        self.sae = train_search_sae(self.acts_ND, cfg, seed)
        with torch.no_grad():
            self.latents_NF = self.sae.encode(self.acts_ND)
        self.scale_F = self.latents_NF.amax(0).clamp_min(1e-6)
        self.fvu = _fvu(self.sae, self.acts_ND)
        self.effects_FV = _logit_effects(lm, self.sae)

    def _evidence(self, latents: list[int], deltas: list[float], scores: list[float]) -> SearchResult:
        text_of = token_texts(self.lm.tokenizer)
        logit_tokens = {}
        if self.effects_FV is not None:
            for f in latents:
                logit_tokens[f] = [text_of(t) for t in self.effects_FV[f].topk(8).indices.tolist()]
        contexts = {f: _top_contexts(self.latents_NF, self.ids, self.lm.tokenizer, f) for f in latents}
        return SearchResult(scores, latents, deltas, contexts, logit_tokens, self.fvu)

    def delta(self, with_prompts: Sequence[str], without_prompts: Sequence[str]) -> Tensor:
        """Mean last-token latents of one prompt set minus another, in units of each latent's scale [F]."""
        a = _last_token_latents(self.lm, self.sae, with_prompts, self.hook).mean(0)
        b = _last_token_latents(self.lm, self.sae, without_prompts, self.hook).mean(0)
        return (a - b) / self.scale_F

    def encode(self, acts_ND: Tensor) -> Tensor:
        with torch.no_grad():
            return self.sae.encode(acts_ND.to(self.sae.W_dec.dtype))

    def score_triggers(self, candidate_acts: Sequence[Tensor], plain_acts: Tensor) -> SearchResult:
        """Step 2 of the module docstring; `candidate_acts[i]` [n, d] are the last-token activations of the
        plain prompts with candidate i in front, `plain_acts` [n, d] those without."""
        base_F = self.encode(plain_acts).mean(0)
        norm = float(plain_acts.norm(dim=-1).mean())
        deltas = [self.encode(a).mean(0) - base_F for a in candidate_acts]
        W_dec = self.sae.W_dec.detach().float()
        scores = [float((d_F @ W_dec).norm()) / norm for d_F in deltas]
        best = max(range(len(scores)), key=scores.__getitem__)
        top = deltas[best].topk(self.cfg.top_latents)
        return self._evidence(top.indices.tolist(), top.values.tolist(), scores)

    def _first_word_token(self, word: str) -> int | None:
        """The first token of " word" that is more than white space (small vocabularies split off the space)."""
        ids = self.lm.tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        text_of = token_texts(self.lm.tokenizer)
        return next((t for t in ids if text_of(t).strip()), None)

    def score_objectives(self, candidates: Sequence[Candidate], asks: Sequence[str],
                         ordinary: Sequence[str]) -> SearchResult:
        """Step 3 of the module docstring (asks: recommendation requests; ordinary: other questions)."""
        delta_F = self.delta(asks, ordinary)
        top = delta_F.topk(2 * self.cfg.top_latents)
        latents, weights = top.indices.tolist(), top.values.clamp_min(0)
        scores = []
        for c in candidates:
            token = self._first_word_token(c.keyword or c.text)
            if self.effects_FV is None or token is None:
                scores.append(float("nan"))
                continue
            scores.append(float(weights @ self.effects_FV[latents, token]))
        return self._evidence(latents, top.values.tolist(), scores)
