"""`interplab cache`: run a model over text and store one hook's activations on disk (resumable).
Options come from `CacheConfig` and `TextSource`; the job is `interplab.pipelines.cache.cache_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from interplab.activations.cache import CacheConfig
from interplab.commands.options import command, dataclass_options, option, values_for
from interplab.pipelines.cache import TextSource


def register(app: typer.Typer) -> None:
    params = [
        option("model", ..., "HF hub id, local model folder, .gguf file or packaged name (minilm, smollm2-135m).",
               str, "Model"),
        option("hook", ..., "Hook point, e.g. blocks.3.resid_post (names: embed, blocks.L.resid_pre|resid_post|"
               "attn_out|mlp_out, ln_final, or any dotted module path).", str, "Model"),
        option("out", ..., "Store folder (created): shards + manifest.json.", Path, "Model"),
        option("model_dtype", None, "Dtype to run the model in (default float32).", str | None, "Model"),
        option("device", None, "cpu, cuda, ... (default: CUDA when present).", str | None, "Model"),
        option("trust_remote_code", False, "Run model code from the hub repo (only for repos you trust).", bool,
               "Model"),
        *dataclass_options(TextSource, "Data"),
        *dataclass_options(CacheConfig, "Caching"),
    ]
    app.command("cache")(command(params, _cache, "Cache activations of one hook over a text corpus into a "
                                 "resumable on-disk store.", "cache"))


def _cache(values: dict[str, Any]) -> None:
    from interplab.pipelines.cache import cache_run, mean_norm

    store = cache_run(values["model"], values["hook"], values["out"], values_for(TextSource, values),
                      values_for(CacheConfig, values), device=values["device"], model_dtype=values["model_dtype"],
                      trust_remote_code=values["trust_remote_code"])
    h = store.manifest.header
    typer.echo(
        f"cached {store.n_tokens} tokens ({h.n_seq} sequences x {h.context_size}) of {h.model} {h.hook} "
        f"in {store.n_shards} shards; d={h.d}, dtype={h.dtype}, mean norm={mean_norm(store):.4g} -> {values['out']}"
    )
    typer.echo(f"excluded {store.n_excluded} tokens: {store.exclusion.describe()}")
