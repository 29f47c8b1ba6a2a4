"""The web server starts light: the dashboards DB and report reader come without transformers or matplotlib
(live inference loads the model stack on its first request, report figures are drawn by the runners)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"


def test_importing_the_web_app_loads_neither_transformers_nor_matplotlib() -> None:
    code = ("import sys, interplab.web.app; "
            "print(sorted(m for m in ('transformers', 'matplotlib') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
