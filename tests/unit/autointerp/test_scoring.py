import math

from interplab.autointerp.clients import OpenAICompatibleClient
from interplab.autointerp.score import balanced_accuracy, detection_score, fuzzing_score
from interplab.autointerp.serve import serve_client


class AlwaysYes:
    name = "always-yes"

    def complete(self, messages, max_tokens=None):
        n = messages[-1]["content"].count("\nExample ")
        return str([1] * n)


class Rambler:
    name = "rambler"

    def complete(self, messages, max_tokens=None):
        return "I am not sure what you mean."


def test_balanced_accuracy_is_the_mean_of_the_two_class_rates():
    assert balanced_accuracy([1, 1, 0, 0], [1, 0, 0, 0]) == (0.75, 0.5, 1.0)
    assert math.isnan(balanced_accuracy([1, 1], [1, 1])[0])


def test_a_perfect_judge_behind_a_real_server_scores_one(cat_examples, judge):
    with serve_client(judge) as server:
        client = OpenAICompatibleClient(server.url)
        det = detection_score(client, "the word cat", cat_examples)
        fuz = fuzzing_score(client, "the word cat", cat_examples)
    assert det.balanced_accuracy == 1.0 and det.n == 20 and det.parse_failures == 0
    assert fuz.balanced_accuracy == 1.0 and fuz.tpr == 1.0 and fuz.tnr == 1.0
    assert judge.calls >= 5


def test_a_judge_that_always_says_yes_is_at_chance(cat_examples):
    det = detection_score(AlwaysYes(), "anything", cat_examples)
    assert det.balanced_accuracy == 0.5 and det.tpr == 1.0 and det.tnr == 0.0


def test_unreadable_replies_count_as_failures_and_predict_no(cat_examples):
    det = detection_score(Rambler(), "anything", cat_examples)
    assert det.parse_failures == math.ceil(20 / 5) and det.tpr == 0.0 and det.balanced_accuracy == 0.5
