"""GLM-4 tokenizers against independent references, on a tiny byte-level BPE trained here.

The reference ``tokenizer.json`` is trained with HF ``tokenizers`` using GLM-4's pre-tokenization (regex from
``tokenization_chatglm.py`` of https://huggingface.co/THUDM/glm-4-9b-chat, written out below, not imported from our
code), GLM-4's special tokens after the base vocabulary and the ``[gMASK]<sop>`` prefix; THUDM's ``tokenizer.model``
(``<base64 bytes> <rank>`` lines) is written from the same vocabulary with transformers' GPT-2 byte table.
``transformers.PreTrainedTokenizerFast`` on the json and MindFormers' own ``ChatGLM4Tokenizer`` on the tiktoken file
are the references.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PAT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIALS = [
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>", "<|assistant|>",
    "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
]  # fmt: skip
CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 2024, and we'll see 12345 apples!",
    "def main():\n    print('hello world')  # comment\n\n\treturn 0\n",
    "晚上睡不着应该怎么办？多喝热水，早点休息。你好，世界！",
    "Numbers: 3.14159, 2718281828, 1,000,000 and emoji 🙂 done.",
] * 20
TEXTS = [
    "The lazy fox's 2024 apples",
    "  leading spaces and\ttabs\n\nnew lines   ",
    "你好世界，晚上早点休息",
    "print('x')  # 12345678",
    "[gMASK]<sop><|user|>\nHello 🙂<|assistant|>\n",
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PAT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    base = tok.get_vocab_size()
    tok.add_special_tokens(SPECIALS)
    tok.post_processor = processors.TemplateProcessing(
        single="[gMASK]:0 <sop>:0 $A:0",
        special_tokens=[("[gMASK]", base + 2), ("<sop>", base + 4)],
    )
    out = tmp_path_factory.mktemp("glm4_tok")
    tok.save(str(out / "tokenizer.json"))
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    vocab = tok.get_vocab()
    with open(out / "tokenizer.model", "wb") as f:
        for token, rank in sorted(vocab.items(), key=lambda kv: kv[1]):
            if rank < base:
                f.write(base64.b64encode(bytes(byte_of[c] for c in token)) + b" " + str(rank).encode() + b"\n")
    return out, base


@pytest.fixture(scope="module")
def tokenizers(files):
    from transformers import PreTrainedTokenizerFast

    from mf_ext.registry import load_plugin

    out, _ = files
    mod = load_plugin(str(REPO / "research" / "glm4")).import_module("glm4_tokenizer")
    hf = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    return hf, mod.Glm4Tokenizer(str(out / "tokenizer.model")), mod.Glm4TokenizerFast(str(out / "tokenizer.json"))


@pytest.mark.parametrize("text", TEXTS)
def test_ids_equal_hf_fast_tokenizer(tokenizers, files, text):
    hf, slow, fast = tokenizers
    _, base = files
    want = hf(text)["input_ids"]
    assert want[:2] == [base + 2, base + 4]  # [gMASK] <sop>
    assert slow(text)["input_ids"] == want
    assert fast(text)["input_ids"] == want
    plain = hf(text, add_special_tokens=False)["input_ids"]
    assert (
        slow(text, add_special_tokens=False)["input_ids"] == plain == fast(text, add_special_tokens=False)["input_ids"]
    )
    for ours in (slow, fast):
        assert ours.decode(want) == hf.decode(want)
        assert ours.decode(want, skip_special_tokens=True) == hf.decode(want, skip_special_tokens=True)


def test_plain_text_ids_equal_mindformers_chatglm4_tokenizer(tokenizers, files, monkeypatch, tmp_path):
    from mindformers.models.glm2.glm4_tokenizer import ChatGLM4Tokenizer

    monkeypatch.chdir(tmp_path)
    out, _ = files
    _, slow, _ = tokenizers
    theirs = ChatGLM4Tokenizer(str(out / "tokenizer.model"))
    for text in TEXTS[:4]:
        assert slow(text, add_special_tokens=False)["input_ids"] == theirs.encode(text, add_special_tokens=False)


def test_special_tokens_follow_the_base_vocabulary(tokenizers, files, tmp_path):
    _, slow, fast = tokenizers
    out, base = files
    assert len(slow) == base + len(SPECIALS) and slow.vocab_size == base
    assert slow.convert_tokens_to_ids("<|endoftext|>") == base == slow.eos_token_id == slow.pad_token_id
    assert fast.convert_tokens_to_ids("<|user|>") == base + 7
    saved = slow.save_vocabulary(str(tmp_path))[0]
    assert Path(saved).read_bytes() == (out / "tokenizer.model").read_bytes()


def test_bad_vocab_file_is_one_line_error(tmp_path):
    from mf_ext.registry import load_plugin

    mod = load_plugin(str(REPO / "research" / "glm4")).import_module("glm4_tokenizer")
    bad = tmp_path / "tokenizer.model"
    bad.write_bytes(b"IQ== 0\nnot-base64! 1\n")
    with pytest.raises(ValueError, match=r"tokenizer.model:2: malformed line"):
        mod.Glm4Tokenizer(str(bad))
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        mod.Glm4TokenizerFast(str(tmp_path / "missing.json"))
