import csv
import json

import pytest
import torch

from interplab.common import InterplabError
from interplab.steering.apply import GenerationSettings, generate
from interplab.steering.sweep import KeywordTarget, ProbeTarget, SweepConfig, perplexity, sweep, write_sweep
from interplab.steering.vectors import SteeringVector

HOOK = "blocks.0.resid_post"
PROMPTS = ["The cat sat", "Paris is the capital of"]


def _vector(d):
    return SteeringVector(6.0 * torch.randn(d, generator=torch.Generator().manual_seed(1)), HOOK)


def test_perplexity_equals_exp_of_the_mean_token_nll(gpt2):
    gens = generate(gpt2, PROMPTS[:1], None, settings=GenerationSettings(max_new_tokens=4))
    g = gens[0]
    ids = torch.tensor([g.prompt_ids + g.new_ids])
    with torch.no_grad():
        logp = torch.log_softmax(gpt2.model(input_ids=ids).logits[0], -1)
    n = len(g.prompt_ids)
    nll = -sum(float(logp[n - 1 + i, t]) for i, t in enumerate(g.new_ids)) / len(g.new_ids)
    assert perplexity(gpt2, gens) == pytest.approx(torch.tensor(nll).exp().item(), rel=1e-4)


def test_keyword_rate_counts_completions_with_any_keyword(gpt2):
    gens = generate(gpt2, PROMPTS, None, settings=GenerationSettings(max_new_tokens=2))
    gens[0].text, gens[1].text = "a Happy dog", "nothing"
    assert KeywordTarget(["happy", "joy"]).score(gpt2, gens) == 0.5


def test_sweep_writes_one_row_per_coefficient_with_csv_json_png_and_html(gpt2, tmp_path):
    vec = _vector(gpt2.d_model)
    cfg = SweepConfig(coefs=[-4.0, 0.0, 4.0], generation=GenerationSettings(max_new_tokens=6))
    target = ProbeTarget(HOOK, direction_D=vec.vector_D)
    seen = []
    rows, outputs = sweep(gpt2, vec, PROMPTS, target, cfg, progress=lambda i, n: seen.append((i, n)))
    index = write_sweep(tmp_path / "run", rows, outputs, PROMPTS, target.name, {"coefs": cfg.coefs})
    run = tmp_path / "run"
    with (run / "tables" / "sweep.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [float(r["coef"]) for r in table] == [-4.0, 0.0, 4.0]
    assert len(json.loads((run / "tables" / "sweep.json").read_text())) == 3
    assert (run / "figures" / "sweep.png").stat().st_size > 1000
    page = (run / "figures" / "sweep.html").read_text()
    assert "<svg" in page and "src=" not in page and "<link" not in page  # offline: nothing fetched
    assert len((run / "generations.jsonl").read_text().splitlines()) == 3 * len(PROMPTS)
    assert json.loads(index.read_text())["summary"]["n_coefs"] == 3
    assert seen[-1] == (3, 3)
    # projecting onto the vector itself: adding more of it raises the probe score
    assert rows[0].target < rows[1].target < rows[2].target


def test_sweep_refuses_to_overwrite_a_finished_run(gpt2, tmp_path):
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(InterplabError, match="overwrite"):
        write_sweep(tmp_path, [], {}, PROMPTS, "x", {})
    assert (tmp_path / "index.json").read_text() == "{}"


def test_a_probe_trained_on_pairs_scores_completions_between_zero_and_one(gpt2):
    from interplab.steering.sweep import probe_from_pairs
    from interplab.steering.vectors import ContrastPair

    pairs = [ContrastPair(f"happy joyful day {i}", f"sad gloomy night {i}") for i in range(4)]
    probe = probe_from_pairs(gpt2, pairs, HOOK)
    gens = generate(gpt2, PROMPTS, None, settings=GenerationSettings(max_new_tokens=4))
    score = ProbeTarget(HOOK, probe=probe).score(gpt2, gens)
    assert 0.0 <= score <= 1.0
