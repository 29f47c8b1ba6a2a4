"""`interplab explain-server` as a real subprocess on a free port, queried by `interplab explain`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from interplab.cli import app
from interplab.saes import make_sae, sae_config, save_sae


@pytest.mark.slow
def test_explain_against_an_explain_server_subprocess(gpt2_dir, tmp_path):
    torch.manual_seed(0)
    sae = make_sae(sae_config("topk", d_in=64, d_sae=16, k=2))
    save_sae(sae, tmp_path / "sae", metadata={"hook_name": "blocks.0.resid_post"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    cmd = [sys.executable, "-m", "interplab.cli", "explain-server", "--model", str(gpt2_dir), "--port", "0"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        deadline, url = time.time() + 120, None
        while url is None and time.time() < deadline:
            line = server.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        assert url, "the server never printed its URL"
        result = CliRunner().invoke(
            app,
            [
                "explain",
                "--model",
                str(gpt2_dir),
                "--sae",
                str(tmp_path / "sae"),
                "--top-n",
                "2",
                "--endpoint",
                url,
                "--max-tokens",
                "8",
                "--context",
                "12",
                "--out",
                str(tmp_path / "run"),
            ],
        )
        assert result.exit_code == 0, repr(result.exception)
        assert len((tmp_path / "run" / "explanations.jsonl").read_text().splitlines()) == 4  # LLM + baseline
    finally:
        server.terminate()
        server.wait(timeout=30)
