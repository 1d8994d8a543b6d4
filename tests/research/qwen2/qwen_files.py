"""Tiny Qwen-style tokenizer files and HF checkpoints for the qwen2 / qwen3 family tests (built here, no network).

The vocabulary is a byte-level BPE trained with the ``tokenizers`` library and HF's own Qwen2 pre-tokenization regex
(``transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX``), saved as ``vocab.json`` + ``merges.txt``;
``tokenizer_config.json`` lists the added tokens after the base vocabulary the way HF Qwen folders do.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "Hello world! The light is burning.",
    "I'LL go, you'd better not; they've said it's FINE. Don't.",
    "在海边的一个小岛上，有一座白色的灯塔。灯塔里住着一位老守塔人。",
    "日本語のテキストと한국어 텍스트, Ελληνικά, русский текст, العربية",
    "def f(x):\n\treturn x ** 2  # square\n\n\nclass A:\n    pass\r\n",
    "emoji 🌊🗼🤖 family 👨‍👩‍👧‍👦 skin 👍🏽",
    "numbers 1 12 123 1234 12345 3.14159 -42 1e-5 2026-11-22",
    "the quick brown fox jumps over the lazy dog " * 4,
    "The keeper climbed the stairs of the white lighthouse every evening.",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>"]
NON_SPECIAL = ["<tool_call>", "</tool_call>"]


def write_bpe_files(folder: Path, vocab_size: int = 600, corpus: list[str] | None = None) -> int:
    """``vocab.json`` + ``merges.txt`` trained on ``corpus`` (default ``CORPUS``) into ``folder``; returns the base
    vocabulary size."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tk.train_from_iterator((corpus or CORPUS) * 3, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tk.model.save(str(folder))
    return tk.get_vocab_size()


def write_tokenizer_config(folder: Path, base: int, eos: str = "<|im_end|>") -> None:
    """A Qwen2.5-style ``tokenizer_config.json``: specials then non-special added tokens after the base vocabulary."""
    entry = {"lstrip": False, "rstrip": False, "single_word": False, "normalized": False}
    tokens = [(t, True) for t in SPECIALS] + [(t, False) for t in NON_SPECIAL]
    added = {str(base + i): {**entry, "content": t, "special": special} for i, (t, special) in enumerate(tokens)}
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "eos_token": eos,
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "bos_token": None,
        "errors": "replace",
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "model_max_length": 131072,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def make_hf_qwen(
    folder: Path,
    model: str = "qwen2",
    seed: int = 0,
    corpus: list[str] | None = None,
    tokenizer_vocab: int = 300,
    **overrides,
) -> Path:
    """A tiny random HF ``Qwen2ForCausalLM`` / ``Qwen3ForCausalLM`` with tokenizer files beside it (1-D parameters
    perturbed so biases and norms matter); the token ids of the config name the tokenizer's special tokens."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    folder = Path(folder)
    base = write_bpe_files(folder, vocab_size=tokenizer_vocab, corpus=corpus)
    write_tokenizer_config(folder, base)
    kwargs = {
        "vocab_size": tokenizer_vocab + 20,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "max_position_embeddings": 512,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "bos_token_id": base,  # <|endoftext|>
        "eos_token_id": base + 2,  # <|im_end|>
        "pad_token_id": base,
        **overrides,
    }
    cfg_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if model == "qwen2" else (Qwen3Config, Qwen3ForCausalLM)
    torch.manual_seed(seed)
    net = model_cls(cfg_cls(**kwargs)).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    net.save_pretrained(folder)
    return folder
