import re

import pytest

from interplab.autointerp.examples import Example, LatentExamples
from interplab.models import load_model

_EXAMPLE = re.compile(r"^Example \d+: (.*)$", re.MULTILINE)


class KeywordJudge:
    """A scripted, perfect judge for a latent that fires on ' cat': answers from the prompt text alone.

    Detection prompts: 1 for excerpts containing 'cat'. Fuzzing prompts: 1 when every marked token is
    'cat'. Explain prompts: 'Explanation: the word cat'. It sits behind a real HTTP server in the tests.
    """

    name = "scripted-keyword-judge"

    def __init__(self):
        self.calls = 0

    def complete(self, messages, max_tokens=None):
        self.calls += 1
        system, user = messages[0]["content"], messages[-1]["content"]
        if "Explanation:" not in user.split("\n")[0]:
            return "They all mention cats.\nExplanation: the word cat"
        lines = _EXAMPLE.findall(user)
        if "marked like" in system and "whether the marked tokens" in system:
            answers = [int(all(m == "cat" for m in re.findall(r"<<(.*?)>>", line))) for line in lines]
        else:
            answers = [int("cat" in line) for line in lines]
        return str(answers)


def _window(words, fire_on="cat"):
    tokens = [(" " if i else "") + w for i, w in enumerate(words)]
    return Example(tokens=tokens, acts=[2.0 if w == fire_on else 0.0 for w in words])


@pytest.fixture
def cat_examples():
    """Synthetic examples of a latent that fires exactly on the token ' cat'."""
    active = [
        _window(f"the {adj} cat sat on a warm mat today".split())
        for adj in (
            "black",
            "old",
            "small",
            "lazy",
            "tiny",
            "big",
            "grey",
            "shy",
            "wild",
            "calm",
            "fat",
            "odd",
        )
    ]
    silent = [
        _window(f"a {noun} stood near the river bank at dawn".split())
        for noun in ("dog", "man", "tree", "car", "horse", "house", "boat", "bird", "rock", "lamp")
    ]
    return LatentExamples(top=active[:6], quantile=active[6:], random=silent)


@pytest.fixture
def judge():
    return KeywordJudge()


@pytest.fixture(scope="package")
def gpt2_dir(tiny_model_dir):
    return tiny_model_dir("gpt2")


@pytest.fixture(scope="package")
def gpt2(gpt2_dir):
    return load_model(gpt2_dir)


@pytest.fixture
def cat_db(tmp_path, cat_examples):
    """A dashboards DB with latent 0 firing on ' cat' (top + quantile examples) and latent 1 elsewhere."""
    from interplab.dashboards.db import DashboardDB, ExampleRecord, FeatureRecord, SaeRecord

    db = DashboardDB(tmp_path / "dash.db")
    sae_id = db.upsert_sae(SaeRecord("s", "p", "m", "blocks.0.resid_post", 64, 32, "relu"))
    feats, exs = [], []
    for idx, group in ((0, cat_examples.top + cat_examples.quantile), (1, cat_examples.random)):
        feats.append(FeatureRecord(idx, 0.2 - 0.1 * idx, 2.0, 1.0, [0.0, 1.0], [1]))
        for rank, ex in enumerate(group):
            kind = "top" if rank < 6 else "quantile"
            acts = ex.acts if idx == 0 else [1.0] * len(ex.tokens)
            exs.append(ExampleRecord(idx, kind, rank, max(acts), ex.tokens, acts, list(range(len(acts))), 0))
    db.write_latents(sae_id, feats, exs)
    return db, sae_id
