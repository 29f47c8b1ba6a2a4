"""Add coef * vector at a hook while the model runs, including inside `model.generate` with a KV cache.

Positions are *absolute* token indices of the sequence (prompt tokens first, generated ones after), so
`positions=[-1]` steers the last prompt token once, not every newly generated token:
1. A pre-hook on the model reads where each forward call starts: `cache_position[0]` when the caller
   passes it, else the length of the KV cache passed in (`past_key_values`, or `cache` since
   transformers 5.24), else 0 (a plain forward).
2. A call that starts at 0 (a plain forward pass, or the prompt step of cached generation) fixes the
   length negative positions count from, so -1 is the last prompt token in every later cached step
   (batched prompts are left-padded for generation, so it is every row's last prompt token). Without a
   KV cache every generation step starts at 0; `generate`/`generate_steered` therefore turn negative
   positions into absolute ones from the prompt length before generating.
3. The hook at `hook` adds coef * vector.step_D() (coefficients are in units of the hook's median
   activation norm: units.py) to the rows of this call whose absolute index is selected.
With `positions=None` every position is steered, generated tokens included (ActAdd/CAA-style).
Hooks are removed in `finally`, also when generation raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from interplab.common import InterplabError
from interplab.models.interventions import replace_activation
from interplab.models.loading import LoadedModel
from interplab.steering.vectors import SteeringVector


@dataclass
class GenerationSettings:
    """How steered text is generated."""

    max_new_tokens: int = 24
    """Tokens generated per prompt."""
    do_sample: bool = False
    """Greedy by default: a sweep then compares coefficients on the same decoding rule, not on noise."""
    temperature: float = 1.0
    """Sampling temperature (only with do_sample)."""
    top_p: float = 1.0
    """Nucleus sampling mass (only with do_sample)."""
    seed: int = 0
    """Seed for sampling."""
    batch_size: int = 8
    """Prompts generated together."""


@dataclass
class _Cursor:
    """Where the current forward call starts in the sequence, and the prompt length."""

    start: int = 0
    prompt_len: int = 0


def _call_start(kwargs: dict[str, Any]) -> int:
    """Absolute index of this call's first token: `cache_position`, else the KV cache's length, else 0.

    The cache is found by what it is (an object with `get_seq_length`), not by its keyword: transformers
    renamed `past_key_values` to `cache` and stopped passing `cache_position` in 5.24, and a name-based
    lookup then read every decoding step as a fresh forward pass starting at 0.
    """
    cache_position = kwargs.get("cache_position")
    if isinstance(cache_position, Tensor) and cache_position.numel() > 0:
        return int(cache_position.reshape(-1)[0])
    for value in kwargs.values():
        if hasattr(value, "get_seq_length"):
            return int(value.get_seq_length())
    return 0


def _selected(positions: Sequence[int], cursor: _Cursor, length: int) -> list[int]:
    """Indices within this call (0..length-1) whose absolute position is selected."""
    absolute = {p if p >= 0 else cursor.prompt_len + p for p in positions}
    return [i for i in range(length) if cursor.start + i in absolute]


@contextmanager
def steer(
    model: nn.Module,
    vector: SteeringVector,
    coef: float = 1.0,
    positions: Sequence[int] | None = None,
) -> Iterator[None]:
    """Within the block, add `coef * vector.step_D()` at `vector.hook` for all or the given absolute positions."""
    cursor = _Cursor()
    vector_D = vector.step_D().detach()

    def locate(module: nn.Module, args: tuple, kwargs: dict) -> None:
        cursor.start = _call_start(kwargs)
        if cursor.start == 0:
            ids = kwargs.get("input_ids", args[0] if args else None)
            embeds = kwargs.get("inputs_embeds")
            source = ids if isinstance(ids, Tensor) else embeds
            cursor.prompt_len = int(source.shape[1]) if isinstance(source, Tensor) else 0

    def add(x_BSD: Tensor) -> Tensor:
        if x_BSD.shape[-1] != vector_D.shape[-1]:
            raise InterplabError(
                f"steering vector has d={vector_D.shape[-1]} but {vector.hook} has d={x_BSD.shape[-1]}; "
                "build the vector at this model's hook"
            )
        delta_D = (coef * vector_D).to(device=x_BSD.device, dtype=x_BSD.dtype)
        if positions is None:
            return x_BSD + delta_D
        rows = _selected(positions, cursor, x_BSD.shape[1])
        if not rows:
            return x_BSD
        x_BSD = x_BSD.clone()
        x_BSD[:, rows] += delta_D
        return x_BSD

    handle = model.register_forward_pre_hook(locate, with_kwargs=True)
    try:
        with replace_activation(model, vector.hook, add):
            yield
    finally:
        handle.remove()


def _check_causal(lm: LoadedModel) -> None:
    if not lm.is_causal or not hasattr(lm.model, "generate"):
        raise InterplabError(
            f"{lm.name} is not a causal LM; steered generation needs a decoder model (gpt2, llama, ...)"
        )


@dataclass
class Generation:
    """One prompt's steered completion, as token ids (for exact perplexity) and text."""

    prompt_ids: list[int]
    """The prompt's tokens (no padding)."""
    new_ids: list[int]
    """Generated tokens, cut at the first end-of-sequence token."""
    text: str
    """The decoded completion."""


