"""`interplab dashboards` end to end on a tiny gpt2 store: rows read back, resume rules, bad input."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch
from typer.testing import CliRunner

from interplab.activations import ActivationStore
from interplab.cli import app
from interplab.common import InterplabError
from interplab.dashboards.db import DashboardDB
from interplab.saes import load_sae

runner = CliRunner()


def _args(model_dir, store, db, *extra: str) -> list[str]:
    return ["dashboards", "--store", str(store), "--db", str(db), "--model", str(model_dir), "--top-k", "4",
            "--window", "3", "--batch-tokens", "64", "--write-batch", "16", *extra]


def test_cli_builds_a_database_whose_rows_read_back(gpt2_store, random_sae, tmp_path):
    model_dir, store = gpt2_store
    db_path = tmp_path / "d.db"
    res = runner.invoke(app, _args(model_dir, store, db_path, "--sae", str(random_sae)))
    assert res.exit_code == 0, res.output
    assert "48 latents" in res.output
    db = DashboardDB(db_path, create=False)
    (rec,) = db.list_saes()
    assert (rec.name, rec.d_in, rec.d_sae, rec.arch, rec.hook) == ("sae", 64, 48, "relu", "blocks.0.resid_post")
    assert rec.n_tokens == ActivationStore.open(store).n_tokens and rec.model == str(model_dir)
    assert rec.id is not None and db.n_features(rec.id) == 48 and db.get_state(rec.id, "done") == 48

    sae = load_sae(random_sae)
    shards = list(ActivationStore.open(store).iter_shards())
    tokens, mask = torch.cat([s.tokens for s in shards]), torch.cat([s.keep for s in shards])  # kept tokens
    latents = sae.encode(torch.cat([s.acts for s in shards])).detach()
    f = int(((latents > 0) & mask[..., None]).sum((0, 1)).argmax())
    feat = db.get_feature(rec.id, f)
    assert feat is not None and feat.max_act == pytest.approx(float(latents[mask][:, f].max()))
    assert sum(feat.hist_counts) == int((latents[mask][:, f] > 0).sum())
    assert len(feat.logits_pos) == 10 and len(feat.neighbours) == 10
    top = db.get_examples(rec.id, f, "top")
    assert [e.rank for e in top] == [0, 1, 2, 3]
    assert [e.max_act for e in top] == sorted((e.max_act for e in top), reverse=True)
    best = top[0]
    row, pos = divmod(best.position, tokens.shape[1])
    assert best.max_act == pytest.approx(float(latents[row, pos, f]))
    assert len(best.tokens) == len(best.acts) == len(best.token_ids) <= 7
    assert best.token_ids[best.acts.index(max(best.acts))] == int(tokens[row, pos])
    assert max(best.acts) == pytest.approx(best.max_act, abs=1e-4)
    quant = db.get_examples(rec.id, f, "quantile")
    assert quant and all(e.bucket is not None for e in quant)
    # no example of any latent peaks on a position the store leaves out (first position, EOS separators)
    assert not mask.all() and not mask[:, 0].any()
    peaks = [divmod(e.position, tokens.shape[1]) for g in range(48)
             for e in db.get_examples(rec.id, g, "top") + db.get_examples(rec.id, g, "quantile")]
    assert len(peaks) > 48 and all(mask[row, pos] for row, pos in peaks)
    assert db.search_by_token(best.tokens[best.acts.index(max(best.acts))], sae_id=rec.id)


def test_resume_flag_on_a_fresh_database_builds_and_on_a_complete_one_does_nothing(gpt2_store, random_sae,
                                                                                    tmp_path):
    model_dir, store = gpt2_store
    db_path = tmp_path / "d.db"
    args = _args(model_dir, store, db_path, "--sae", str(random_sae), "--resume")
    assert runner.invoke(app, args).exit_code == 0
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already complete" in again.output
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before

    taken = runner.invoke(app, _args(model_dir, store, db_path, "--sae", str(random_sae)))
    assert isinstance(taken.exception, InterplabError) and "--resume" in str(taken.exception)
    other = runner.invoke(app, _args(model_dir, store, db_path, "--sae", str(random_sae), "--resume", "--top-k", "3"))
    assert isinstance(other.exception, InterplabError) and "--overwrite" in str(other.exception)
    rebuilt = runner.invoke(app, _args(model_dir, store, db_path, "--sae", str(random_sae), "--overwrite",
                                       "--top-k", "3"))
    assert rebuilt.exit_code == 0, rebuilt.output
    db = DashboardDB(db_path)
    assert len(db.list_saes()) == 1 and len(db.get_examples(1, 0, "top")) <= 3


def test_wrong_d_in_is_a_one_line_error_and_leaves_the_database_untouched(gpt2_store, random_sae, sae_factory,
                                                                           tmp_path):
    model_dir, store = gpt2_store
    db_path = tmp_path / "d.db"
    assert runner.invoke(app, _args(model_dir, store, db_path, "--sae", str(random_sae))).exit_code == 0
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    wrong = sae_factory(tmp_path / "wrong", 32, 16, x_norm=1.0)
    res = runner.invoke(app, _args(model_dir, store, db_path, "--sae", str(wrong), "--name", "sae"))
    assert isinstance(res.exception, InterplabError)
    msg = str(res.exception)
    assert "\n" not in msg and "d_in=32" in msg and "d=64" in msg and "pass the store the SAE was trained on" in msg
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    fresh = tmp_path / "never.db"
    assert isinstance(runner.invoke(app, _args(model_dir, store, fresh, "--sae", str(wrong))).exception,
                      InterplabError)
    assert not fresh.exists()


def test_neurons_get_dashboards_of_the_raw_hook_dimensions(gpt2_store, tmp_path):
    model_dir, store = gpt2_store
    db_path = tmp_path / "d.db"
    res = runner.invoke(app, _args(model_dir, store, db_path, "--neurons", "--window", "none"))
    assert res.exit_code == 0, res.output
    db = DashboardDB(db_path)
    (rec,) = db.list_saes()
    assert rec.arch == "neurons" and rec.d_sae == rec.d_in == 64 and rec.id is not None
    acts = ActivationStore.open(store).valid_activations()
    feat = db.get_feature(rec.id, 5)
    assert feat is not None and feat.max_act == pytest.approx(float(acts[:, 5].max()))
    assert feat.frequency == pytest.approx(float((acts[:, 5] > 0).float().mean()))
    assert feat.neighbours == [] and len(feat.logits_pos) == 10
    top = db.get_examples(rec.id, 5, "top")
    assert top and all(len(e.tokens) == 16 and e.position % 16 == e.acts.index(max(e.acts)) for e in top)
    both = runner.invoke(app, _args(model_dir, store, db_path, "--neurons", "--sae", str(tmp_path)))
    assert isinstance(both.exception, InterplabError) and "exactly one" in str(both.exception)


@pytest.mark.parametrize("db", ["postgresql+nosuchdriver://u@localhost/db", "{tmp}/no/such/folder/d.db"])
def test_an_unusable_database_is_a_one_line_error(gpt2_store, random_sae, tmp_path, db):
    model_dir, store = gpt2_store
    res = runner.invoke(app, _args(model_dir, store, db.format(tmp=tmp_path), "--sae", str(random_sae)))
    assert isinstance(res.exception, InterplabError), res.output
    assert "\n" not in str(res.exception) and "cannot open the database" in str(res.exception)


def _damaged_database(path, kind: str) -> None:
    """A file where `interplab dashboards` is pointed: not SQLite at all, or a dashboards database with a page
    in its middle overwritten."""
    from fake_dashboard_rows import synthetic_batch

    if kind == "not sqlite":
        path.write_bytes(b"this is a spreadsheet export, not a database\n" * 100)
        return
    db = DashboardDB(path)
    db.write_latents(db.upsert_sae(_old_record()), *synthetic_batch(0, 48, n_top=3, n_quantile=2, context=8))
    db.close()
    data = bytearray(path.read_bytes())
    page = len(data) // 4096 // 2
    data[page * 4096:(page + 1) * 4096] = b"\xa5" * 4096
    path.write_bytes(bytes(data))


def _old_record():
    from interplab.dashboards.db import SaeRecord

    return SaeRecord(name="old", path="/x/sae", model="m", hook="blocks.0.resid_post", d_in=64, d_sae=48, arch="relu")


@pytest.mark.parametrize("kind", ["not sqlite", "damaged page"])
def test_a_damaged_database_is_refused_in_one_line_and_left_as_it_was(gpt2_store, random_sae, tmp_path, kind):
    model_dir, store = gpt2_store
    db_path = tmp_path / "d.db"
    _damaged_database(db_path, kind)
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    for extra in ([], ["--resume"], ["--overwrite"]):
        res = runner.invoke(app, _args(model_dir, store, db_path, "--sae", str(random_sae), *extra))
        assert isinstance(res.exception, InterplabError), res.output
        msg = str(res.exception)
        assert "\n" not in msg and str(db_path) in msg and ("another --db" in msg or "new file name" in msg)
        assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("d.db")) == ["d.db"]  # no -wal, -shm


def test_sae_and_model_paths_are_stored_absolute_so_serve_finds_them_from_anywhere(gpt2_store, random_sae, tmp_path,
                                                                        monkeypatch):
    from interplab.web.app import create_app
    from web_data import local_client

    model_dir, store = gpt2_store
    shutil.copytree(model_dir, random_sae.parent / "model")
    monkeypatch.chdir(random_sae.parent)
    res = runner.invoke(app, _args("model", store, "d.db", "--sae", random_sae.name))  # relative, as typed
    assert res.exit_code == 0, res.output
    (rec,) = DashboardDB(random_sae.parent / "d.db", create=False).list_saes()
    assert rec.path == str(random_sae.resolve()) and rec.model == str((random_sae.parent / "model").resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    client = local_client(create_app(random_sae.parent / "d.db", device="cpu"))
    live = client.post("/api/live", json={"sae_id": rec.id, "text": "The cat sat"})
    assert live.status_code == 200, live.text
    assert live.json()["tokens"]


@pytest.mark.parametrize("db", ["postgresql+psycopg://interplab:s3cr3t-pw@localhost:1/dash",
                                "postgresql+nosuchdriver://interplab:s3cr3t-pw@localhost/dash"])
def test_database_errors_never_show_the_password(gpt2_store, random_sae, db):
    model_dir, store = gpt2_store
    res = runner.invoke(app, _args(model_dir, store, db, "--sae", str(random_sae)))
    assert isinstance(res.exception, InterplabError), res.output
    msg = str(res.exception)
    assert "s3cr3t-pw" not in msg + res.output and "interplab:***@localhost" in msg and "cannot open" in msg


def test_max_tokens_scans_only_the_first_whole_rows(gpt2_store, random_sae, tmp_path):
    from interplab.dashboards import DashboardConfig, build_dashboards

    model_dir, store = gpt2_store
    cfg = DashboardConfig(top_k=3, max_tokens=100, n_logits=0, n_neighbours=0)
    result = build_dashboards(random_sae, store, tmp_path / "d.db", cfg, model=str(model_dir), device="cpu")
    kept = int(ActivationStore.open(store).keep_masks()[:7].sum())  # ceil(100 / 16) rows of 16 tokens
    assert result.n_tokens == kept < 7 * 16
    db = DashboardDB(tmp_path / "d.db")
    assert db.list_saes()[0].n_tokens == kept
    rows = {e.position // 16 for f in range(48) for e in db.get_examples(result.sae_id, f, "top")}
    assert rows and max(rows) < 7
    feat = db.get_feature(result.sae_id, 0)
    assert feat is not None and feat.logits_pos == [] and feat.neighbours == []
