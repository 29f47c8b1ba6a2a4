"""The logit lens's "latent English" (Wendler et al. 2024, "Do Llamas Work in English? On the Latent Language
of Multilingual Transformers", https://arxiv.org/abs/2402.10588), on translations between French and Spanish.

1. Few-shot translation prompts, e.g. `Français: "livre" - Español: "libro"` lines, ending in
   `Français: "<word>" - Español: "`: the correct next token starts the Spanish word.
2. At the prompt's last position, the logit lens at every layer gives the probability of the first token of
   the target-language word and of the English word for the same concept (words whose English and target
   first tokens coincide, or whose English token is the source word's, are left out).
3. Latent English shows as middle layers where P(English) exceeds P(target) before the last layers turn to
   the target language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interplab.data.multilingual import TRANSLATION_WORDS
from interplab.lens import final_decoder, layer_labels, run_streams
from interplab.models import LoadedModel

LANGUAGE_NAMES = {"en": "English", "fr": "Français", "es": "Español"}
_COLUMN = {"en": 0, "fr": 1, "es": 2}


@dataclass
class LatentEnglishResult:
    """Mean lens probabilities per layer (rows: 'embed', block 0, ...) over the translation prompts."""

    source: str
    target: str
    layers: list[str]
    p_target_L: Tensor
    p_english_L: Tensor
    english_wins_L: Tensor
    """Share of prompts where P(English) > P(target) at each layer."""
    n_prompts: int


def translation_prompt(word: str, source: str, target: str, shots: Sequence[tuple[str, str]]) -> str:
    """The few-shot prompt that asks for `word` (in `source`) in `target`."""
    src, tgt = LANGUAGE_NAMES[source], LANGUAGE_NAMES[target]
    lines = [f'{src}: "{a}" - {tgt}: "{b}"' for a, b in shots]
    return "\n".join([*lines, f'{src}: "{word}" - {tgt}: "'])


def first_token_after(lm: LoadedModel, prompt: str, word: str) -> int:
    """The id of the first token of `word` when it follows `prompt`."""
    n = len(lm.tokenizer(prompt)["input_ids"])
    ids = lm.tokenizer(prompt + word)["input_ids"]
    return int(ids[n]) if len(ids) > n else -1


def _cases(lm: LoadedModel, source: str, target: str, n_shots: int) -> list[tuple[str, int, int]]:
    """(prompt, target token, English token) per usable word; the first `n_shots` words are the examples."""
    words = [(w[_COLUMN[source]], w[_COLUMN[target]], w[0]) for w in TRANSLATION_WORDS]
    shots = [(s, t) for s, t, _ in words[:n_shots]]
    cases = []
    for src, tgt, en in words[n_shots:]:
        prompt = translation_prompt(src, source, target, shots)
        t_id, e_id, s_id = (first_token_after(lm, prompt, w) for w in (tgt, en, src))
        if len({t_id, e_id}) == 2 and e_id != s_id and -1 not in (t_id, e_id):
            cases.append((prompt, t_id, e_id))
    return cases


@torch.no_grad()
def latent_english(lm: LoadedModel, source: str = "fr", target: str = "es", n_shots: int = 4) -> LatentEnglishResult:
    """Logit-lens probabilities of the target word and its English twin at every layer (module docstring)."""
    decoder = final_decoder(lm)
    p_target, p_english = [], []
    cases = _cases(lm, source, target, n_shots)
    for prompt, t_id, e_id in cases:
        streams_LBSD, _ = run_streams(lm, lm.tokenize(prompt), logits_to_keep=1)  # the lens reads the streams
        probs_LV = decoder.log_probs(streams_LBSD[:, 0, -1].float()).exp()
        p_target.append(probs_LV[:, t_id].cpu())
        p_english.append(probs_LV[:, e_id].cpu())
    pt, pe = torch.stack(p_target), torch.stack(p_english)
    return LatentEnglishResult(source, target, layer_labels(lm.n_layers), pt.mean(0), pe.mean(0),
                               (pe > pt).float().mean(0), len(cases))


def latent_english_summary(result: LatentEnglishResult) -> dict[str, Any]:
    """Where P(English) peaks, and whether it beats P(target) there (the effect) while the output is target."""
    peak = int(result.p_english_L[:-1].argmax())
    return {"direction": f"{result.source}->{result.target}", "n_prompts": result.n_prompts,
            "english_peak_layer": result.layers[peak], "p_english_at_peak": float(result.p_english_L[peak]),
            "p_target_at_peak": float(result.p_target_L[peak]),
            "p_target_final": float(result.p_target_L[-1]), "p_english_final": float(result.p_english_L[-1]),
            "english_over_target_at_peak": bool(result.p_english_L[peak] > result.p_target_L[peak])}
