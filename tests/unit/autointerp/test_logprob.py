"""The log-probability judge: fixed answers or a text's tokens read from the next-token distribution, scores
thresholded at their median and summarised by AUROC."""

import re

import pytest
import torch

from interplab.autointerp import LogprobJudge, ScoreConfig, detection_score, fuzzing_score
from interplab.autointerp.clients import plain_chat_prompt
from interplab.autointerp.prompts import yes_no_messages
from interplab.autointerp.score import NEUTRAL, auroc, detection_items, fuzzing_items, median_predictions
from interplab.common import InterplabError


def test_batched_answers_equal_one_prompt_at_a_time(gpt2):
    judge = LogprobJudge(gpt2)
    prompts = [yes_no_messages("detection", "the word cat", text)
               for text in ("a cat", "the old dog sat by the long river bank at dawn", "")]
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


YES_NO = ScoreConfig(method="yes-no")


def test_margins_that_always_lean_no_are_thresholded_at_the_median_of_the_latents_items(cat_examples):
    det = detection_score(LeaningNo(), "fires on 'cat'", cat_examples, YES_NO)
    assert det.threshold == -2.5 and det.balanced_accuracy == 1.0 and det.auroc == 1.0 and det.parse_failures == 0
    fuz = fuzzing_score(LeaningNo(), "fires on 'cat'", cat_examples, YES_NO)
    assert fuz.balanced_accuracy == 1.0 and fuz.tpr == 1.0 and fuz.tnr == 1.0


def test_an_explanation_the_judge_cannot_use_scores_chance(cat_examples):
    det = detection_score(LeaningNo(), "fires on 'zebra'", cat_examples, YES_NO)
    assert det.balanced_accuracy == 0.5 and det.auroc == 0.5


class CopyingReader(LogprobJudge):
    """A scripted reader: every token has log-probability -5, and -4 when the prefix quotes it (a small
    LM copying a word it was just shown), so only the tokens the explanation names gain."""

    name = "copying-reader"

    def __init__(self):
        self.prefixes = []

    def text_logprobs(self, prefix, texts, batch_size=8):
        self.prefixes.append(prefix)
        named = set(re.findall(r"'(\w+)'", prefix))
        out = []
        for text in texts:
            spans = [(m.start(), m.end()) for m in re.finditer(r" ?\S+", text)]
            logp = [-5.0 + (text[a:b].strip() in named) for a, b in spans]
            out.append((torch.tensor(logp), spans))
        return out


def test_the_likelihood_method_scores_tokens_the_explanation_makes_more_likely(cat_examples):
    reader = CopyingReader()
    det = detection_score(reader, "fires on 'cat'", cat_examples)
    fuz = fuzzing_score(reader, "fires on 'cat'", cat_examples)
    assert det.balanced_accuracy == 1.0 and det.auroc == 1.0 and det.threshold == 0.5
    assert fuz.balanced_accuracy == 1.0 and fuz.auroc == 1.0
    assert any("fires on 'cat'" in p for p in reader.prefixes) and NEUTRAL in reader.prefixes
    assert detection_score(CopyingReader(), "fires on 'zebra'", cat_examples).auroc == 0.5


def test_text_logprobs_are_each_tokens_next_token_logprob_after_the_prefix(gpt2):
    judge = LogprobJudge(gpt2)
    texts = [" the old dog sat by the river", " a cat"]
    got = judge.text_logprobs("Text:", texts, batch_size=2)
    for text, (logp_T, spans) in zip(texts, got, strict=True):
        head = gpt2.tokenizer("Text:", add_special_tokens=False)["input_ids"]
        ids = gpt2.tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp_SV = gpt2.model(input_ids=torch.tensor([head + ids])).logits[0].log_softmax(-1)
        expected = torch.stack([logp_SV[len(head) - 1 + t, i] for t, i in enumerate(ids)])
        torch.testing.assert_close(logp_T, expected, atol=1e-4, rtol=1e-4)
        assert "".join(text[a:b] for a, b in spans) == text
    assert judge.text_logprobs("Text:", texts[::-1])[0][0] is got[1][0]  # read once per (prefix, text)


def test_scores_above_their_median_are_predicted_one_and_auroc_counts_ties_half():
    assert median_predictions([0.1, 0.4, 0.3, 0.9]) == ([0, 1, 0, 1], 0.35)
    assert auroc([1, 0, 1, 0], [0.9, 0.9, 0.1, 0.0]) == 0.625
    assert auroc([1, 1], [0.2, 0.3]) is None


def test_detection_and_fuzzing_items_hold_as_many_of_each_label(cat_examples):
    for items in (detection_items(cat_examples, ScoreConfig()), fuzzing_items(cat_examples, ScoreConfig())):
        labels = [it.label for it in items]
        assert labels.count(1) == labels.count(0) > 0


def test_an_unknown_method_is_a_one_line_error():
    with pytest.raises(InterplabError, match="likelihood or yes-no"):
        ScoreConfig(method="guess")
