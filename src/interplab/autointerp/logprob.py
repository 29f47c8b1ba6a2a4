"""A local model as a judge that answers by the log-probabilities of fixed answers, not by free text.

Why: asked to reply with a list like `[1, 0, 1]`, a small local model (SmolLM2-135M) wrote other
things: 2-3 of 9-14 replies were unreadable and the rest all said no, so every score was 0.50. The
next-token distribution after the question always holds an answer, and costs one forward pass:
1. Build the chat prompt (the model's chat template, else a role-labelled transcript) up to where
   the assistant's reply starts.
2. Run prompts in right-padded batches; read each one's next-token log-probabilities at its last
   real position.
3. Per answer ("Yes", "No", or "1", "2", ...): log-sum-exp over the first tokens of a few spellings
   (' Yes', 'yes', ...), so a tokenizer's preference for one spelling does not decide; a first token
   two answers share is left out of both.
How the answers' log-probabilities become predictions (calibration) is the scorer's job (score.py).

`text_logprobs` reads a plain text instead: the log-probability of each of its tokens after a prefix (one
forward pass per text, cached per (prefix, text)), for the likelihood scorer in score.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interplab.autointerp.clients import Messages, chat_prompt_ids, context_length, load_causal
from interplab.common import InterplabError


def _spellings(answer: str) -> list[str]:
    forms = [answer, answer.lower(), answer.capitalize()]
    return list(dict.fromkeys(forms + [" " + f for f in forms]))


class LogprobJudge:
    """Scores fixed answers to a question with a causal LM run in this process."""

    def __init__(self, model: Any, device: str | None = None):
        self.lm = load_causal(model, device, "judge")
        self.name = f"hf:{Path(str(self.lm.name)).name} (log-prob)"
        self._seen: dict[tuple[str, str], tuple[Tensor, list[tuple[int, int]]]] = {}
        """text_logprobs results: the explanation-free prefix is read once per text for every explainer."""

    def answer_ids(self, answers: Sequence[str]) -> list[list[int]]:
        """First token ids of each answer's spellings, without ids that two answers share."""
        tok = self.lm.tokenizer
        ids = [{int(tok(s, add_special_tokens=False)["input_ids"][0]) for s in _spellings(a)} for a in answers]
        shared = {i for n, a in enumerate(ids) for m, b in enumerate(ids) if n != m for i in a & b}
        out = [sorted(a - shared) for a in ids]
        if any(not a for a in out):
            raise InterplabError(f"the judge's tokenizer cannot tell the answers {list(answers)} apart "
                                 "by their first token; use another judge model")
        return out

    def _batch_ids(self, prompts: Sequence[Messages]) -> tuple[Tensor, Tensor]:
        """Right-padded ids [B, S] and each prompt's last real position [B]."""
        rows = [chat_prompt_ids(self.lm, m)[0] for m in prompts]
        n_ctx = context_length(self.lm)
        if n_ctx is not None:
            rows = [r[-n_ctx:] for r in rows]  # keep the end: the question sits there
        lengths_B = torch.tensor([len(r) for r in rows])
        pad = self.lm.tokenizer.pad_token_id
        ids_BS = torch.full((len(rows), int(lengths_B.max())), 0 if pad is None else int(pad), dtype=torch.long)
        for b, r in enumerate(rows):
            ids_BS[b, : len(r)] = r
        return ids_BS.to(self.lm.device), lengths_B - 1

    def answer_logprobs(self, prompts: Sequence[Messages], answers: Sequence[str], batch_size: int = 8) -> Tensor:
        """Log-probabilities [len(prompts), len(answers)] of each answer as the reply's first token."""
        ids = self.answer_ids(answers)
        out = []
        for start in range(0, len(prompts), batch_size):
            ids_BS, last_B = self._batch_ids(prompts[start : start + batch_size])
            mask_BS = (torch.arange(ids_BS.shape[1])[None, :] <= last_B[:, None]).to(ids_BS.device)
            with torch.no_grad():
                logits_BSV = self.lm.model(input_ids=ids_BS, attention_mask=mask_BS.long()).logits
            logp_BV = logits_BSV[torch.arange(len(last_B)), last_B.to(ids_BS.device)].float().log_softmax(-1)
            out.append(torch.stack([logp_BV[:, a].logsumexp(-1) for a in ids], dim=-1).cpu())
        return torch.cat(out) if out else torch.empty(0, len(answers))

    def _text_ids(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        tok = self.lm.tokenizer
        if not getattr(tok, "is_fast", False):
            raise InterplabError(f"the judge's tokenizer ({type(tok).__name__}) gives no character offsets; "
                                 "use a judge with a fast tokenizer or --method yes-no")
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [(int(a), int(b)) for a, b in enc["offset_mapping"]]

    def text_logprobs(self, prefix: str, texts: Sequence[str], batch_size: int = 8
                      ) -> list[tuple[Tensor, list[tuple[int, int]]]]:
        """Per text: log P(token | prefix, the text before it) for each of its tokens [T], and each token's
        character span in the text."""
        todo = list(dict.fromkeys(t for t in texts if (prefix, t) not in self._seen))
        head = [int(i) for i in self.lm.tokenizer(prefix, add_special_tokens=False)["input_ids"]]
        if not head:
            raise InterplabError("text_logprobs needs a non-empty prefix (its last token predicts the text's first)")
        for start in range(0, len(todo), batch_size):
            encoded = [self._text_ids(t) for t in todo[start : start + batch_size]]
            rows = [head + ids for ids, _ in encoded]
            ids_BS = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
            mask_BS = torch.zeros_like(ids_BS)
            for b, row in enumerate(rows):
                ids_BS[b, : len(row)], mask_BS[b, : len(row)] = torch.tensor(row), 1
            with torch.no_grad():
                logits_BSV = self.lm.model(input_ids=ids_BS.to(self.lm.device),
                                           attention_mask=mask_BS.to(self.lm.device)).logits
            for b, (ids, spans) in enumerate(encoded):
                # position p predicts token p + 1: the text's tokens are predicted from len(head) - 1 on
                logp_TV = logits_BSV[b, len(head) - 1 : len(head) - 1 + len(ids)].float().log_softmax(-1)
                target_T = torch.tensor(ids, device=logp_TV.device)
                logp_T = logp_TV.gather(-1, target_T[:, None])[:, 0].cpu()
                self._seen[(prefix, todo[start + b])] = (logp_T, spans)
        return [self._seen[(prefix, t)] for t in texts]
