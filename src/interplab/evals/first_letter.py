"""First-letter absorption and k-sparse probing on a language model (Chanin et al. 2024, "A is for
Absorption", arXiv:2409.14507; SAEBench, Karvonen et al. 2025, arXiv:2503.09532).

1. Words: vocabulary tokens that are a whole lower-case word of at least `min_word_len` letters
   (' tiger'), `n_words` of them, seeded. Each is read at its own position after a short spelling
   prompt (`prompt` + word), at the SAE's hook; words split into train/test.
2. Per first letter L (with enough words): a logistic probe "starts with L" on the residual, trained
   on the train words of L and as many other train words; its unit direction u_L. F1 on the test split.
3. k-sparse probing: rank latents by the class-mean difference of their activations (same rows),
   fit a probe on the top k, report test F1 for each k. The main latents of L are the top k* where k*
   is the first k after which one more latent adds less than `split_threshold` F1 (SAEBench's
   feature-splitting rule: a letter split over several latents needs several main latents).
4. Absorption of L: among the test words of L that the residual probe gets right, the share where
   every main latent is silent and the latent contributing most along u_L (z_l · W_dec_l · u_L) has a
   decoder cosine with u_L of at least `cos_threshold`: the letter is still there, carried by a latent
   that is not about the letter (' short' absorbing 'starts with S').
5. Scores: mean absorption over letters, mean probe F1 and AUROC, mean k-sparse F1 per k.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel
from interplab.models.tokens import token_texts
from interplab.probes import LinearProbeConfig, auroc, train_linear_probe, train_sparse_probe

log = get_logger(__name__)


@dataclass
class FirstLetterConfig:
    """How the first-letter task is built and scored."""

    n_words: int = 1500
    """Vocabulary words sampled (seeded)."""
    min_word_len: int = 3
    """Shortest word kept, in letters."""
    prompt: str = "tartan: T\nmango: M\nbicycle: B\nquiet: Q\n"
    """Text before each word: a few spelled examples (the word is read at its own token)."""
    test_frac: float = 0.3
    """Share of the words held out for F1 and absorption."""
    ks: list[int] = field(default_factory=lambda: [1, 2, 3, 5, 10, 20])
    """k values of the k-sparse probing sweep."""
    split_threshold: float = 0.03
    """F1 gain of one more latent that still counts as feature splitting (SAEBench's τ_fs)."""
    cos_threshold: float = 0.025
    """Decoder cosine with the probe that an absorbing latent needs (SAEBench's value)."""
    min_test_words: int = 5
    """Letters with fewer test words (or train words) are skipped."""
    C: float = 1.0
    """Inverse L2 strength of the probes."""
    balance: bool = True
    """Train each letter's probes on its words and as many others (else on every train word)."""
    batch_size: int = 64
    """Words per forward pass."""
    seed: int = 0
    """Seed of the word sample and the split."""


class LetterScore(NamedTuple):
    """The scores of one first letter."""

    letter: str
    n_test: int
    """Test words starting with the letter."""
    probe_f1: float
    """Residual probe F1 on the test split."""
    probe_auroc: float
    """Residual probe AUROC on the test split (F1 is harsh at one positive word in ~20)."""
    k_f1: dict[int, float]
    """k-sparse SAE probe F1 per k."""
    main_latents: list[int]
    """The letter's main latents (top k* by class-mean difference)."""
    absorption: float
    """Share of correctly probed test words absorbed (see the module docstring)."""
    n_scored: int
    """Test words the residual probe got right (the denominator of absorption)."""


@dataclass
class FirstLetterResult:
    """Scores of every letter and their means."""

    letters: list[LetterScore]
    hook: str
    n_words: int

    def summary(self) -> dict[str, Any]:
        """JSON-safe means (and the per-letter rows) for eval.json."""
        if not self.letters:
            raise InterplabError("no letter had enough words; raise n_words")
        ks = sorted({k for s in self.letters for k in s.k_f1})
        mean = lambda xs: float(sum(xs) / len(xs))  # noqa: E731
        return {
            "hook": self.hook,
            "n_words": self.n_words,
            "n_letters": len(self.letters),
            "mean_absorption": mean([s.absorption for s in self.letters]),
            "mean_probe_f1": mean([s.probe_f1 for s in self.letters]),
            "mean_probe_auroc": mean([s.probe_auroc for s in self.letters]),
            "k_sparse_f1": {str(k): mean([s.k_f1[k] for s in self.letters if k in s.k_f1]) for k in ks},
            "mean_main_latents": mean([len(s.main_latents) for s in self.letters]),
            "letters": [{**s._asdict(), "k_f1": {str(k): v for k, v in s.k_f1.items()}} for s in self.letters],
        }


def vocabulary_words(lm: LoadedModel, n: int, min_len: int, seed: int) -> list[tuple[str, int]]:
    """(word, token id) pairs of whole lower-case words from the vocabulary, `n` of them, seeded."""
    text = token_texts(lm.tokenizer)
    special = set(getattr(lm.tokenizer, "all_special_ids", []) or [])
    words = []
    for token_id in range(len(lm.tokenizer)):
        s = text(token_id)
        word = s[1:]
        if token_id not in special and s.startswith(" ") and len(word) >= min_len and word.isascii() \
                and word.isalpha() and word.islower():
            words.append((word, token_id))
    if len(words) < 26:
        raise InterplabError(f"{lm.name}'s vocabulary has only {len(words)} whole-word tokens; the first-letter "
                             "task needs a word-level vocabulary")
    random.Random(seed).shuffle(words)
    return words[:n]


def _prompt_ids(lm: LoadedModel, prompt: str, word_id: int) -> tuple[list[int], int]:
    """Token ids of prompt + word (special tokens kept where the tokenizer adds them) and the word's index."""
    ids = list(lm.tokenizer(prompt, add_special_tokens=True)["input_ids"])
    sep = getattr(lm.tokenizer, "sep_token_id", None)
    if sep is not None and ids and ids[-1] == sep:  # encoders end with [SEP]: the word goes before it
        return ids[:-1] + [word_id, sep], len(ids) - 1
    return ids + [word_id], len(ids)


def word_activations(lm: LoadedModel, words: list[tuple[str, int]], hook: str, prompt: str,
                     batch_size: int) -> Tensor:
    """[n_words, d_model] activations at `hook`, read at each word's token after the prompt."""
    out = []
    for start in range(0, len(words), batch_size):
        rows = [_prompt_ids(lm, prompt, token_id) for _, token_id in words[start:start + batch_size]]
        ids_BS = torch.tensor([r[0] for r in rows], device=lm.device)  # same length: one word token each
        acts = run_to_capture(lm.model, {"input_ids": ids_BS, "attention_mask": torch.ones_like(ids_BS)}, hook)
        out.append(acts[hook][:, rows[0][1]].float().cpu())
    return torch.cat(out)


def _f1(pred_N: Tensor, y_N: Tensor) -> float:
    tp = float((pred_N & y_N).sum())
    denom = float(pred_N.sum() + y_N.sum())
    return 2 * tp / denom if denom else 0.0


def _main_k(k_f1: dict[int, float], threshold: float) -> int:
    ks = sorted(k_f1)
    for k, nxt in zip(ks, ks[1:], strict=False):
        if k_f1[nxt] - k_f1[k] < threshold:
            return k
    return ks[-1]


def _balanced(rows_N: Tensor, y_N: Tensor, seed: int) -> Tensor:
    """The positive rows and as many negative rows (seeded): a letter is 1 word in ~20."""
    pos_N, neg_N = rows_N[y_N[rows_N]], rows_N[~y_N[rows_N]]
    pick = torch.randperm(len(neg_N), generator=torch.Generator().manual_seed(seed))[: len(pos_N)]
    return torch.cat([pos_N, neg_N[pick]]).sort().values


def score_letter(letter: str, X_ND: Tensor, Z_NF: Tensor, W_dec_FD: Tensor, y_N: Tensor, train_N: Tensor,
                 test_N: Tensor, cfg: FirstLetterConfig) -> LetterScore:
    """Probe, k-sparse sweep and absorption of one letter (`y_N`: the word starts with it)."""
    pcfg = LinearProbeConfig(C=cfg.C, device="cpu")
    if cfg.balance:
        train_N = _balanced(train_N, y_N, cfg.seed)
    probe = train_linear_probe(X_ND[train_N], y_N[train_N].long(), pcfg)
    y_test = y_N[test_N]
    logits_N = probe.logits(X_ND[test_N]).cpu()
    probe_pos = logits_N > 0
    k_f1, main = {}, {}
    for k in [k for k in cfg.ks if k <= Z_NF.shape[1]]:
        sparse = train_sparse_probe(Z_NF[train_N], y_N[train_N].long(), k, cfg=pcfg)
        k_f1[k] = _f1(sparse.logits(Z_NF[test_N]).cpu() > 0, y_test)
        main[k] = sparse.latents
    main_latents = main[_main_k(k_f1, cfg.split_threshold)]
    u_D = probe.direction.float().cpu()
    scored = test_N[probe_pos & y_test]
    z_SF = Z_NF[scored]
    silent_S = (z_SF[:, main_latents] <= 0).all(1)
    along_F = W_dec_FD @ u_D
    top_S = (z_SF * along_F).argmax(1)
    cos_F = along_F / W_dec_FD.norm(dim=-1).clamp_min(1e-12)
    absorbed_S = silent_S & ((z_SF * along_F).amax(1) > 0) & (cos_F[top_S] >= cfg.cos_threshold)
    n_scored = int(scored.numel())
    return LetterScore(letter, int(y_test.sum()), _f1(probe_pos, y_test), auroc(logits_N, y_test.long()), k_f1, list(main_latents),
                       float(absorbed_S.sum()) / n_scored if n_scored else 0.0, n_scored)


@torch.no_grad()
def _encode(sae: Any, X_ND: Tensor) -> Tensor:
    return sae.encode(X_ND.to(sae.W_dec.device)).float().cpu()


def first_letter_absorption(lm: LoadedModel, sae: Any, hook: str | None = None,
                            cfg: FirstLetterConfig | None = None) -> FirstLetterResult:
    """Run the first-letter task for `sae` at `hook` (default: the SAE's metadata hook_name)."""
    cfg = cfg or FirstLetterConfig()
    hook = hook or sae.cfg.metadata.get("hook_name")
    if not hook:
        raise InterplabError("the SAE's metadata names no hook; pass the hook, e.g. blocks.3.resid_post")
    if lm.d_model != sae.cfg.d_in:
        raise InterplabError(f"{lm.name} has d_model={lm.d_model} but the SAE reads d_in={sae.cfg.d_in}")
    words = vocabulary_words(lm, cfg.n_words, cfg.min_word_len, cfg.seed)
    X_ND = word_activations(lm, words, hook, cfg.prompt, cfg.batch_size)
    Z_NF = _encode(sae, X_ND)
    W_dec_FD = sae.W_dec.detach().float().cpu()
    perm_N = torch.randperm(len(words), generator=torch.Generator().manual_seed(cfg.seed))
    n_test = int(len(words) * cfg.test_frac)
    test_N, train_N = perm_N[:n_test].sort().values, perm_N[n_test:].sort().values
    firsts = [w[0] for w, _ in words]
    scores = []
    for letter in sorted(set(firsts)):
        y_N = torch.tensor([f == letter for f in firsts])
        if int(y_N[test_N].sum()) < cfg.min_test_words or int(y_N[train_N].sum()) < cfg.min_test_words:
            continue
        scores.append(score_letter(letter, X_ND, Z_NF, W_dec_FD, y_N, train_N, test_N, cfg))
        log.debug("first letter %s: absorption %.3f", letter, scores[-1].absorption)
    return FirstLetterResult(scores, hook, len(words))
