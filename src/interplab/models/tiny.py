"""Tiny random-weight HF models with an offline tokenizer, for tests, benches and labs.

Nothing is downloaded: the tokenizer is trained in a second on the embedded corpus (byte-level BPE for
decoders, lower-cased WordPiece for BERT), and the weights are random from a seed. The folder loads with
`load_model(folder)` like any hub checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from interplab.common import InterplabError

TINY_FAMILIES = ("gpt2", "gpt_neox", "llama", "gemma3", "bert")

_FALLBACK_TEXT = [
    "The cat sat on the mat while the dog slept by the door.",
    "Numbers like 1, 2, 3 and 42 appear in lists, prices and dates such as 2024.",
    "def add(a, b):\n    return a + b",
    "Paris is the capital of France; Madrid is the capital of Spain.",
    "She was happy, then sad, then angry, and finally calm again.",
]


def training_texts() -> list[str]:
    """The embedded demo corpus when present, plus a few fixed lines (so the vocab covers code and digits)."""
    try:
        from interplab.data.corpus import load_demo_corpus

        texts = list(load_demo_corpus())
    except (ImportError, FileNotFoundError):
        texts = []
    return texts + _FALLBACK_TEXT


def build_bpe_tokenizer(texts: Sequence[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2 style) with `<|endoftext|>` as BOS/EOS/pad."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def build_wordpiece_tokenizer(texts: Sequence[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A lower-cased WordPiece tokenizer (BERT style) that wraps inputs in [CLS] ... [SEP]."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _tiny_model(family: str, vocab: int, n_layers: int, d_model: int, n_ctx: int, tokenizer) -> PreTrainedModel:
    heads = 4
    if family == "gpt2":
        gpt2_cfg = GPT2Config(
            vocab_size=vocab, n_positions=n_ctx, n_embd=d_model, n_layer=n_layers, n_head=heads,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        return GPT2LMHeadModel(gpt2_cfg)
    if family == "gpt_neox":
        neox_cfg = GPTNeoXConfig(
            vocab_size=vocab, hidden_size=d_model, num_hidden_layers=n_layers, num_attention_heads=heads,
            intermediate_size=4 * d_model, max_position_embeddings=n_ctx,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        return GPTNeoXForCausalLM(neox_cfg)
    if family == "llama":
        llama_cfg = LlamaConfig(
            vocab_size=vocab, hidden_size=d_model, num_hidden_layers=n_layers, num_attention_heads=heads,
            num_key_value_heads=heads // 2, intermediate_size=2 * d_model, max_position_embeddings=n_ctx,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return LlamaForCausalLM(llama_cfg)
    if family == "gemma3":
        # head_dim set explicitly (Gemma's default is 256); local (4-token window) and global layers
        # alternate, so both kinds run on short test sentences.
        layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)]
        gemma_cfg = Gemma3TextConfig(
            vocab_size=vocab, hidden_size=d_model, num_hidden_layers=n_layers, num_attention_heads=heads,
            num_key_value_heads=heads // 2, head_dim=d_model // heads, intermediate_size=2 * d_model,
            max_position_embeddings=n_ctx, sliding_window=4, layer_types=layer_types,
            query_pre_attn_scalar=d_model // heads,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return _randomize_norms(Gemma3ForCausalLM(gemma_cfg))
    bert_cfg = BertConfig(
        vocab_size=vocab, hidden_size=d_model, num_hidden_layers=n_layers, num_attention_heads=heads,
        intermediate_size=4 * d_model, max_position_embeddings=n_ctx, pad_token_id=tokenizer.pad_token_id,
    )
    return BertForMaskedLM(bert_cfg)


def _randomize_norms(model: PreTrainedModel) -> PreTrainedModel:
    """Gemma's RMSNorms scale by (1 + weight) with weight initialised to 0; random weights make every norm
    visible, so a hook that reads before a norm instead of after it fails the tests."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.normal_(0.0, 0.5)
    return model


def build_tiny_model(
    family: str,
    out_dir: str | Path,
    seed: int = 0,
    n_layers: int = 2,
    d_model: int = 64,
    vocab_size: int = 512,
    n_ctx: int = 256,
) -> Path:
    """Save a tiny random-weight HF model of `family` plus its tokenizer to `out_dir`; return the folder."""
    if family not in TINY_FAMILIES:
        raise InterplabError(f"unknown tiny family {family!r}; use one of {', '.join(TINY_FAMILIES)}")
    texts = training_texts()
    tokenizer = (build_wordpiece_tokenizer if family == "bert" else build_bpe_tokenizer)(texts, vocab_size)
    torch.manual_seed(seed)
    model = _tiny_model(family, len(tokenizer), n_layers, d_model, n_ctx, tokenizer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
