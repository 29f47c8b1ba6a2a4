"""Exact resume after SIGKILL, and torchrun (2 CPU processes, gloo) matching a single process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interplab.common import InterplabError
from interplab.training import distributed
from interplab.training.metrics_log import JsonlMetrics

SCRIPT = Path(__file__).with_name("_run_training.py")
sys.path.insert(0, str(SCRIPT.parent))
from _run_training import train  # noqa: E402  (the same code the subprocesses run)

STEPS = 30


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _run(args: list[str], timeout: float = 120) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "final.safetensors"))


@pytest.mark.parametrize("arch", ["topk", pytest.param("relu", marks=pytest.mark.slow)])
def test_run_killed_after_a_checkpoint_resumes_to_identical_weights(tmp_path, arch):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    train(ref, STEPS, arch=arch)  # uninterrupted reference, in this process (one torch thread, as the script)

    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(killed), "--steps", str(STEPS), "--ckpt-every", "10",
                             "--sleep", "0.1", "--arch", arch], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((killed / "ckpt").glob("step_*/state.json")):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final.safetensors").exists(), "the run finished before it was killed"

    train(killed, STEPS, ckpt_every=10, resume=True, arch=arch)  # resume here: saves a process start-up
    a, b = _weights(ref), _weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_processes_match_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    reference = train(one, 20)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(SCRIPT), str(two), "--steps", "20"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _weights(one), _weights(two)
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=1e-4, msg=name)
    # training moved the weights, so agreement is not agreement of two untouched initialisations
    init = type(reference)(reference.cfg).state_dict()
    assert not torch.allclose(init["W_dec"], a["W_dec"], atol=1e-3)


def test_train_sae_command_under_torchrun_matches_one_process_and_rank0_writes_the_run(tmp_path):
    args = ["train-sae", "--synthetic", "--n-features", "32", "--d-in", "16", "--mean-active", "3",
            "--d-sae", "48", "--k", "4", "--batch-size", "64", "--lr", "3e-3", "--steps", "12",
            "--log-every", "4", "--checkpoint-every", "6", "--eval-batches", "2", "--device", "cpu"]
    one, two = tmp_path / "one", tmp_path / "two"
    env = {**_env(), "PYTHONPATH": str(Path(distributed.__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-m", "interplab.cli", *args, "--out", str(one)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "interplab.cli", *args, "--out", str(two)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = load_file(str(one / "sae" / "sae_weights.safetensors"))
    b = load_file(str(two / "sae" / "sae_weights.safetensors"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=1e-4, msg=name)
    steps = [line for line in (two / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(steps) == 3  # steps 4, 8, 12 logged once, by rank 0 only
    # the logged numbers are the global batch's (all-reduced), not rank 0's half-batch
    for m1, m2 in zip(JsonlMetrics.read(one / "metrics.jsonl"), JsonlMetrics.read(two / "metrics.jsonl"), strict=True):
        for key in ("loss", "mse_loss", "aux_loss", "l0"):
            assert m2[key] == pytest.approx(m1[key], rel=1e-4, abs=1e-6), (m1["step"], key)
        assert m2["fvu"] == pytest.approx(m1["fvu"], rel=0.02)  # variance around each half's mean


def test_each_rank_takes_its_own_contiguous_slice_of_the_global_batch():
    x_BD = torch.arange(12.0).view(6, 2)
    parts = [distributed.local_slice(x_BD, distributed.DistInfo(r, 3, r)) for r in range(3)]
    assert torch.equal(torch.cat(parts), x_BD) and all(p.shape == (2, 2) for p in parts)
    with pytest.raises(InterplabError, match="divisible"):
        distributed.local_slice(x_BD, distributed.DistInfo(0, 4, 0))
