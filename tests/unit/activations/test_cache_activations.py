"""cache_activations against the HF model's own hidden states, determinism, and the `interplab cache` CLI."""

from __future__ import annotations

import hashlib

import pytest
import torch
from transformers import AutoTokenizer
from typer.testing import CliRunner

from interplab.activations.cache import CacheConfig, cache_activations
from interplab.common import InterplabError
from interplab.data.corpus import load_demo_corpus

TEXTS = load_demo_corpus()[:60]


@pytest.fixture(scope="module")
def gpt2(tiny_model_dir):
    from interplab.models.loading import load_model

    return load_model(tiny_model_dir("gpt2"))


def shard_hashes(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("shard_*"))}


def test_causal_cache_matches_hf_hidden_states(gpt2, tmp_path):
    cfg = CacheConfig(context_size=32, batch_size=5, shard_tokens=32 * 7)
    store = cache_activations(gpt2, TEXTS, "blocks.0.resid_post", tmp_path / "s", cfg)
    tokens, mask = store.token_ids(), store.masks()
    with torch.no_grad():
        # hidden_states[1] is the output of block 0 (GPT-2 applies ln_f only to the last one).
        ref = gpt2.model(
            input_ids=tokens, attention_mask=mask.long(), output_hidden_states=True
        ).hidden_states[1]
    acts = torch.cat([s.acts for s in store.iter_shards()])
    torch.testing.assert_close(acts, ref, rtol=1e-5, atol=1e-5)
    assert store.n_shards == -(-len(tokens) // 7)
    assert store.manifest.header.model == gpt2.name and store.manifest.header.is_causal
    # causal default: the first position of every row and the EOS separators are left out (the tiny
    # random model has no massive activations, so the norm limit leaves out nothing)
    eos = gpt2.tokenizer.eos_token_id
    expected_keep = mask & (tokens != eos)
    expected_keep[:, 0] = False
    assert torch.equal(store.keep_masks(), expected_keep)
    assert store.n_tokens == int(expected_keep.sum()) and store.n_excluded == int(mask.sum() - expected_keep.sum())
    assert store.exclusion.describe() == "the first position of each sequence; special tokens <|endoftext|>; " \
        "tokens with norm above 10x the median"


def test_encoder_cache_matches_minilm_hidden_states_and_masks_padding(minilm, tmp_path):
    cfg = CacheConfig(context_size=24, batch_size=8, shard_tokens=24 * 10)
    store = cache_activations(minilm, TEXTS[:30], "blocks.2.resid_post", tmp_path / "s", cfg)
    tokens, mask = store.token_ids(), store.masks()
    assert (tokens[:, 0] == minilm.tokenizer.cls_token_id).all()
    assert (tokens[~mask] == minilm.tokenizer.pad_token_id).all()
    with torch.no_grad():
        out = minilm.model(input_ids=tokens, attention_mask=mask.long(), output_hidden_states=True)
    acts = torch.cat([s.acts for s in store.iter_shards()])
    torch.testing.assert_close(acts[mask], out.hidden_states[3][mask], rtol=1e-4, atol=1e-4)
    assert store.d == 384 and not store.manifest.header.is_causal


def test_same_input_gives_byte_identical_shards_with_any_writer_threads(gpt2, tmp_path):
    cfg = CacheConfig(context_size=16, batch_size=4, shard_tokens=16 * 6, max_tokens=16 * 20)
    a = cache_activations(gpt2, TEXTS, "blocks.1.mlp_out", tmp_path / "a", cfg)
    threaded = CacheConfig(**{**cfg.__dict__, "write_threads": 3})  # shards finish out of order
    b = cache_activations(gpt2, TEXTS, "blocks.1.mlp_out", tmp_path / "b", threaded)
    assert shard_hashes(a.folder) == shard_hashes(b.folder)
    assert a.manifest.header.n_seq == 20 and len(shard_hashes(a.folder)) == 4


def test_bfloat16_storage_and_resume_of_a_complete_store_is_a_no_op(gpt2, tmp_path):
    cfg = CacheConfig(context_size=16, batch_size=4, shard_tokens=64, max_tokens=64, dtype="bfloat16")
    store = cache_activations(gpt2, TEXTS, "embed", tmp_path / "s", cfg)
    assert next(store.iter_shards()).acts.dtype == torch.bfloat16
    before = shard_hashes(store.folder)
    again = cache_activations(
        gpt2, TEXTS, "embed", tmp_path / "s", CacheConfig(**{**cfg.__dict__, "resume": True})
    )
    assert shard_hashes(again.folder) == before


def test_resume_with_other_data_or_model_is_refused(gpt2, tmp_path):
    cfg = CacheConfig(context_size=16, batch_size=4, shard_tokens=64, max_tokens=64)
    cache_activations(gpt2, TEXTS, "blocks.0.resid_post", tmp_path / "s", cfg)
    resume = CacheConfig(**{**cfg.__dict__, "resume": True})
    with pytest.raises(InterplabError, match="tokens_sha256"):
        cache_activations(gpt2, TEXTS[5:], "blocks.0.resid_post", tmp_path / "s", resume)
    with pytest.raises(InterplabError, match="hook"):
        cache_activations(gpt2, TEXTS, "blocks.1.resid_post", tmp_path / "s", resume)
    with pytest.raises(InterplabError, match="unknown dtype|use one of"):
        cache_activations(gpt2, TEXTS, "blocks.0.resid_post", tmp_path / "t", CacheConfig(dtype="int8"))


def test_cli_caches_a_text_file_and_refuses_to_clobber(tiny_model_dir, tmp_path):
    from interplab.activations.store import ActivationStore
    from interplab.cli import app

    data = tmp_path / "docs.txt"
    data.write_text("\n".join(TEXTS[:20]))
    out = tmp_path / "store"
    args = [
        "cache",
        "--model",
        str(tiny_model_dir("gpt2")),
        "--hook",
        "blocks.1.resid_post",
        "--out",
        str(out),
        "--data",
        str(data),
        "--context-size",
        "32",
        "--shard-tokens",
        "128",
        "--batch-size",
        "4",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    store = ActivationStore.open(out)
    assert f"cached {store.n_tokens} tokens" in result.output and f"{store.n_shards} shards" in result.output
    mean_norm = store.valid_activations().norm(dim=-1).mean()
    assert f"mean norm={float(mean_norm):.4g}" in result.output
    before = shard_hashes(out)
    again = CliRunner().invoke(app, args)
    assert isinstance(again.exception, InterplabError) and "--overwrite" in str(again.exception)
    assert shard_hashes(out) == before


def test_cli_defaults_to_the_demo_corpus_and_resume_flag_is_accepted(tiny_model_dir, tmp_path):
    from interplab.activations.store import ActivationStore
    from interplab.cli import app

    out = tmp_path / "demo"
    args = [
        "cache",
        "--model",
        str(tiny_model_dir("gpt2")),
        "--hook",
        "blocks.0.resid_pre",
        "--out",
        str(out),
        "--context-size",
        "32",
        "--max-tokens",
        "256",
        "--dtype",
        "float16",
    ]
    assert CliRunner().invoke(app, args).exit_code == 0
    store = ActivationStore.open(out)
    assert store.manifest.header.dataset == "interplab demo corpus" and store.manifest.header.dtype == "float16"
    assert store.manifest.header.n_seq == 8
    first_doc = load_demo_corpus()[0]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir("gpt2"))
    assert tok.decode(store.token_ids()[0, 1:]).startswith(first_doc[:20])
    again = CliRunner().invoke(app, [*args, "--resume"])
    assert again.exit_code == 0, again.output
