"""Checkpoint pieces: optimizer and RNG round trips through safetensors + JSON, atomic folders, pruning."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from interplab.common import InterplabError
from interplab.training.checkpoint import (
    Checkpointer,
    load_optimizer_state_flat,
    optimizer_state_flat,
    rng_state,
    set_rng_state,
)


def _adam_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, seed: int, n: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        model(torch.randn(8, 4, generator=gen)).pow(2).sum().backward()
        opt.step()


def test_adam_restored_from_flat_state_continues_identically(tmp_path):
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, betas=(0.8, 0.95))
    _adam_steps(a, opt_a, seed=1, n=3)
    tensors, meta = optimizer_state_flat(opt_a)
    ck = Checkpointer(tmp_path, every=1)
    ck.save(3, {**tensors, **{f"m.{k}": v for k, v in a.state_dict().items()}}, {"optimizer": meta})
    loaded_t, loaded_meta = Checkpointer.load(ck.latest())

    b = torch.nn.Linear(4, 3)
    b.load_state_dict({k[2:]: v for k, v in loaded_t.items() if k.startswith("m.")})
    opt_b = torch.optim.Adam(b.parameters(), lr=123.0)
    load_optimizer_state_flat(opt_b, loaded_t, loaded_meta["optimizer"])
    assert opt_b.param_groups[0]["betas"] == (0.8, 0.95) and opt_b.param_groups[0]["lr"] == 1e-2
    _adam_steps(a, opt_a, seed=2, n=2)
    _adam_steps(b, opt_b, seed=2, n=2)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_rng_states_round_trip():
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    tensors, meta = rng_state()
    first = (torch.rand(3), random.random(), np.random.rand())
    torch.rand(10), random.random(), np.random.rand(7)  # move every generator on
    set_rng_state(tensors, meta)
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]


def test_half_written_folder_is_ignored_and_old_checkpoints_are_pruned(tmp_path):
    ck = Checkpointer(tmp_path, every=2, keep=2)
    for step in (2, 4, 6):
        ck.save(step, {"x": torch.full((2,), float(step))}, {"step": step})
    (tmp_path / ".tmp-step_00000008").mkdir()  # what a kill during a write leaves behind
    (tmp_path / "step_00000010").mkdir()  # a folder without state.json is not complete either
    assert [p.name for p in ck.checkpoints()] == ["step_00000004", "step_00000006"]
    tensors, meta = Checkpointer.load(ck.latest())
    assert meta["step"] == 6 and torch.equal(tensors["x"], torch.full((2,), 6.0))
    assert ck.should_save(4) and not ck.should_save(5) and not ck.should_save(0)


def test_damaged_newest_checkpoint_is_skipped_for_the_one_before(tmp_path):
    ck = Checkpointer(tmp_path, every=2, keep=2)
    for step in (2, 4):
        ck.save(step, {"x": torch.full((64,), float(step))}, {"step": step})
    newest = ck.latest() / "tensors.safetensors"
    data = bytearray(newest.read_bytes())
    data[-3] ^= 0xFF  # inside the tensor data: the file still parses, only the checksum tells
    newest.write_bytes(bytes(data))
    with pytest.raises(InterplabError, match="does not match its sha256"):
        Checkpointer.load(ck.latest())
    path, tensors, meta = ck.latest_valid()
    assert path.name == "step_00000002" and meta["step"] == 2 and torch.equal(tensors["x"], torch.full((64,), 2.0))


def test_state_json_missing_keys_or_invalid_is_a_one_line_error(tmp_path):
    ck = Checkpointer(tmp_path, every=1)
    path = ck.save(1, {"x": torch.zeros(2)}, {"step": 1})
    with pytest.raises(InterplabError, match=r"lacks \['tokens'\]"):
        Checkpointer.load(path, required=("step", "tokens"))
    (path / "state.json").write_text("{oops")
    with pytest.raises(InterplabError, match="not valid JSON"):
        Checkpointer.load(path)
    assert ck.latest_valid() is None
