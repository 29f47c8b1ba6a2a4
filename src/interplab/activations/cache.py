"""Cache a model's activations at one hook point into an `ActivationStore`, resumably and deterministically.

  1. Tokenize and pack the texts once (`tokenize_and_pack`): [n_seq, ctx] ids + mask.
  2. Resolve the exclusion rule (attention sinks, special tokens; exclusion.py) into the store header.
  3. Open the store writer; on --resume it keeps the verified shards of an earlier run.
  4. For each pending shard, run the model on its sequences in batches, stopping the forward pass right
     after the hooked layer (`run_to_capture`), and write the shard (checked, then atomically renamed).
     Writing happens in background threads, so the next shard's forward pass overlaps the disk I/O.
  5. Check who carries the variance of the tokens just cached (variance.py): a warning with numbers when
     a few kept tokens dominate it; the report goes into the manifest (`extra.variance_check`).
Shard i always covers sequences [i*S, (i+1)*S) and batches never straddle shards, so a resumed run computes
exactly the same batches as an uninterrupted one and produces byte-identical shards.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interplab.activations.exclusion import ExclusionRule
from interplab.activations.store import ActivationStore, StoreHeader, StoreWriter, storage_dtype
from interplab.activations.variance import VarianceCheck, log_report
from interplab.common import InterplabError, dtype_name, get_logger
from interplab.data.text import PackedTokens, tokenize_and_pack
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel

log = get_logger(__name__)

ProgressFn = Callable[[int, int], None]
"""progress(tokens_done, tokens_total), called after every forward batch."""


@dataclass
class CacheConfig:
    """How activations are cached."""

    context_size: int = 128
    """Tokens per sequence window."""
    batch_size: int = 32
    """Sequences per forward pass (keep it fixed across a resume: results are bit-identical only then)."""
    shard_tokens: int = 65_536
    """Token positions per shard (rounded down to whole sequences, at least one)."""
    dtype: str = "float32"
    """Stored activation dtype: float32, bfloat16 or float16."""
    max_tokens: int | None = None
    """Cache at most this many token positions (rounded up to whole sequences); None = all."""
    add_special: bool = True
    """Insert BOS/EOS between documents (causal) or wrap rows in [CLS] ... [SEP] (encoders)."""
    write_threads: int | None = None
    """Threads that check, hash (sha256) and write shards while the model runs on. None: 2 on CUDA (hashing
    runs at ~1-2 GB/s per thread, slower than a fast GPU makes activations), 1 on CPU (threads compete with
    torch for cores)."""
    overwrite: bool = False
    """Replace a complete or interrupted store already in the output folder."""
    resume: bool = False
    """Continue an interrupted run (or repair missing/corrupt shards of a complete one)."""
    exclude_sinks: bool | None = None
    """Leave attention sinks out of training, evaluation and dashboards (they stay on disk; see
    activations/exclusion.py); None: yes for causal LMs, no for encoders (their [CLS]/[SEP] are data)."""
    sink_positions: int = 1
    """Sinks: the first real tokens of every row (1: position 0, the attention sink)."""
    exclude_special_tokens: bool = True
    """Sinks: also the tokenizer's special tokens (BOS/EOS/pad) wherever they are, as SAELens and SAEBench."""
    max_norm_ratio: float | None = 10.0
    """Sinks: also tokens above this multiple of their shard's median norm (massive activations: ~100x);
    10 keeps every ordinary token (SmolLM2's largest are ~1.7x the median). None: no limit."""

    def seqs_per_shard(self) -> int:
        return max(1, self.shard_tokens // self.context_size)

    def exclusion_rule(self, tokenizer: Any, is_causal: bool) -> ExclusionRule:
        """The positions a store of this model leaves out (an empty rule when sinks are kept)."""
        if not (is_causal if self.exclude_sinks is None else self.exclude_sinks):
            return ExclusionRule()
        return ExclusionRule.for_tokenizer(tokenizer, self.sink_positions, self.exclude_special_tokens,
                                           self.max_norm_ratio)


def _fingerprint(packed: PackedTokens) -> str:
    digest = hashlib.sha256(packed.input_ids.to(torch.int64).numpy().tobytes())
    digest.update(packed.attention_mask.numpy().tobytes())
    return digest.hexdigest()


def _packed_for(loaded: LoadedModel, texts: Sequence[str], cfg: CacheConfig) -> PackedTokens:
    max_seq = None if cfg.max_tokens is None else max(1, -(-cfg.max_tokens // cfg.context_size))
    return tokenize_and_pack(
        loaded.tokenizer, texts, cfg.context_size, loaded.is_causal, cfg.add_special, max_seq=max_seq
    )


def _forward_shard(
    loaded: LoadedModel,
    hook: str,
    ids_SC: Tensor,
    mask_SC: Tensor,
    cfg: CacheConfig,
    on_batch: Callable[[int], None],
) -> Tensor:
    """Activations [S, ctx, d] (stored dtype, CPU) of one shard's sequences, batch by batch."""
    store_dtype = storage_dtype(cfg.dtype)
    pinned = loaded.device.type == "cuda"
    out = torch.empty((*ids_SC.shape, loaded.d_model), dtype=store_dtype, pin_memory=pinned)
    for start in range(0, len(ids_SC), cfg.batch_size):
        stop = min(start + cfg.batch_size, len(ids_SC))
        batch = {
            "input_ids": ids_SC[start:stop].to(loaded.device, non_blocking=True),
            "attention_mask": mask_SC[start:stop].to(loaded.device, dtype=torch.long, non_blocking=True),
        }
        acts_BCD = run_to_capture(loaded.model, batch, hook)[hook]
        if acts_BCD.shape[-1] != loaded.d_model:
            raise InterplabError(
                f"hook {hook} gives width {acts_BCD.shape[-1]}, not the model's d={loaded.d_model}; pick a residual, "
                "attn_out or mlp_out hook"
            )
        out[start:stop].copy_(acts_BCD.to(store_dtype), non_blocking=pinned)
        on_batch(int(mask_SC[start:stop].sum()))
    if pinned:
        torch.cuda.synchronize(loaded.device)
    return out


def cache_activations(
    loaded: LoadedModel,
    texts: Sequence[str],
    hook: str,
    out_dir: str | Path,
    cfg: CacheConfig | None = None,
    progress: ProgressFn | None = None,
    dataset: str = "",
) -> ActivationStore:
    """Cache `hook` activations of `loaded` over `texts` into `out_dir`; return the finished store."""
    cfg = cfg or CacheConfig()
    write_threads = cfg.write_threads or (2 if loaded.device.type == "cuda" else 1)
    if write_threads < 1 or cfg.batch_size < 1:
        raise InterplabError("write_threads and batch_size must be at least 1")
    stored = storage_dtype(cfg.dtype)  # fail on a bad dtype name before any work
    packed = _packed_for(loaded, texts, cfg)
    header = StoreHeader(
        model=loaded.name,
        hook=hook,
        d=loaded.d_model,
        dtype=dtype_name(stored),
        context_size=cfg.context_size,
        n_seq=len(packed.input_ids),
        seqs_per_shard=cfg.seqs_per_shard(),
        tokens_sha256=_fingerprint(packed),
        dataset=dataset,
        tokenizer=getattr(loaded.tokenizer, "name_or_path", ""),
        is_causal=loaded.is_causal,
        batch_size=cfg.batch_size,
        exclusion=cfg.exclusion_rule(loaded.tokenizer, loaded.is_causal),
    )
    writer = StoreWriter.start(out_dir, header, overwrite=cfg.overwrite, resume=cfg.resume)
    total = int(packed.attention_mask.sum())
    done = sum(info.n_tokens for info in writer.done.values())

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(done, total)
    # Writer threads: checking, hashing and writing shard i overlaps the forward passes of the next shards.
    # At most `write_threads` shards wait in memory; .result() re-raises a write error (NaN, disk full) here.
    check = VarianceCheck()
    with ThreadPoolExecutor(max_workers=write_threads) as pool:
        in_flight: deque[Future] = deque()
        for index in writer.pending_shards():
            start, stop = header.shard_range(index)
            ids_SC, mask_SC = packed.input_ids[start:stop], packed.attention_mask[start:stop]
            acts_SCD = _forward_shard(loaded, hook, ids_SC, mask_SC, cfg, on_batch)
            if check.n < check.sample_tokens:
                check.add(acts_SCD, mask_SC, header.exclusion.keep_mask(ids_SC, mask_SC, acts_SCD))
            while len(in_flight) >= write_threads:
                in_flight.popleft().result()
            in_flight.append(pool.submit(writer.write_shard, index, ids_SC, acts_SCD, mask_SC))
        for future in in_flight:
            future.result()
    extra: dict[str, Any] = {"cache_config": asdict(cfg)}
    report = check.report()
    if report is not None:
        log_report(report, header.exclusion, hook)
        extra["variance_check"] = report.to_json()
    store = writer.finish(extra=extra)
    log.info("cached %d tokens of %s into %s (%d shards; %d excluded: %s)", store.n_tokens, hook, out_dir,
             store.n_shards, store.n_excluded, header.exclusion.describe())
    return store
