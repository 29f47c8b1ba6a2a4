"""`interplab serve`: binds 127.0.0.1 by default, prints the URL, maps --sae to the DB's SAE, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from interplab.cli import app
from interplab.commands.serve import match_sae_folder
from interplab.common import InterplabError
from interplab.dashboards.db import SaeRecord


@pytest.fixture
def uvicorn_calls(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def test_serve_binds_loopback_by_default_and_prints_the_url(web_data, uvicorn_calls) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", str(web_data.db_path), "--sae", str(web_data.sae_folder),
                                      "--model", str(web_data.model_dir), "--port", "8123",
                                      "--reports", str(web_data.reports_dir)])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[0]["host"] == "127.0.0.1" and uvicorn_calls[0]["port"] == 8123
    assert "http://127.0.0.1:8123" in result.output
    live = uvicorn_calls[0]["app"].state.web.live
    assert live.sae_paths == {1: web_data.sae_folder.resolve()} and live.model_override == str(web_data.model_dir)


def test_serve_refuses_a_missing_database(tmp_path: Path, uvicorn_calls) -> None:
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "none.db")])
    assert isinstance(result.exception, InterplabError) and "interplab dashboards" in str(result.exception)
    assert not uvicorn_calls and not (tmp_path / "none.db").exists()


def _rec(i: int, path: str) -> SaeRecord:
    return SaeRecord(name=f"s{i}", path=path, model="m", hook="h", d_in=1, d_sae=1, arch="topk", id=i)


def test_sae_folder_maps_to_the_sae_built_from_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert match_sae_folder([_rec(1, str(a)), _rec(2, str(b))], b) == {2: b.resolve()}
    assert match_sae_folder([_rec(1, "/elsewhere")], b) == {1: b.resolve()}  # the only SAE
    with pytest.raises(InterplabError, match="matches no SAE"):
        match_sae_folder([_rec(1, str(a)), _rec(2, "/x")], b)
