"""Load text documents from files or datasets, and turn them into fixed-size token windows.

Sources `load_texts` understands, in this order:
  * None: the embedded demo corpus (offline),
  * a corpus name: `demo`, `wiki-en`, `wiki-fr`, `wiki-es` (see `interplab.data.packaged`; a local
    folder of the same name needs path syntax, e.g. `./wiki-en`),
  * a UTF-8 .txt file (one document per line, or the whole file as one document),
  * a .jsonl file (one JSON object per line; the document is in `text_field`),
  * a .parquet file (column `text_field`),
  * a folder written by `datasets.Dataset.save_to_disk` (or a DatasetDict; `split` picks one),
  * a folder of .txt/.jsonl/.parquet files (read in sorted name order),
  * `owner/name`: a HF hub dataset (`datasets.load_dataset(name, split=split)`).
Any other bare name is an unknown corpus: a one-line error lists the names and file kinds above.

`tokenize_and_pack` then makes [n_seq, ctx] windows. Causal LMs see one token stream (documents joined by
BOS/EOS) cut into windows, as in GPT-style pretraining; encoders (BERT) see one document per row wrapped
in [CLS] ... [SEP] and padded, with long documents split over several rows. Either way a mask marks real
tokens, so padding is never used as training data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError, get_logger
from interplab.data.packaged import DEMO_CORPUS, corpus_names, is_corpus_name, load_corpus

log = get_logger(__name__)

_FILE_SUFFIXES = (".txt", ".jsonl", ".parquet")
_TOKENIZE_CHUNK = 1024  # documents per tokenizer call: batched for speed, small enough to stop early


class PackedTokens(NamedTuple):
    """Token windows ready for a forward pass."""

    input_ids: Tensor
    """[n_seq, ctx] int64 token ids (padding positions hold the pad id)."""
    attention_mask: Tensor
    """[n_seq, ctx] bool: True on real tokens, False on padding."""


def load_texts(
    source: str | Path | None = None,
    text_field: str = "text",
    split: str = "train",
    whole_file: bool = False,
    max_docs: int | None = None,
) -> list[str]:
    """Documents (non-empty strings) from `source`; see the module docstring for what it can be."""
    source = DEMO_CORPUS if source is None else source
    path = Path(source).expanduser()
    if isinstance(source, str) and is_corpus_name(source):
        texts = load_corpus(source)
    elif path.is_file():
        texts = _read_file(path, text_field, whole_file)
    elif path.is_dir():
        texts = _read_folder(path, text_field, split, whole_file)
    elif _looks_like_path(str(source)):
        raise InterplabError(f"data source {source} does not exist; pass an existing file or folder")
    elif "/" not in str(source):
        raise InterplabError(
            f"unknown corpus {str(source)!r}; use one of {', '.join(corpus_names())}, a UTF-8 .txt, .jsonl or "
            ".parquet file, a folder of them, a saved `datasets` folder, or a hub dataset as owner/name"
        )
    else:
        texts = _read_hub_dataset(str(source), text_field, split)
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise InterplabError(
            f"no documents found in {source or 'the demo corpus'}; check the file and --text-field"
        )
    return texts[:max_docs] if max_docs is not None else texts


def _looks_like_path(source: str) -> bool:
    """Hub dataset names are `name` or `owner/name`; anything with a file suffix or path syntax is a path."""
    return source.startswith((".", "/", "~")) or source.endswith(_FILE_SUFFIXES) or source.count("/") > 1


def _read_file(path: Path, text_field: str, whole_file: bool) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path, text_field)
    if suffix == ".parquet":
        return _read_parquet(path, text_field)
    if suffix == ".txt":
        text = _read_utf8(path)
        return [text] if whole_file else [line.strip() for line in text.splitlines()]
    raise InterplabError(f"cannot read {path.name}: use a .txt, .jsonl or .parquet file or a dataset folder")


def _read_utf8(path: Path) -> str:
    """The file as text; one-line errors for other encodings and for binary files."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    if "\x00" in text:
        # valid UTF-8 can still be binary data: text files never hold NUL characters
        raise InterplabError(f"{path.name} holds NUL bytes, so it is binary, not text; pass a UTF-8 text file")
    return text


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> InterplabError:
    return InterplabError(
        f"{path.name} is not UTF-8 text ({exc.reason} at byte 0x{exc.object[exc.start]:02x}); pass a UTF-8 "
        f"file (Latin-1 text converts with `iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}`)"
    )


def _read_jsonl(path: Path, text_field: str) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as f:
        try:
            lines = list(f)
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, exc) from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            # control characters (binary data) fail here too: JSON strings cannot hold them raw
            raise InterplabError(f"{path.name} line {line_no} is not valid JSON ({exc.msg}); fix that line") from None
        if not isinstance(record, dict) or text_field not in record:
            raise InterplabError(
                f"{path.name} line {line_no} has no {text_field!r} field; pass --text-field with the right key"
            )
        texts.append(str(record[text_field]))
    return texts


def _read_parquet(path: Path, text_field: str) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        columns = pq.read_schema(path).names
        if text_field not in columns:
            raise InterplabError(f"{path.name} has no column {text_field!r} (has {columns}); pass --text-field")
        values = pq.read_table(path, columns=[text_field]).column(text_field).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InterplabError(
            f"{path.name} is not a readable parquet file ({first}); write it again, or pass a .txt or .jsonl file"
        ) from None
    return [str(t) for t in values if t]


