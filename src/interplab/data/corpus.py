"""The embedded offline demo corpus: a few hundred short original English documents (plus some French
and Spanish) over clearly different topics, so an SAE trained on it finds topic, number, punctuation and
code features without any download.

The text lives in `interplab/data/corpus/*.txt`, one document per line, one file per topic.
"""

from __future__ import annotations

from importlib import resources

_CORPUS_PACKAGE = "interplab.data"
_CORPUS_FOLDER = "corpus"


def demo_corpus_topics() -> list[str]:
    """Topic names (the .txt file stems), in the fixed order `load_demo_corpus` reads them."""
    folder = resources.files(_CORPUS_PACKAGE).joinpath(_CORPUS_FOLDER)
    return sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))


def load_demo_corpus() -> list[str]:
    """All documents of the demo corpus, topic files in sorted order, blank lines skipped.

    The order is fixed so caching the corpus twice gives byte-identical activation stores.
    """
    return [text for text, _ in load_demo_corpus_labeled()]


def load_demo_corpus_labeled() -> list[tuple[str, str]]:
    """(document, topic) pairs of the demo corpus, for probing and dashboards that want labels."""
    folder = resources.files(_CORPUS_PACKAGE).joinpath(_CORPUS_FOLDER)
    pairs: list[tuple[str, str]] = []
    for topic in demo_corpus_topics():
        text = folder.joinpath(f"{topic}.txt").read_text(encoding="utf-8")
        pairs.extend((line.strip(), topic) for line in text.splitlines() if line.strip())
    if not pairs:
        raise FileNotFoundError("the embedded demo corpus is empty; reinstall interplab")
    return pairs
