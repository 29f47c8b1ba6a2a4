import pytest
import torch

from interplab.common import InterplabError
from interplab.models import capture, replace_activation
from interplab.steering.apply import GenerationSettings, generate_steered, steer
from interplab.steering.vectors import SteeringVector

HOOK = "blocks.0.resid_post"


def _vector(d, scale=8.0):
    """A random vector whose hook norm is its own norm: coefficient c then adds exactly c * vector."""
    gen = torch.Generator().manual_seed(0)
    vector_D = scale * torch.randn(d, generator=gen)
    return SteeringVector(vector_D, HOOK, hook_norm=float(vector_D.norm()))


def _load(family, tiny_model_dir):
    from interplab.models import load_model

    return load_model(tiny_model_dir(family))


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _logits(lm, batch):
    with torch.no_grad():
        return lm.model(**batch).logits


def test_coefficient_zero_leaves_logits_unchanged(gpt2):
    batch = gpt2.tokenize(["The cat sat on the mat"])
    with steer(gpt2.model, _vector(gpt2.d_model), coef=0.0):
        steered = _logits(gpt2, batch)
    torch.testing.assert_close(steered, _logits(gpt2, batch))


def test_steering_adds_coef_times_vector_at_the_hook(gpt2):
    batch = gpt2.tokenize(["The cat sat on the mat"])
    vec = _vector(gpt2.d_model)
    with capture(gpt2.model, HOOK) as clean:
        gpt2.model(**batch)
    with steer(gpt2.model, vec, coef=2.0), capture(gpt2.model, HOOK) as steered:
        gpt2.model(**batch)
    diff = steered[HOOK] - clean[HOOK]
    torch.testing.assert_close(diff[0], (2.0 * vec.vector_D).expand_as(diff[0]))


def test_position_steering_changes_only_the_chosen_positions(gpt2):
    batch = gpt2.tokenize(["one two three four five six"])
    n = batch["input_ids"].shape[1]
    vec = _vector(gpt2.d_model)
    clean = _logits(gpt2, batch)
    with capture(gpt2.model, HOOK) as before:
        gpt2.model(**batch)
    with steer(gpt2.model, vec, coef=3.0, positions=[2, -1]), capture(gpt2.model, HOOK) as after:
        steered = _logits(gpt2, batch)
    changed = (after[HOOK] - before[HOOK]).abs().amax(-1)[0] > 1e-6
    assert changed.tolist() == [i in (2, n - 1) for i in range(n)]
    # causal: logits before the first steered position are untouched, from it on they move
    torch.testing.assert_close(steered[0, :2], clean[0, :2])
    assert not torch.allclose(steered[0, 2], clean[0, 2])


def test_steering_during_generate_changes_text_and_removes_hooks(gpt2):
    settings = GenerationSettings(max_new_tokens=8)
    prompts = ["The cat sat", "Paris is the capital"]
    plain = generate_steered(gpt2, prompts, None, settings=settings)
    steered = generate_steered(gpt2, prompts, _vector(gpt2.d_model, 20.0), coef=1.0, settings=settings)
    assert steered != plain
    assert _hooks(gpt2.model) == 0


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_prompt_position_steering_with_kv_cache_matches_the_uncached_run(family, tiny_model_dir):
    """With a KV cache each step sees one new token: absolute positions must still select the prompt's."""
    lm = _load(family, tiny_model_dir)
    batch = lm.tokenize(["The cat sat on"])
    n = batch["input_ids"].shape[1]
    vec = _vector(lm.d_model, 20.0)
    runs = {}
    # cached: -1 counts from the prompt; uncached steps all start at 0, so pass the absolute index there
    for use_cache, positions in ((True, [1, -1]), (False, [1, n - 1])):
        with torch.no_grad(), steer(lm.model, vec, coef=1.0, positions=positions):
            runs[use_cache] = lm.model.generate(
                **batch, max_new_tokens=6, do_sample=False, use_cache=use_cache, pad_token_id=0
            )
    assert runs[True].tolist() == runs[False].tolist()
    with torch.no_grad():
        plain = lm.model.generate(**batch, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert plain.tolist() != runs[True].tolist()


def test_generate_steered_resolves_negative_positions_from_the_prompt(gpt2):
    settings = GenerationSettings(max_new_tokens=5)
    n = gpt2.tokenize(["The cat sat on"])["input_ids"].shape[1]
    vec = _vector(gpt2.d_model, 20.0)
    negative = generate_steered(gpt2, ["The cat sat on"], vec, 1.0, positions=[-1], settings=settings)
    absolute = generate_steered(gpt2, ["The cat sat on"], vec, 1.0, positions=[n - 1], settings=settings)
    assert negative == absolute


def test_hooks_are_removed_after_an_exception_inside_generation(gpt2):
    calls = []

    def fail_on_second_step(x):
        calls.append(x.shape[1])
        if len(calls) == 2:  # the first KV-cache step
            raise RuntimeError("stop")

    batch = gpt2.tokenize(["The cat sat"])
    with pytest.raises(RuntimeError, match="stop"):
        with steer(gpt2.model, _vector(gpt2.d_model), coef=1.0):
            with replace_activation(gpt2.model, "blocks.1.resid_post", fail_on_second_step):
                gpt2.model.generate(**batch, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert calls[1] == 1 and _hooks(gpt2.model) == 0


def test_a_vector_of_the_wrong_width_is_a_one_line_error(gpt2):
    with pytest.raises(InterplabError, match="d=3"):
        with steer(gpt2.model, SteeringVector(torch.ones(3), HOOK, hook_norm=1.0), coef=1.0):
            gpt2.model(**gpt2.tokenize(["hi"]))
    assert _hooks(gpt2.model) == 0
