"""Cache one hook's activations of a model over a corpus into an on-disk store (resumable).

Every check that can fail on user input runs before anything is written: the output folder (a
complete store needs --overwrite, a partial one --resume), the corpus, the model, and the hook name
on the loaded model. A mistyped hook therefore leaves no folder behind to block the corrected rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interplab.activations.cache import CacheConfig, cache_activations
from interplab.activations.store import ActivationStore, StoreWriter
from interplab.data.text import load_texts
from interplab.models.hookpoints import resolve_hook
from interplab.models.loading import LoadedModel, load_model
from interplab.pipelines.progress import progress_bar


@dataclass
class TextSource:
    """Where the text comes from."""

    data: str | None = None
    """.txt/.jsonl/.parquet file, folder, saved HF dataset, packaged corpus name (wiki-en, ...) or hub
    dataset; None: the embedded demo corpus."""
    text_field: str = "text"
    """Field/column holding the text in .jsonl/.parquet/datasets."""
    split: str = "train"
    """Dataset split for HF datasets."""

    def load(self) -> list[str]:
        return load_texts(self.data, text_field=self.text_field, split=self.split)

    @property
    def name(self) -> str:
        return self.data or "interplab demo corpus"


def cache_run(
    model: str | LoadedModel,
    hook: str,
    out: str | Path,
    texts: TextSource | list[str] | None = None,
    cfg: CacheConfig | None = None,
    device: str | None = None,
    model_dtype: str | None = None,
    trust_remote_code: bool = False,
    show_progress: bool = True,
) -> ActivationStore:
    """Load `model` (or use a loaded one), cache `hook` over `texts` into `out`, return the store."""
    cfg = cfg or CacheConfig()
    out = Path(out)
    StoreWriter.preflight(out, overwrite=cfg.overwrite, resume=cfg.resume)  # fail before loading the model
    source = texts if isinstance(texts, TextSource) else None
    docs = (source or TextSource()).load() if not isinstance(texts, list) else texts
    dataset = source.name if source is not None else ("interplab demo corpus" if texts is None else "texts")
    lm = model if isinstance(model, LoadedModel) else load_model(
        model, device=device, dtype=model_dtype, trust_remote_code=trust_remote_code)
    resolve_hook(lm.model, hook)  # a mistyped hook fails here, before the store folder exists
    with progress_bar(f"caching {hook}", show=show_progress) as update:
        return cache_activations(lm, docs, hook, out, cfg, progress=lambda done, total: update(done, total, None),
                                 dataset=dataset)


def mean_norm(store: ActivationStore) -> float:
    """Mean L2 norm of the activations the store keeps (sinks and padding left out)."""
    total, n = 0.0, 0
    for shard in store.iter_shards():
        norms = shard.acts[shard.keep].float().norm(dim=-1)
        total, n = total + float(norms.sum()), n + len(norms)
    return total / max(n, 1)