def _read_folder(path: Path, text_field: str, split: str, whole_file: bool) -> list[str]:
    if (
        (path / "dataset_info.json").exists()
        or (path / "dataset_dict.json").exists()
        or (path / "state.json").exists()
    ):
        import datasets
        import pyarrow as pa

        try:
            ds = datasets.load_from_disk(str(path))
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InterplabError(
                f"{path} is not a readable saved dataset ({first}); save it again with save_to_disk"
            ) from None
        return _dataset_column(ds, text_field, split, str(path))
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _FILE_SUFFIXES)
    if not files:
        raise InterplabError(f"{path} holds no .txt/.jsonl/.parquet files and is not a saved HF dataset")
    return [text for f in files for text in _read_file(f, text_field, whole_file)]


def _dataset_column(ds, text_field: str, split: str, name: str) -> list[str]:
    import datasets

    if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split not in ds:
            raise InterplabError(f"dataset {name} has splits {list(ds)}, not {split!r}; pass --split")
        ds = ds[split]
    if text_field not in (ds.column_names or []):
        raise InterplabError(
            f"dataset {name} has no column {text_field!r} (has {ds.column_names}); pass --text-field"
        )
    return [str(t) for t in ds[text_field]]


def _read_hub_dataset(name: str, text_field: str, split: str) -> list[str]:
    import datasets

    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many unrelated types for "not reachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InterplabError(
            f"could not load hub dataset {name!r} ({first}); pass a local file/folder or check the network"
        ) from exc
    return _dataset_column(ds, text_field, split, name)


def tokenize_and_pack(
    tokenizer,
    texts: Sequence[str],
    context_size: int,
    causal: bool = True,
    add_special: bool = True,
    max_seq: int | None = None,
) -> PackedTokens:
    """Tokenize `texts` into [n_seq, context_size] windows (see the module docstring).

    `add_special`: causal LMs put the tokenizer's BOS (else EOS) token before every document; encoders
    wrap every row in the tokenizer's special tokens ([CLS] ... [SEP] for BERT).
    `max_seq`: keep only the first windows, and stop tokenizing documents once they are filled (the result
    equals packing everything and truncating, without tokenizing a whole large dataset).
    """
    if context_size < 2:
        raise InterplabError(f"context_size must be at least 2, got {context_size}")
    if not texts:
        raise InterplabError("no texts to tokenize; pass at least one document")
    if max_seq is not None and max_seq < 1:
        raise InterplabError(f"max_seq must be positive, got {max_seq}")
    pack = _pack_causal if causal else _pack_encoder
    packed = pack(tokenizer, texts, context_size, add_special, max_seq)
    log.debug("packed %d documents into %d windows of %d", len(texts), len(packed.input_ids), context_size)
    return packed


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _chunks(texts: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        yield list(texts[start : start + _TOKENIZE_CHUNK])


def _pack_causal(
    tokenizer, texts: Sequence[str], ctx: int, add_special: bool, max_seq: int | None
) -> PackedTokens:
    sep = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if add_special and sep is None:
        raise InterplabError("the tokenizer has neither a BOS nor an EOS token; pass add_special=False")
    limit = None if max_seq is None else max_seq * ctx
    stream: list[int] = []
    for chunk in _chunks(texts):
        for ids in tokenizer(chunk, add_special_tokens=False)["input_ids"]:
            if add_special:
                stream.append(int(sep))
            stream.extend(ids)
        if limit is not None and len(stream) >= limit:
            del stream[limit:]
            break
    n_seq = -(-len(stream) // ctx)  # ceil: the tail window is padded and masked, not dropped
    flat = torch.full((n_seq * ctx,), _pad_id(tokenizer), dtype=torch.int64)
    flat[: len(stream)] = torch.tensor(stream, dtype=torch.int64)
    mask = torch.zeros(n_seq * ctx, dtype=torch.bool)
    mask[: len(stream)] = True
    return PackedTokens(flat.view(n_seq, ctx), mask.view(n_seq, ctx))


def _pack_encoder(
    tokenizer, texts: Sequence[str], ctx: int, add_special: bool, max_seq: int | None
) -> PackedTokens:
    if not getattr(tokenizer, "is_fast", False):
        raise InterplabError("encoder packing needs a fast (Rust) tokenizer; install `tokenizers` and reload")
    ids, masks, n_rows = [], [], 0
    for chunk in _chunks(texts):
        # Overflowing tokens split a long document over several rows, each with its own [CLS] ... [SEP].
        enc = tokenizer(
            chunk,
            add_special_tokens=add_special,
            truncation=True,
            max_length=ctx,
            padding="max_length",
            return_overflowing_tokens=True,
            return_tensors="pt",
        )
        ids.append(enc["input_ids"].to(torch.int64))
        masks.append(enc["attention_mask"].to(torch.bool))
        n_rows += len(ids[-1])
        if max_seq is not None and n_rows >= max_seq:
            break
    return PackedTokens(torch.cat(ids)[:max_seq], torch.cat(masks)[:max_seq])
