"""A cache run SIGKILLed mid-way and resumed ends byte-identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from interplab.activations.store import MANIFEST, PROGRESS, ActivationStore
from interplab.cli import app
from interplab.common import InterplabError

N_SHARDS = 60


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Single-threaded torch: on a loaded 2-core box tiny models are far faster without thread hand-offs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cache_args(model_dir, out) -> list[str]:
    # 1 sequence per shard so the kill lands between many small shards.
    return [
        "cache",
        "--model",
        str(model_dir),
        "--hook",
        "blocks.1.resid_post",
        "--out",
        str(out),
        "--context-size",
        "16",
        "--shard-tokens",
        "16",
        "--batch-size",
        "1",
        "--max-tokens",
        str(16 * N_SHARDS),
    ]


def kill_after_first_shard(args: list[str], out) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "interplab.cli", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while not (out / "shard_00000.safetensors").exists():
            if proc.poll() is not None:
                pytest.fail(
                    f"cache subprocess ended before writing a shard: {proc.stderr.read().decode()[-500:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail("cache subprocess wrote no shard within 120 s")
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()


def test_killed_cache_run_resumes_to_the_same_store(tiny_model_dir, tmp_path):
    model_dir = tiny_model_dir("gpt2")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    kill_after_first_shard(cache_args(model_dir, killed), killed)

    written = sorted(killed.glob("shard_*.safetensors"))
    assert not (killed / MANIFEST).exists() and (killed / PROGRESS).exists(), (
        "the run finished before the kill"
    )
    assert 1 <= len(written) < N_SHARDS
    with pytest.raises(InterplabError, match="unfinished store.*--resume"):
        ActivationStore.open(killed)
    refused = CliRunner().invoke(app, cache_args(model_dir, killed))
    assert isinstance(refused.exception, InterplabError) and "--resume" in str(refused.exception)

    resumed = CliRunner().invoke(app, [*cache_args(model_dir, killed), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    reference = CliRunner().invoke(app, cache_args(model_dir, clean))
    assert reference.exit_code == 0, reference.output

    a, b = ActivationStore.open(killed), ActivationStore.open(clean)
    assert a.n_shards == b.n_shards == N_SHARDS and not (killed / PROGRESS).exists()
    for got, want in zip(a.iter_shards(), b.iter_shards(), strict=True):
        assert torch.equal(got.tokens, want.tokens)
        assert torch.equal(got.acts, want.acts)
        assert torch.equal(got.mask, want.mask)
    assert [s.sha256 for s in a.manifest.shards] == [s.sha256 for s in b.manifest.shards]
