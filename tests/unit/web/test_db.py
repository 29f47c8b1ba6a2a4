"""The dashboards database: round trips, idempotent rewrites, search, resume state."""

from __future__ import annotations

from pathlib import Path

import pytest

from interplab.common import InterplabError
from interplab.dashboards.db import DashboardDB, ExampleRecord, FeatureRecord, SaeRecord, database_url
from interplab.dashboards.db_access import masked_url, model_location, sae_locations


def _sae(name: str = "demo") -> SaeRecord:
    return SaeRecord(name=name, path="/x/sae", model="tiny", hook="blocks.0.resid_post", d_in=8, d_sae=4,
                     arch="topk", n_tokens=100, meta={"k": 2})


def _feature(i: int) -> FeatureRecord:
    return FeatureRecord(idx=i, frequency=0.1 * i, max_act=float(i), mean_act=0.5, hist_edges=[0.0, 1.0, 2.0],
                         hist_counts=[3, 1], logits_pos=[("cat", 1.5)], logits_neg=[("dog", -1.0)],
                         neighbours=[(i + 1, 0.9)])


def _example(i: int, rank: int, peak_token: str) -> ExampleRecord:
    return ExampleRecord(idx=i, kind="top", rank=rank, max_act=2.0, tokens=["the", peak_token, "<script>"],
                         acts=[0.0, 2.0, 0.5], token_ids=[1, 2, 3], position=10 * rank)


def test_paths_become_sqlite_urls_and_urls_pass_through(tmp_path: Path) -> None:
    assert database_url(tmp_path / "d.db").startswith("sqlite:///")
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_latents_round_trip_and_rewrites_replace_instead_of_duplicating(tmp_path: Path) -> None:
    db = DashboardDB(tmp_path / "d.db")
    sae_id = db.upsert_sae(_sae())
    assert db.upsert_sae(_sae()) == sae_id  # same name -> same row
    feats, exs = [_feature(0), _feature(1)], [_example(0, 0, " Cat"), _example(0, 1, "cat"), _example(1, 0, "dog")]
    db.write_latents(sae_id, feats, exs, state={"done": 2})
    db.write_latents(sae_id, feats, exs, state={"done": 2})
    assert db.n_features(sae_id) == 2
    assert db.get_feature(sae_id, 1) == _feature(1)
    got = db.get_examples(sae_id, 0, "top")
    assert [e.rank for e in got] == [0, 1] and got[0].tokens[2] == "<script>"
    assert db.get_state(sae_id, "done") == 2 and db.get_state(sae_id, "missing", 7) == 7
    assert db.get_sae(sae_id) is not None and db.get_sae(sae_id).meta == {"k": 2}  # type: ignore[union-attr]


def test_search_by_peak_token_and_by_explanation(tmp_path: Path) -> None:
    db = DashboardDB(tmp_path / "d.db")
    sae_id = db.upsert_sae(_sae())
    db.write_latents(sae_id, [_feature(0), _feature(1)], [_example(0, 0, " Cat"), _example(1, 0, "dog")])
    hits = db.search_by_token("cat")
    assert [(h.idx, h.text) for h in hits] == [(0, "cat")]
    db.write_explanation(sae_id, 1, "Mentions of DOGS and puppies", "tiny-llm", detection=0.8)
    db.write_explanation(sae_id, 0, "100% cats", "tiny-llm")
    assert [h.idx for h in db.search_by_explanation("dogs")] == [1]
    assert [h.idx for h in db.search_by_explanation("100%")] == [0]  # % is literal, not a wildcard
    assert db.get_explanations(sae_id, 1)[0].detection == 0.8


