"""The embedded demo corpus: big, varied and stable enough for the offline demo."""

from __future__ import annotations

import re

from interplab.data.corpus import demo_corpus_topics, load_demo_corpus, load_demo_corpus_labeled


def test_corpus_has_a_few_hundred_unique_short_documents():
    docs = load_demo_corpus()
    assert 250 <= len(docs) <= 420
    assert len(set(docs)) == len(docs)
    assert all(doc == doc.strip() and doc for doc in docs)
    assert max(len(doc) for doc in docs) < 400  # short documents (1-4 sentences)


def test_every_topic_is_represented_and_labels_line_up():
    pairs = load_demo_corpus_labeled()
    topics = demo_corpus_topics()
    for required in ("animals", "code", "cooking", "math", "french", "spanish", "negations", "space"):
        assert required in topics
    counts = {t: sum(1 for _, topic in pairs if topic == t) for t in topics}
    assert min(counts.values()) >= 10
    assert [doc for doc, _ in pairs] == load_demo_corpus()


def test_corpus_contains_numbers_code_and_other_languages():
    text = "\n".join(load_demo_corpus())
    assert len(re.findall(r"\d+", text)) > 100
    assert "def " in text and "return" in text and "{" in text
    assert "s'il vous plaît" in text and "¿Dónde" in text
    assert text.count(" not ") >= 20


def test_corpus_order_is_stable_across_calls():
    assert load_demo_corpus() == load_demo_corpus()