def generate_steered(
    lm: LoadedModel,
    prompts: Sequence[str],
    vector: SteeringVector | None,
    coef: float = 0.0,
    positions: Sequence[int] | None = None,
    settings: GenerationSettings | None = None,
) -> list[str]:
    """Completions (new text only) of each prompt with coef (in hook-norm units) * the vector added;
    `vector=None` is unsteered."""
    return [g.text for g in generate(lm, prompts, vector, coef, positions, settings)]


def generate(
    lm: LoadedModel,
    prompts: Sequence[str],
    vector: SteeringVector | None,
    coef: float = 0.0,
    positions: Sequence[int] | None = None,
    settings: GenerationSettings | None = None,
) -> list[Generation]:
    """Like `generate_steered`, keeping the token ids of prompt and completion."""
    from interplab.steering.units import calibrate

    settings = settings or GenerationSettings()
    _check_causal(lm)
    if not prompts:
        raise InterplabError("no prompts to generate from; pass at least one prompt")
    if vector is not None and coef != 0.0:
        vector = calibrate(vector, lm)
    out: list[Generation] = []
    for start in range(0, len(prompts), settings.batch_size):
        chunk = list(prompts[start : start + settings.batch_size])
        out += _generate_batch(lm, chunk, vector, coef, positions, settings)
    return out


def _generate_batch(
    lm: LoadedModel,
    prompts: list[str],
    vector: SteeringVector | None,
    coef: float,
    positions: Sequence[int] | None,
    settings: GenerationSettings,
) -> list[Generation]:
    side = lm.tokenizer.padding_side
    lm.tokenizer.padding_side = "left"  # generation appends on the right, so prompts must end together
    try:
        batch = lm.tokenize(prompts)
    finally:
        lm.tokenizer.padding_side = side
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.do_sample,
        "pad_token_id": lm.tokenizer.pad_token_id,
    }
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        torch.manual_seed(settings.seed)
    if positions is not None:  # absolute from the prompt length: right with or without a KV cache
        n_prompt = int(batch["input_ids"].shape[1])
        positions = [p if p >= 0 else n_prompt + p for p in positions]
    model: Any = lm.model  # a PreTrainedModel; nn.Module's typing does not know `generate`
    with torch.no_grad():
        if vector is None or coef == 0.0:
            ids_BT = model.generate(**batch, **kwargs)
        else:
            with steer(model, vector, coef, positions):
                ids_BT = model.generate(**batch, **kwargs)
    return [_split(lm, batch, ids_BT, b) for b in range(len(prompts))]


def _split(lm: LoadedModel, batch: dict[str, Tensor], ids_BT: Tensor, b: int) -> Generation:
    """Row b of a generate output as unpadded prompt ids + completion ids cut at EOS."""
    n_prompt = batch["input_ids"].shape[1]
    prompt_ids = batch["input_ids"][b][batch["attention_mask"][b].bool()].tolist()
    new_ids = ids_BT[b, n_prompt:].tolist()
    eos = lm.tokenizer.eos_token_id
    if eos is not None and eos in new_ids:
        new_ids = new_ids[: new_ids.index(eos)]
    return Generation(prompt_ids, new_ids, str(lm.tokenizer.decode(new_ids, skip_special_tokens=True)))
