"""The log-probability judge: fixed answers read from the next-token distribution, calibrated scoring."""

import re

import pytest
import torch

from interplab.autointerp import LogprobJudge, detection_score, fuzzing_score
from interplab.autointerp.clients import plain_chat_prompt
from interplab.autointerp.prompts import yes_no_messages
from interplab.common import InterplabError


def test_batched_answers_equal_one_prompt_at_a_time(gpt2):
    judge = LogprobJudge(gpt2)
    prompts = [yes_no_messages("detection", "the word cat", text)
               for text in ("a cat", "the old dog sat by the long river bank at dawn", "N/A")]
    batched = judge.answer_logprobs(prompts, ["Yes", "No"], batch_size=3)
    single = torch.cat([judge.answer_logprobs([p], ["Yes", "No"], batch_size=1) for p in prompts])
    assert batched.shape == (3, 2)
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-4)


def test_an_answer_is_the_log_sum_of_its_spellings_first_tokens(gpt2):
    judge = LogprobJudge(gpt2)
    messages = yes_no_messages("fuzzing", "numbers", "in <<1914>> the war")
    ids = gpt2.tokenizer(plain_chat_prompt(messages), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp_V = gpt2.model(input_ids=ids).logits[0, -1].log_softmax(-1)
    yes_ids, no_ids = judge.answer_ids(["Yes", "No"])
    expected = torch.stack([logp_V[yes_ids].logsumexp(0), logp_V[no_ids].logsumexp(0)])
    torch.testing.assert_close(judge.answer_logprobs([messages], ["Yes", "No"])[0], expected)


def test_answers_that_share_every_first_token_are_refused(gpt2):
    with pytest.raises(InterplabError, match="apart"):
        LogprobJudge(gpt2).answer_ids(["Yes", "yes"])


class LeaningNo(LogprobJudge):
    """A scripted judge whose margins lean hard to No: -3, plus 1 when the excerpt holds what the
    explanation names (its first quoted word), the way a small model's margins lean whatever the text."""

    name = "leaning-no"

    def __init__(self):
        pass

    def answer_logprobs(self, prompts, answers, batch_size=8):
        rows = []
        for messages in prompts:
            user = messages[-1]["content"]
            word = re.search(r"'(\w+)'", user).group(1)
            excerpt = user.split("Text: ", 1)[1].split("\n\n")[0]
            if "<<" in excerpt:  # fuzzing: are the marked words the named one?
                hit = all(m == word for m in re.findall(r"<<(.*?)>>", excerpt))
            else:
                hit = word in excerpt.split()
            rows.append([-3.0 + hit, 0.0])
        return torch.tensor(rows)


def test_margins_that_always_lean_no_are_calibrated_on_a_content_free_window(cat_examples):
    det = detection_score(LeaningNo(), "fires on 'cat'", cat_examples)
    assert det.threshold == -3.0 and det.balanced_accuracy == 1.0 and det.auroc == 1.0 and det.parse_failures == 0
    fuz = fuzzing_score(LeaningNo(), "fires on 'cat'", cat_examples)
    assert fuz.balanced_accuracy == 1.0 and fuz.tpr == 1.0 and fuz.tnr == 1.0


def test_an_explanation_the_judge_cannot_use_scores_chance(cat_examples):
    det = detection_score(LeaningNo(), "fires on 'zebra'", cat_examples)
    assert det.balanced_accuracy == 0.5 and det.auroc == 0.5
