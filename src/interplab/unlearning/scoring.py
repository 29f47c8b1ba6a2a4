"""Score a served model on fact items by teacher forcing: one forward pass per item gives both
exact match and answer probability.

- Exact match: greedy decoding would produce the answer's tokens, i.e. at every answer position the
  arg-max token is the answer token (teacher forcing checks this without decoding).
- Answer probability: p(answer | prompt), the product over the answer's tokens.
- Multiple choice: the option with the highest log p(option | prompt) is the pick. When the options
  differ only in their last token (single-token cities and jobs, years of one decade) one forward pass
  scores all four; otherwise each option gets its own.
- Perplexity: exp of the mean next-token loss over the first `max_tokens` tokens of each text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from interplab.data.synthetic.fictional_people import Item
from interplab.training.causal_lm import answer_rows, encode_pairs, encode_texts
from interplab.unlearning.served import ServedModel


class AnswerScores(NamedTuple):
    """Per item scores."""

    correct: Tensor
    """[n] bool: greedy decoding gives the answer (exact match)."""
    logprob: Tensor
    """[n] log p(answer | prompt)."""

    def accuracy(self) -> float:
        return float(self.correct.float().mean()) if len(self.correct) else float("nan")

    def mean_prob(self) -> float:
        return float(self.logprob.exp().mean()) if len(self.logprob) else float("nan")


@torch.no_grad()
def score_answers(served: ServedModel, items: Sequence[Item], with_filter: bool = True,
                  batch_size: int = 32) -> AnswerScores:
    """Exact match and log-probability of each item's answer (batched by length, returned in item order)."""
    n = len(items)
    correct_N, logprob_N = torch.zeros(n, dtype=torch.bool), torch.zeros(n)
    order = by_length(served.tokenizer, [it.prompt + it.answer for it in items])
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        batch = encode_pairs(served.tokenizer, [(items[i].prompt, items[i].answer) for i in rows], served.device)
        logits_NV, targets_N = served.answer_logits(batch, with_filter)
        lp_N = -F.cross_entropy(logits_NV, targets_N, reduction="none")
        hit_N = logits_NV.argmax(-1) == targets_N
        row_N = answer_rows(batch.labels)
        logprob_N[rows] = torch.zeros(len(rows), device=lp_N.device).index_add_(0, row_N, lp_N).cpu()
        misses = torch.zeros(len(rows), device=lp_N.device).index_add_(0, row_N, (~hit_N).float())
        correct_N[rows] = (misses == 0).cpu()
    return AnswerScores(correct_N, logprob_N)


def by_length(tokenizer, texts: Sequence[str]) -> list[int]:
    """Indices of `texts` from the fewest tokens to the most: batches of neighbours pad little (in item
    order, the short city questions and the long year questions share batches and pad by a third)."""
    lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]] if texts else []
    return sorted(range(len(texts)), key=lengths.__getitem__)


@torch.no_grad()
def score_choices(served: ServedModel, items: Sequence[Item], with_filter: bool = True,
                  batch_size: int = 32) -> Tensor:
    """[n] bool: the answer is the most likely of the item's options."""
    option_ids = [[served.tokenizer(o, add_special_tokens=False)["input_ids"] for o in it.options] for it in items]
    one_pass = [len({len(i) for i in ids}) == 1 and len({tuple(i[:-1]) for i in ids}) == 1 for ids in option_ids]
    picks: dict[int, int] = {}
    fast = [i for i, f in enumerate(one_pass) if f]
    fast = [fast[j] for j in by_length(served.tokenizer, [items[i].prompt + items[i].options[0] for i in fast])]
    for start in range(0, len(fast), batch_size):
        # the options share all tokens but the last, so the logits at one position rank them all
        chunk = fast[start:start + batch_size]
        batch = encode_pairs(served.tokenizer, [(items[i].prompt, items[i].options[0]) for i in chunk], served.device)
        logits_NV, _ = served.answer_logits(batch, with_filter)
        last_N = answer_rows(batch.labels).bincount(minlength=len(chunk)).cumsum(0) - 1
        for row, i in enumerate(chunk):
            picks[i] = int(logits_NV[last_N[row], [ids[-1] for ids in option_ids[i]]].argmax())
    for i in (i for i, f in enumerate(one_pass) if not f):
        batch = encode_pairs(served.tokenizer, [(items[i].prompt, o) for o in items[i].options], served.device)
        logits_NV, targets_N = served.answer_logits(batch, with_filter)
        lp_N = -F.cross_entropy(logits_NV, targets_N, reduction="none")
        scores = torch.zeros(len(items[i].options), device=lp_N.device).index_add_(0, answer_rows(batch.labels), lp_N)
        picks[i] = int(scores.argmax())
    return torch.tensor([items[i].options[picks[i]] == items[i].answer for i in range(len(items))], dtype=torch.bool)


@torch.no_grad()
def perplexity(served: ServedModel, texts: Sequence[str], with_filter: bool = True, max_tokens: int = 64,
               batch_size: int = 8) -> float:
    """exp(mean next-token loss) over the first `max_tokens` tokens of each text."""
    total, count = 0.0, 0
    for start in range(0, len(texts), batch_size):
        batch = encode_texts(served.tokenizer, texts[start:start + batch_size], max_tokens, served.device)
        logits_NV, targets_N = served.answer_logits(batch, with_filter)
        total += float(F.cross_entropy(logits_NV, targets_N, reduction="sum"))
        count += len(targets_N)
    return float(torch.tensor(total / max(count, 1)).exp())
