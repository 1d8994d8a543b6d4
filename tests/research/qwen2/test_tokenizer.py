"""Qwen2 tokenizers of the qwen2 plug-in (and the generic ``mf_ext.tokenization`` under them) against HF's.

Reference: HF ``transformers.Qwen2Tokenizer`` (Python BPE) and ``Qwen2TokenizerFast`` (converted by transformers from
the slow one, Rust BPE) on the same ``vocab.json`` / ``merges.txt``, a tiny byte-level BPE trained here with the
``tokenizers`` library and HF's own Qwen2 pre-tokenization regex. Two layouts: bare files (HF adds the special tokens
after the base vocabulary) and a folder with a Qwen2.5-style ``tokenizer_config.json`` listing added tokens (special
and non-special) with their ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.research.qwen2.qwen_files import CORPUS, NON_SPECIAL, SPECIALS, write_bpe_files, write_tokenizer_config

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "research" / "qwen2"

TEXTS = [
    *CORPUS[:7],
    "spaces   between  words    and trailing   ",
    "   leading spaces\n\n\n\nnewlines\t\ttabs \u00a0nbsp\u3000ideographic",
    "NFC: cafe\u0301 vs caf\u00e9, A\u030a, \u1100\u1161",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
    "text<|endoftext|>more <|im_end|>x",
    "not special: <|im_start |> <|unknown|> < |im_end| >",
    '<tool_call>\n{"name": "f"}\n</tool_call>',
    "",
    " ",
    "\n",
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``bare/`` holds vocab.json + merges.txt only; ``full/`` adds a Qwen2.5-style tokenizer_config.json."""
    root = tmp_path_factory.mktemp("qwen_tok")
    base = write_bpe_files(root / "bare")
    full = root / "full"
    full.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (full / name).write_bytes((root / "bare" / name).read_bytes())
    write_tokenizer_config(full, base)
    return {"bare": root / "bare", "full": full, "base": base}


def _hf(folder: Path, fast: bool, bare: bool):
    from transformers import Qwen2Tokenizer, Qwen2TokenizerFast

    if bare:  # HF's constructor adds <|endoftext|>; the other ChatML tokens are passed as specials
        slow = Qwen2Tokenizer(
            str(folder / "vocab.json"), str(folder / "merges.txt"), additional_special_tokens=SPECIALS[1:3]
        )
        return Qwen2TokenizerFast(__slow_tokenizer=slow, from_slow=True) if fast else slow
    return (Qwen2TokenizerFast if fast else Qwen2Tokenizer).from_pretrained(str(folder))


def _ours(folder: Path, kind: str):
    from research.qwen2.qwen2_tokenizer import Qwen2Tokenizer, Qwen2TokenizerFast

    vocab, merges = str(folder / "vocab.json"), str(folder / "merges.txt")
    if kind == "slow":
        return Qwen2Tokenizer(vocab, merges)
    return Qwen2TokenizerFast(vocab_file=vocab, merges_file=merges)


def _check_same(ours, theirs, texts=TEXTS):
    for text in texts:
        want = theirs(text)["input_ids"]
        got = ours(text)["input_ids"]
        assert list(got) == list(want), text
        for skip in (False, True):
            assert ours.decode(want, skip_special_tokens=skip) == theirs.decode(want, skip_special_tokens=skip), (
                text,
                skip,
            )


@pytest.mark.parametrize("layout", ["bare", "full"])
@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_ids_and_text_equal_hf(files, layout, kind):
    folder = files[layout]
    theirs = _hf(folder, fast=False, bare=layout == "bare")
    theirs_fast = _hf(folder, fast=True, bare=layout == "bare")
    ours = _ours(folder, kind)
    _check_same(ours, theirs)
    _check_same(ours, theirs_fast)
    n = files["base"]
    assert ours.convert_tokens_to_ids(SPECIALS[:3]) == [n, n + 1, n + 2]
    assert (ours.eos_token, ours.pad_token, ours.bos_token) == (theirs.eos_token, theirs.pad_token, None)
    if layout == "full":  # the non-special added tokens: kept as one token, kept when skipping specials
        assert ours.convert_tokens_to_ids(NON_SPECIAL) == [n + 4, n + 5]
        assert len(ours) == len(theirs) == n + 6


def test_fast_from_tokenizer_json_and_save_round_trip(files, tmp_path):
    from research.qwen2.qwen2_tokenizer import Qwen2Tokenizer, Qwen2TokenizerFast

    theirs = _hf(files["full"], fast=True, bare=False)
    theirs.save_pretrained(str(tmp_path / "hf"))
    ours = Qwen2TokenizerFast(tokenizer_file=str(tmp_path / "hf" / "tokenizer.json"), eos_token="<|im_end|>")
    _check_same(ours, theirs)
    slow = Qwen2Tokenizer(str(files["full"] / "vocab.json"), str(files["full"] / "merges.txt"))
    out = tmp_path / "saved"
    out.mkdir()
    slow.save_vocabulary(str(out))
    again = Qwen2Tokenizer(str(out / "vocab.json"), str(out / "merges.txt"))
    plain = [t for t in TEXTS if "<" not in t]
    assert [again(t)["input_ids"] for t in plain] == [slow(t)["input_ids"] for t in plain]


def test_yaml_tokenizer_and_chatml(files):
    """The predict YAML's tokenizer (auto_register) on HF files; the family's ChatML template renders Qwen's layout."""
    import mf_ext

    folder = files["full"]
    tok = mf_ext.load_tokenizer(
        str(PLUGIN / "predict.yaml"),
        str(PLUGIN),
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
    )
    theirs = _hf(folder, fast=False, bare=False)
    _check_same(tok, theirs)
    messages = [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
    )


def test_bad_files_fail_with_one_line(tmp_path, files):
    from mf_ext.errors import MfExtError
    from research.qwen2.qwen2_tokenizer import Qwen2Tokenizer

    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(MfExtError, match=r"merges_file .* line 2: expected two tokens"):
        Qwen2Tokenizer(str(files["bare"] / "vocab.json"), str(tmp_path / "merges.txt"))
    with pytest.raises(MfExtError, match=r"^vocab_file: not set \(expected the path of the model's vocab.json\)$"):
        Qwen2Tokenizer("", str(files["bare"] / "merges.txt"))
    with pytest.raises(MfExtError, match=r"merges_file '.*missing.txt': no such file"):
        Qwen2Tokenizer(str(files["bare"] / "vocab.json"), str(tmp_path / "missing.txt"))
    (tmp_path / "vocab.json").write_text("[1, 2]")
    with pytest.raises(MfExtError, match=r"vocab_file .*expected a JSON object"):
        Qwen2Tokenizer(str(tmp_path / "vocab.json"), str(files["bare"] / "merges.txt"))


@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_save_pretrained_reloads_in_ours_and_in_hf(files, tmp_path, kind):
    from transformers import AutoTokenizer

    ours = _ours(files["full"], kind)
    out = tmp_path / "saved"
    ours.save_pretrained(str(out), save_json=True)  # HF layout (MindFormers' default writes a MindFormers YAML)
    again = type(ours).from_pretrained(str(out))
    theirs = AutoTokenizer.from_pretrained(str(out))
    assert again.eos_token == theirs.eos_token == "<|im_end|>" and len(again) == len(ours) == len(theirs)
    _check_same(again, theirs)
    _check_same(ours, theirs)