def test_databases_made_before_the_sort_indexes_get_them_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    DashboardDB(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX ix_features_frequency")
        conn.execute("DROP INDEX ix_feature_tokens_by_token")
    db = DashboardDB(path, create=False)
    db.close()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        plan = " ".join(str(r) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM features WHERE sae_id = 1 ORDER BY frequency DESC LIMIT 10"))
    assert {"ix_features_frequency", "ix_features_max_act", "ix_feature_tokens_by_token"} <= names
    assert "ix_features_frequency" in plan and "TEMP B-TREE" not in plan


def test_opening_a_missing_database_for_reading_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InterplabError, match="interplab dashboards"):
        DashboardDB(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_clear_latents_drops_rows_and_state_but_keeps_the_sae_and_explanations(tmp_path: Path) -> None:
    db = DashboardDB(tmp_path / "d.db")
    sae_id, other = db.upsert_sae(_sae()), db.upsert_sae(_sae("other"))
    for i in (sae_id, other):
        db.write_latents(i, [_feature(0)], [_example(0, 0, "cat")], state={"done": 1})
    db.write_explanation(sae_id, 0, "cats", "tiny-llm")
    db.clear_latents(sae_id)
    assert db.n_features(sae_id) == 0 and db.get_examples(sae_id, 0) == []
    assert db.get_state(sae_id, "done") is None and db.search_by_token("cat", sae_id=sae_id) == []
    assert db.get_sae(sae_id) is not None and db.get_explanations(sae_id, 0)[0].text == "cats"
    assert db.n_features(other) == 1 and db.get_state(other, "done") == 1


def test_urls_are_shown_with_the_password_masked() -> None:
    assert masked_url("postgresql+psycopg://user:password@db.example:5432/dash") == \
        "postgresql+psycopg://user:***@db.example:5432/dash"
    assert masked_url("cannot reach mysql://root:p@ss:w0rd@h/x (timeout)") == "cannot reach mysql://root:***@h/x (timeout)"
    assert masked_url("a postgresql://u:one@h/db and b postgresql://v:two@k/db") == \
        "a postgresql://u:***@h/db and b postgresql://v:***@k/db"
    assert masked_url("postgresql://user@h/db") == "postgresql://user@h/db"  # no password, nothing to hide
    assert masked_url(Path("/data/dash.db")) == "/data/dash.db" and masked_url("sqlite:////a/b.db") == "sqlite:////a/b.db"


def test_sae_paths_and_model_folders_are_stored_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = DashboardDB("d.db")
    sae_id = db.upsert_sae(SaeRecord(name="rel", path="runs/sae", model="m", hook="h", d_in=1, d_sae=1, arch="topk"))
    neurons = db.upsert_sae(SaeRecord(name="n", path="neurons:store", model="m", hook="h", d_in=1, d_sae=1,
                                      arch="neurons"))
    assert db.get_sae(sae_id).path == str(tmp_path / "runs" / "sae")  # type: ignore[union-attr]
    assert db.get_sae(neurons).path == f"neurons:{tmp_path / 'store'}"  # type: ignore[union-attr]
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    local = db.upsert_sae(SaeRecord(name="m", path="sae", model="models/tiny", hook="h", d_in=1, d_sae=1, arch="topk"))
    assert db.get_sae(local).model == str(tmp_path / "models" / "tiny")  # type: ignore[union-attr]
    assert db.get_sae(sae_id).model == "m"  # type: ignore[union-attr]  # not a folder here: a hub id, kept


def test_relative_paths_of_older_databases_are_looked_for_beside_the_database_then_here(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sae_locations("/abs/sae", tmp_path / "x" / "d.db") == [Path("/abs/sae")]
    assert sae_locations("runs/sae", tmp_path / "x" / "d.db") == [tmp_path / "x" / "runs" / "sae",
                                                                  tmp_path / "runs" / "sae"]
    assert sae_locations("runs/sae", None) == [tmp_path / "runs" / "sae"]  # PostgreSQL: no database folder
    (tmp_path / "x" / "gpt2-local").mkdir(parents=True)
    assert model_location("gpt2-local", tmp_path / "x" / "d.db") == str(tmp_path / "x" / "gpt2-local")
    assert model_location("gpt2", tmp_path / "x" / "d.db") == "gpt2"  # a hub id stays one


def test_readers_answer_none_for_ids_beyond_64_bits(tmp_path: Path) -> None:
    db = DashboardDB(tmp_path / "d.db")
    sae_id = db.upsert_sae(_sae())
    db.write_latents(sae_id, [_feature(0)], [_example(0, 0, "cat")])
    big = 2**64
    assert db.get_sae(big) is None and db.get_feature(sae_id, big) is None and db.n_features(big) == 0
    assert db.get_examples(sae_id, big) == [] and db.get_explanations(big, 0) == []
    assert db.list_features(sae_id, offset=big) == [] and db.search_by_token("cat", sae_id=big) == []
    assert db.search_by_explanation("cat", sae_id=big) == [] and db.get_state(big, "done", 3) == 3


def test_rows_hold_the_json_text_json_dumps_writes_even_for_nan_and_tiny_or_huge_numbers(tmp_path: Path) -> None:
    import json
    import sqlite3

    db = DashboardDB(tmp_path / "d.db")
    sae_id = db.upsert_sae(_sae())
    acts = [0.0, -0.0, 1e-05, 1.2345, 3e16, float("nan"), float("inf")]
    feat = FeatureRecord(idx=0, frequency=0.5, max_act=2.0, mean_act=1.0, hist_edges=[0.0, 0.1, 1e-07],
                         hist_counts=[0, 2**40], logits_pos=[("é\"x", 1.5)], logits_neg=[], neighbours=[(3, 0.25)])
    ex = ExampleRecord(idx=0, kind="top", rank=0, max_act=2.0, tokens=["a", "é", "\"q\"", "\\", "b", "c", "d"], acts=acts,
                       token_ids=[0, 7, 2**40, 3, 4, 5, 6], position=4)
    db.write_latents(sae_id, [feat], [ex])
    db.close()
    with sqlite3.connect(tmp_path / "d.db") as raw:
        row = raw.execute("SELECT tokens, acts, token_ids FROM examples").fetchone()
        frow = raw.execute("SELECT hist_edges, hist_counts, logits_pos, neighbours FROM features").fetchone()
    assert row == (json.dumps(ex.tokens), json.dumps(acts), json.dumps(ex.token_ids))
    assert frow == (json.dumps(feat.hist_edges), json.dumps(feat.hist_counts), json.dumps(feat.logits_pos),
                    json.dumps(feat.neighbours))
