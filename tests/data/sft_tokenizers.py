"""Small tokenizers (shared by tests/data and tests/train: ``from tests.data.sft_tokenizers import ...``) with the Llama 3 special tokens, built in the test (no network, vocab <= 512)."""

from __future__ import annotations

import json
from pathlib import Path

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
FAMILY_DIR = Path(__file__).resolve().parents[2] / "research" / "llama3_1"
DEMO_DATA = FAMILY_DIR / "demo_data" / "alpaca_demo.json"


def family_chat_template() -> str:
    """The Llama family's declared chat template (these tokenizers carry none, as many converted ones do)."""
    from mf_ext.registry import load_plugin

    return load_plugin(FAMILY_DIR).family.chat_template


def make_wordlevel_tokenizer(words: list[str]):
    """One token per word, space, punctuation mark and "\\n\\n", so expected ids can be written by hand.

    ids: the 5 Llama 3 specials are 0..4 (in LLAMA3_SPECIALS order), "<unk>" 5, "\\n\\n" 6, " " 7, then ``words``.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(LLAMA3_SPECIALS + ["<unk>", "\n\n", " "] + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r"\n\n|\w+|[^\w\s]| "), behavior="isolated")
    tk.add_special_tokens([AddedToken(t, special=True) for t in LLAMA3_SPECIALS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", unk_token="<unk>"
    )


LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def make_bpe_tokenizer_dir(
    path: Path, vocab_size: int = 384, corpus_file: Path = DEMO_DATA, pretokenizer: str = "llama3"
) -> Path:
    """Train a byte-level BPE on the demo data and save it as an HF tokenizer folder (no chat template: the
    family's ``chat_template`` is the fallback). ``pretokenizer="llama3"`` splits text with Llama 3's
    pattern (as Meta's tokenizer.json does); ``"gpt2"`` with GPT-2's, which is not prefix-stable at ``\n\n``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rows = json.loads(corpus_file.read_text())
    text = [" ".join(r.get(k, "") for k in ("system", "instruction", "input", "output")) for r in rows]
    text += ["user assistant system\n\n"] * 20
    tk = Tokenizer(models.BPE())
    if pretokenizer == "llama3":
        tk.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=LLAMA3_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tk.train_from_iterator(text, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|end_of_text|>"
    )
    fast.save_pretrained(str(path))
    return path
