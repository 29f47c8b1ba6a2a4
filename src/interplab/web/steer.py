"""The steering playground: a prompt completed greedily without and with a steering vector, side by side.

1. The vector is an SAE latent's decoder row W_dec[latent] scaled to norm 1, added at the SAE's hook
   (`interplab.steering.vectors.from_sae_latent`), or a vector file (`save_vector` format) from the folder
   given to `interplab serve --vectors`. Files are picked by name from a listing of that folder, so a
   request can never name a path outside it.
2. The model is live inference's (web/live.py): loaded on the first request, shared, and used under the
   same lock, because steering registers hooks on it. A model whose config says it is not a causal LM is
   refused before any weights load (a 400 naming the fix): generation needs an LM head.
3. Coefficients are in units of the hook's median activation norm (`interplab.steering.units`), as in
   the CLI: a vector file carries the norm measured when it was built; for an SAE latent (or an older
   file) it is measured once per model and hook on the reference text and kept for the server's life.
4. `interplab.steering.apply.generate` (greedy) gives the unsteered completion and one steered completion
   per coefficient (coefficient 0 is the unsteered one; with steering, every position is steered,
   generated tokens included).
5. Each completion's perplexity under the unsteered model given the prompt (`steering.sweep.perplexity`,
   one forward pass each) tells coherent steering from gibberish.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from interplab.common import InterplabError, get_logger
from interplab.web.schemas import SteerGeneration, SteerRequest, SteerResponse, SteerVectorOut
from interplab.web.state import NotFound, WebState

if TYPE_CHECKING:  # torch and transformers load with the first steering request
    from interplab.models.loading import LoadedModel
    from interplab.steering.apply import Generation
    from interplab.steering.vectors import SteeringVector

log = get_logger(__name__)

VECTOR_DEPTH = 3  # folder levels searched under --vectors
_hook_norms: dict[tuple[str, str], float] = {}
"""(model, hook) -> median activation norm, measured once (a forward pass over the reference text)."""


class SteerInputError(InterplabError):
    """A request this server cannot run as asked (an encoder model, a too long prompt); becomes a 400."""


def not_causal_message(model: str) -> str:
    return (f"{model} is not a causal LM (an encoder without an LM head), and steering generates text: serve an "
            "SAE or vector built on a causal LM, e.g. `interplab serve --db ... --sae <SAE of gpt2> --model gpt2`")


def find_vectors(folder: Path | None) -> dict[str, Path]:
    """Vector name (path under `folder` without .safetensors) -> .safetensors file with its .json beside it.

    Files whose real path is outside the folder (a symlink leading out) are left out."""
    if folder is None or not folder.is_dir():
        return {}
    root = folder.resolve()
    found: dict[str, Path] = {}
    for depth in range(VECTOR_DEPTH):
        for path in sorted(root.glob("/".join(["*"] * depth + ["*.safetensors"]))):
            if path.with_suffix(".json").is_file() and path.resolve().is_relative_to(root):
                found[path.relative_to(root).with_suffix("").as_posix()] = path
    return found


def vector_infos(folder: Path | None) -> list[SteerVectorOut]:
    """The vector files of `folder` with hook, width and model from their metadata (unreadable ones skipped)."""
    out = []
    for name, path in find_vectors(folder).items():
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            out.append(SteerVectorOut(name=name, hook=str(meta["hook"]), d=int(meta["d"]),
                                      model=str(meta["model"]) if meta.get("model") else None))
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("skipping unreadable steering vector %s", path)
    return out


def _check_context(lm: LoadedModel, prompt: str, max_new_tokens: int) -> None:
    config = getattr(lm.model, "config", None)
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    n_prompt = len(lm.tokenizer(prompt)["input_ids"])
    if isinstance(limit, int) and n_prompt + max_new_tokens > limit:
        raise SteerInputError(f"the prompt ({n_prompt} tokens) plus {max_new_tokens} new tokens exceeds the "
                              f"context of {lm.name} ({limit} tokens); shorten the prompt or generate fewer tokens")


def _perplexity(lm: LoadedModel, gen: Generation) -> float | None:
    from interplab.steering.sweep import perplexity

    if not gen.new_ids or not gen.prompt_ids:
        return None
    try:
        value = perplexity(lm, [gen])
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def with_hook_norm(lm: LoadedModel, vector: SteeringVector) -> SteeringVector:
    """`vector` with the unit of its coefficients (measured and remembered if it has none); hold the live lock."""
    from dataclasses import replace

    from interplab.steering.units import hook_median_norm

    if vector.hook_norm is not None:
        return vector
    key = (lm.name, vector.hook)
    if key not in _hook_norms:
        try:
            _hook_norms[key] = hook_median_norm(lm, vector.hook)
        except InterplabError as exc:  # e.g. a hook this model does not have
            raise SteerInputError(str(exc)) from None
    return replace(vector, hook_norm=_hook_norms[key])


def generations(lm: LoadedModel, vector: SteeringVector, req: SteerRequest) -> list[SteerGeneration]:
    """The unsteered completion, then one per coefficient of the request; call it holding the live lock
    with `vector` from `with_hook_norm`."""
    from interplab.steering.apply import GenerationSettings, generate

    if not lm.is_causal:
        raise SteerInputError(not_causal_message(lm.name))
    _check_context(lm, req.prompt, req.max_new_tokens)
    settings = GenerationSettings(max_new_tokens=req.max_new_tokens)  # greedy: differences come from steering
    try:
        base = generate(lm, [req.prompt], None, 0.0, None, settings)[0]
        base_out = SteerGeneration(coef=0.0, text=base.text, n_new_tokens=len(base.new_ids),
                                   perplexity=_perplexity(lm, base))
        out = [base_out]
        for coef in req.all_coefs():
            if coef == 0.0:  # generate() skips the hook at 0: the same text, no second run
                out.append(base_out)
                continue
            gen = generate(lm, [req.prompt], vector, coef, None, settings)[0]
            out.append(SteerGeneration(coef=coef, text=gen.text, n_new_tokens=len(gen.new_ids),
                                       perplexity=_perplexity(lm, gen)))
    except InterplabError as exc:  # e.g. the vector's width does not match the model at its hook
        raise SteerInputError(str(exc)) from None
    return out


def _vector_run(state: WebState, req: SteerRequest) -> SteerResponse:
    from interplab.steering.vectors import load_vector

    assert req.vector is not None
    path = find_vectors(state.vectors_dir).get(req.vector)
    if path is None:
        where = ("this server has no vectors folder (start it with --vectors <dir>)" if state.vectors_dir is None
                 else f"it is not in the vectors folder {state.vectors_dir}")
        raise NotFound(f"no steering vector {req.vector!r}: {where}")
    vector = load_vector(path)
    model = state.live.model_override or vector.metadata.get("model")
    if not model:
        raise SteerInputError(f"vector {req.vector!r} names no model in its metadata; "
                              "start the server with --model <the model it was built on>")
    if state.live.is_causal(str(model)) is False:
        raise SteerInputError(not_causal_message(str(model)))
    with state.live.lock:
        lm = state.live.model(str(model))
        if not lm.is_causal:
            raise SteerInputError(not_causal_message(lm.name))
        vector = with_hook_norm(lm, vector)
        gens = generations(lm, vector, req)
    assert vector.hook_norm is not None
    return SteerResponse(sae_id=None, latent=None, vector=req.vector, model=str(model), hook=vector.hook,
                         vector_norm=vector.norm, hook_norm=vector.hook_norm, prompt=req.prompt,
                         max_new_tokens=req.max_new_tokens, unsteered=gens[0], steered=gens[1:])


def _latent_run(state: WebState, req: SteerRequest) -> SteerResponse:
    from interplab.steering.vectors import from_sae_latent

    assert req.sae_id is not None and req.latent is not None
    rec = state.sae(req.sae_id)
    if not 0 <= req.latent < rec.d_sae:
        raise NotFound(f"SAE {rec.name!r} has no latent {req.latent} (it has {rec.d_sae}: 0..{rec.d_sae - 1})")
    model = state.live.model_name(rec)
    if state.live.is_causal(model) is False:  # from the config: no weights loaded for a refusal
        raise SteerInputError(not_causal_message(model))
    with state.live.lock:
        lm, sae = state.live.load(rec)
        try:
            vector = from_sae_latent(sae, req.latent, hook=rec.hook, unit=True)
        except InterplabError as exc:
            raise SteerInputError(str(exc)) from None
        if not lm.is_causal:
            raise SteerInputError(not_causal_message(lm.name))
        vector = with_hook_norm(lm, vector)
        gens = generations(lm, vector, req)
    assert vector.hook_norm is not None
    return SteerResponse(sae_id=req.sae_id, latent=req.latent, vector=None, model=model, hook=rec.hook,
                         vector_norm=vector.norm, hook_norm=vector.hook_norm, prompt=req.prompt,
                         max_new_tokens=req.max_new_tokens, unsteered=gens[0], steered=gens[1:])


def run_steer(state: WebState, req: SteerRequest) -> SteerResponse:
    """Generate for a request. Raises NotFound (unknown SAE, latent or vector), SteerInputError (the request
    cannot run on this model) or InterplabError (the SAE, vector or model cannot be loaded)."""
    log.info("steering %s with coefficients %s", req.vector or f"SAE {req.sae_id} latent {req.latent}",
             req.all_coefs())
    return _vector_run(state, req) if req.vector is not None else _latent_run(state, req)
