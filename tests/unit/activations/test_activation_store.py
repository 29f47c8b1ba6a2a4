"""The on-disk store: round trip, atomic/refusing writes, checksums, resume bookkeeping."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from interplab.activations.exclusion import ExclusionRule
from interplab.activations.store import MANIFEST, PROGRESS, ActivationStore, StoreHeader, StoreWriter
from interplab.common import InterplabError

CTX, D, N_SEQ, PER_SHARD = 6, 5, 7, 3  # 3 shards: 3 + 3 + 1 sequences


def make_header(**changes) -> StoreHeader:
    fields = dict(
        model="toy",
        hook="blocks.0.resid_post",
        d=D,
        dtype="float32",
        context_size=CTX,
        n_seq=N_SEQ,
        seqs_per_shard=PER_SHARD,
        tokens_sha256="abc",
        dataset="unit test",
        tokenizer="toy",
    )
    return StoreHeader(**{**fields, **changes})


def make_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 100, (N_SEQ, CTX), generator=gen)
    acts = torch.randn(N_SEQ, CTX, D, generator=gen)
    mask = torch.ones(N_SEQ, CTX, dtype=torch.bool)
    mask[-1, 4:] = False  # padded tail, as the packer makes it
    return tokens, acts, mask


def write_shards(writer: StoreWriter, data, indices=None) -> None:
    tokens, acts, mask = data
    for i in writer.pending_shards() if indices is None else indices:
        a, b = writer.header.shard_range(i)
        writer.write_shard(i, tokens[a:b], acts[a:b], mask[a:b])


def build_store(folder: Path, **header_changes) -> tuple[ActivationStore, tuple]:
    data = make_data()
    writer = StoreWriter.start(folder, make_header(**header_changes))
    write_shards(writer, data)
    return writer.finish(), data


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_round_trip_returns_exactly_what_was_written(tmp_path):
    store, (tokens, acts, mask) = build_store(tmp_path / "s")
    assert sorted(p.name for p in store.folder.iterdir()) == [
        MANIFEST,
        "shard_00000.safetensors",
        "shard_00001.safetensors",
        "shard_00002.safetensors",
    ]
    assert torch.equal(torch.cat([s.acts for s in store.iter_shards()]), acts)
    assert torch.equal(store.token_ids(), tokens)
    assert torch.equal(store.masks(), mask)
    torch.testing.assert_close(store.valid_activations(), acts[mask], rtol=0, atol=0)
    assert store.n_tokens == int(mask.sum()) == N_SEQ * CTX - 2
    reopened = ActivationStore.open(store.folder)
    assert reopened.manifest.header.d == D and reopened.manifest.header.hook == "blocks.0.resid_post"
    manifest = json.loads((store.folder / MANIFEST).read_text())
    assert [s["n_seq"] for s in manifest["shards"]] == [3, 3, 1]
    assert manifest["interplab_version"] and manifest["n_tokens"] == store.n_tokens


def test_bfloat16_storage_keeps_the_dtype(tmp_path):
    store, (_, acts, _) = build_store(tmp_path / "s", dtype="bfloat16")
    stored = torch.cat([s.acts for s in store.iter_shards()])
    assert stored.dtype == torch.bfloat16
    assert torch.equal(stored, acts.to(torch.bfloat16))


def test_complete_store_is_not_overwritten_without_overwrite(tmp_path):
    store, _ = build_store(tmp_path / "s")
    (store.folder / "notes.txt").write_text("mine")
    before = file_hashes(store.folder)
    with pytest.raises(InterplabError, match="already holds a complete store.*--overwrite"):
        StoreWriter.start(store.folder, make_header())
    assert file_hashes(store.folder) == before
    writer = StoreWriter.start(store.folder, make_header(), overwrite=True)
    assert writer.pending_shards() == [0, 1, 2]
    assert (store.folder / "notes.txt").read_text() == "mine"  # overwrite only removes store files
    assert not (store.folder / MANIFEST).exists()


def test_wrong_width_is_refused_and_nothing_written_changes(tmp_path):
    folder = tmp_path / "s"
    tokens, acts, mask = make_data()
    writer = StoreWriter.start(folder, make_header())
    write_shards(writer, (tokens, acts, mask), indices=[0])
    before = file_hashes(folder)
    with pytest.raises(InterplabError, match=r"store has d=5") as err:
        writer.write_shard(1, tokens[3:6], torch.randn(3, CTX, D + 1), mask[3:6])
    assert "\n" not in str(err.value)
    assert file_hashes(folder) == before
    with pytest.raises(InterplabError, match="d=5 but this run gives d=8.*--overwrite"):
        StoreWriter.start(folder, make_header(d=8), resume=True)
    assert file_hashes(folder) == before


def test_nan_activations_name_the_sequence_and_leave_files_alone(tmp_path):
    folder = tmp_path / "s"
    tokens, acts, mask = make_data()
    writer = StoreWriter.start(folder, make_header())
    write_shards(writer, (tokens, acts, mask), indices=[0])
    before = file_hashes(folder)
    bad = acts[3:6].clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(InterplabError, match=r"NaN/Inf activations in sequence 4 \(shard_00001"):
        writer.write_shard(1, tokens[3:6], bad, mask[3:6])
    bad[1, 2, 0] = float("inf")
    with pytest.raises(InterplabError, match="sequence 4"):
        writer.write_shard(1, tokens[3:6], bad, mask[3:6])
    assert file_hashes(folder) == before
    assert not (folder / "shard_00001.safetensors").exists()


def test_corrupt_shard_is_named_on_read_and_recomputed_on_resume(tmp_path):
    store, data = build_store(tmp_path / "s")
    original = file_hashes(store.folder)
    path = store.folder / "shard_00001.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(
        InterplabError, match=r"shard .*shard_00001.safetensors is corrupt.*delete it and rerun with --resume"
    ):
        list(store.iter_shards())
    writer = StoreWriter.start(store.folder, make_header(), resume=True)
    assert writer.pending_shards() == [1]  # the good shards are kept, only the bad one is redone
    write_shards(writer, data)
    repaired = writer.finish()
    assert torch.equal(torch.cat([s.acts for s in repaired.iter_shards()]), data[1])
    assert file_hashes(store.folder) == original  # byte-identical to the first write


def test_interrupted_run_cannot_be_opened_and_needs_resume(tmp_path):
    folder = tmp_path / "s"
    data = make_data()
    writer = StoreWriter.start(folder, make_header())
    write_shards(writer, data, indices=[0, 1])
    assert (folder / PROGRESS).exists() and not (folder / MANIFEST).exists()
    with pytest.raises(InterplabError, match="unfinished store.*--resume"):
        ActivationStore.open(folder)
    with pytest.raises(InterplabError, match="interrupted run.*--resume"):
        StoreWriter.start(folder, make_header())
    with pytest.raises(InterplabError, match="differs from the stored one.*tokens_sha256"):
        StoreWriter.start(folder, make_header(tokens_sha256="other data"), resume=True)
    resumed = StoreWriter.start(folder, make_header(), resume=True)
    assert resumed.pending_shards() == [2]
    write_shards(resumed, data)
    assert torch.equal(resumed.finish().token_ids(), data[0])
    assert not (folder / PROGRESS).exists()


def test_shape_mismatch_on_read_and_missing_manifest_give_fixes(tmp_path):
    with pytest.raises(InterplabError, match="no manifest.json.*interplab cache"):
        ActivationStore.open(tmp_path)
    store, _ = build_store(tmp_path / "s")
    (store.folder / "shard_00002.safetensors").unlink()
    with pytest.raises(InterplabError, match="shard_00002.safetensors is missing.*--resume"):
        list(store.iter_shards())


SINK_RULE = ExclusionRule(first_positions=1, token_ids=(7,), token_names=("<s>",), max_norm_ratio=10.0)


def sink_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """make_data with a token-7 separator, a 100x sink at position 0 and one massive activation at (4, 3)."""
    tokens, acts, mask = make_data()
    tokens[:, 2] = 7
    acts[:, 0] *= 100.0
    acts[4, 3] *= 100.0
    return tokens, acts, mask


def expected_keep(tokens, acts, mask) -> torch.Tensor:
    keep = mask & (tokens != 7)
    keep[:, 0] = False
    keep[4, 3] = False
    return keep


def test_excluded_positions_are_stored_but_left_out_of_every_read(tmp_path):
    data = sink_data()
    writer = StoreWriter.start(tmp_path / "s", make_header(exclusion=SINK_RULE))
    write_shards(writer, data)
    store = writer.finish()
    tokens, acts, mask = data
    keep = expected_keep(*data)
    assert torch.equal(torch.cat([s.acts for s in store.iter_shards()]), acts)  # everything stored
    assert torch.equal(store.masks(), mask) and torch.equal(store.keep_masks(), keep)
    assert store.n_tokens == int(keep.sum()) and store.n_excluded == int(mask.sum() - keep.sum())
    torch.testing.assert_close(store.valid_activations(), acts[keep], rtol=0, atol=0)
    batches = list(store.batches(4, shuffle=False, drop_last=False))
    torch.testing.assert_close(torch.cat(batches), acts[keep], rtol=0, atol=0)
    manifest = json.loads((store.folder / MANIFEST).read_text())
    assert manifest["format_version"] == 2 and manifest["n_excluded"] == store.n_excluded
    assert manifest["exclusion"]["description"] == (
        "the first position of each sequence; special tokens <s>; tokens with norm above 10x the median")
    assert ActivationStore.open(store.folder).exclusion == SINK_RULE


def test_a_store_written_before_exclusion_rules_reads_every_real_token(tmp_path):
    store, (_, acts, mask) = build_store(tmp_path / "s")
    manifest = json.loads((store.folder / MANIFEST).read_text())
    for key in ("exclusion", "n_excluded"):  # what format 1 wrote
        del manifest[key]
    for shard in manifest["shards"]:
        del shard["n_excluded"]
    manifest["format_version"] = 1
    (store.folder / MANIFEST).write_text(json.dumps(manifest))
    old = ActivationStore.open(store.folder)
    assert old.exclusion.is_empty and old.n_excluded == 0 and old.n_tokens == int(mask.sum())
    torch.testing.assert_close(old.valid_activations(), acts[mask], rtol=0, atol=0)


def test_resume_refuses_another_exclusion_rule(tmp_path):
    folder = tmp_path / "s"
    writer = StoreWriter.start(folder, make_header(exclusion=SINK_RULE))
    write_shards(writer, sink_data(), indices=[0])
    with pytest.raises(InterplabError, match="differs from the stored one.*exclusion"):
        StoreWriter.start(folder, make_header(), resume=True)
    resumed = StoreWriter.start(folder, make_header(exclusion=SINK_RULE), resume=True)  # progress.json parsed back
    assert resumed.pending_shards() == [1, 2] and resumed.done[0].n_excluded == writer.done[0].n_excluded
