"""Llama 3 tokenizers of the llama3_1 plug-in against independent references.

References: HF ``transformers.PreTrainedTokenizerFast`` loading the same ``tokenizer.json`` (Rust BPE), plain
``tiktoken`` with Meta's recipe (regex + ranks + specials), Meta's published special-token ids, and the Llama 3
prompt format written out by hand.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "research" / "llama3_1"
DEMO = PLUGIN / "demo"
DEMO_VOCAB = DEMO / "tokenizer.model"
DEMO_HF = DEMO / "hf"

MIXED = [
    "Hello world! The light is burning.",
    "I'LL go, you'd better not; they've said it's FINE. Don't.",
    "在海边的一个小岛上，有一座白色的灯塔。灯塔里住着一位老守塔人。",
    "日本語のテキストと한국어 텍스트, Ελληνικά, русский текст, العربية",
    "def f(x):\n\treturn x ** 2  # square\n\n\nclass A:\n    pass\r\n",
    'if (a != b && c >= 0) { printf("%d\\n", a); }',
    "emoji 🌊🗼🤖 family 👨‍👩‍👧‍👦 flags 🇨🇳🇫🇷 skin 👍🏽",
    "numbers 1 12 123 1234 12345 3.14159 -42 1e-5 0x1F 2026-11-22",
    "spaces   between  words    and trailing   ",
    "   leading spaces\n\n\n\nnewlines\t\ttabs \u00a0nbsp\u3000ideographic",
    "<|begin_of_text|>system<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
    "text before<|reserved_special_token_7|>and after <|python_tag|> x<|eom_id|>",
    "not special: <|begin_of_text |> <|unknown|> < |eot_id| >",
    "combining: e\u0301 a\u0308 \u0915\u094d\u0937 zero\u200bwidth",
    "",
    " ",
    "\n",
    "a" * 300,
    "The Lighthouse Keeper and the Little Robot\n\nChapter One\n\nOn a small island",
]


@pytest.fixture(scope="module")
def tokmod():
    from mf_ext.registry import load_plugin

    return load_plugin(str(PLUGIN)).import_module("llama3_1_tokenizer")


def _train_mixed_bpe(tokmod, tmp: Path) -> tuple[Path, Path]:
    """A second vocabulary with many multi-byte merges (Chinese, emoji, code), trained here in < 1 s."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    text = "\n".join(MIXED * 3) + (DEMO / "corpus.txt").read_text(encoding="utf-8")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(tokmod.LLAMA3_PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=700, min_frequency=2, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([text], trainer=trainer)
    # Give the bytes a scrambled rank order (as Meta's file does: byte tokens are not ranks 0..255 in byte order).
    ranks = {bytes([b]): i for i, b in enumerate(sorted(range(256), key=lambda b: (b * 37) % 256))}
    for left, right in json.loads(tok.to_str())["model"]["merges"]:
        merged = tokmod.token_str_to_bytes(left) + tokmod.token_str_to_bytes(right)
        ranks.setdefault(merged, len(ranks))
    vocab = tmp / "tokenizer.model"
    tokmod.write_tiktoken_bpe_file(ranks, vocab)
    tj = tmp / "tokenizer.json"
    tokmod.tiktoken_to_hf_tokenizer(ranks).save(str(tj))
    return vocab, tj


@pytest.fixture(scope="module", params=["demo", "mixed"])
def vocab_pair(request, tokmod, tmp_path_factory):
    """(tiktoken file, tokenizer.json) of the committed demo, and of a vocabulary trained in the test."""
    if request.param == "demo":
        return DEMO_VOCAB, DEMO_HF / "tokenizer.json"
    return _train_mixed_bpe(tokmod, tmp_path_factory.mktemp("mixed_bpe"))


@pytest.fixture(scope="module")
def tokenizers(tokmod, vocab_pair):
    from transformers import PreTrainedTokenizerFast

    vocab, tj = vocab_pair
    hf = PreTrainedTokenizerFast(tokenizer_file=str(tj), bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")
    return {
        "slow": tokmod.Llama3Tokenizer(str(vocab)),
        "fast_json": tokmod.Llama3TokenizerFast(tokenizer_file=str(tj)),
        "fast_tiktoken": tokmod.Llama3TokenizerFast(vocab_file=str(vocab)),
        "hf": hf,
    }


def _meta_tiktoken(tokmod, vocab: Path):
    """Meta's own recipe: plain tiktoken with the Llama 3 regex and the special tokens after the base vocab."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(vocab))
    specials = {t: len(ranks) + i for i, t in enumerate(tokmod.llama3_special_tokens())}
    return tiktoken.Encoding("meta", pat_str=tokmod.LLAMA3_PAT_STR, mergeable_ranks=ranks, special_tokens=specials)


@pytest.mark.parametrize("add_special_tokens", [True, False])
def test_ids_equal_hf_fast(tokenizers, add_special_tokens):
    hf = tokenizers["hf"]
    for text in MIXED:
        want = hf(text, add_special_tokens=add_special_tokens)["input_ids"]
        for name in ("slow", "fast_json", "fast_tiktoken"):
            got = tokenizers[name](text, add_special_tokens=add_special_tokens)["input_ids"]
            assert got == want, f"{name} differs from HF on {text[:40]!r}"


def test_ids_equal_meta_tiktoken(tokmod, tokenizers, vocab_pair):
    enc = _meta_tiktoken(tokmod, vocab_pair[0])
    bos = enc.encode("<|begin_of_text|>", allowed_special="all")
    for text in MIXED:
        want = bos + enc.encode(text, allowed_special="all")
        assert tokenizers["slow"](text)["input_ids"] == want, text[:40]
        assert tokenizers["hf"](text)["input_ids"] == want, text[:40]


def test_ids_equal_transformers_tiktoken_converter(tokmod, tokenizers, vocab_pair):
    """transformers' own tiktoken -> tokenizers conversion (TikTokenConverter) gives the same ids as ours."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ref = TikTokenConverter(
        vocab_file=str(vocab_pair[0]),
        pattern=tokmod.LLAMA3_PAT_STR,
        additional_special_tokens=tokmod.llama3_special_tokens(),
    ).converted()
    for text in MIXED:
        want = ref.encode(text).ids
        assert tokenizers["slow"](text, add_special_tokens=False)["input_ids"] == want, text[:40]
        assert tokenizers["fast_tiktoken"](text, add_special_tokens=False)["input_ids"] == want, text[:40]


def test_ids_equal_hf_fast_random_text(tokenizers):
    """Random unicode text (no surrogates) over letters, digits, punctuation, spaces, CJK and emoji."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    alphabet = st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(list(" \n\t\r'sSlLdDtT0123456789.,!?-_(){}<|>") + ["灯", "塔", "🌊", "é", "\u200d"]),
    )
    specials = st.sampled_from(
        ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|reserved_special_token_9|>"]
    )
    text_st = st.lists(st.one_of(st.text(alphabet, max_size=30), specials), max_size=6).map("".join)
    hf, slow, fast = tokenizers["hf"], tokenizers["slow"], tokenizers["fast_json"]

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(text_st)
    def check(text):
        want = hf(text)["input_ids"]
        assert slow(text)["input_ids"] == want
        assert fast(text)["input_ids"] == want
        assert slow.decode(want) == hf.decode(want)

    check()


def test_round_trip(tokenizers):
    for name in ("slow", "fast_json", "fast_tiktoken"):
        tok = tokenizers[name]
        for text in MIXED:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert tok.decode(ids) == text, f"{name}: {text[:40]!r}"
            with_bos = tok(text)["input_ids"]
            assert with_bos[0] == tok.bos_token_id
            assert tok.decode(with_bos) == "<|begin_of_text|>" + text


def test_decode_matches_hf(tokenizers):
    hf, slow = tokenizers["hf"], tokenizers["slow"]
    for text in MIXED:
        ids = hf(text)["input_ids"]
        for skip in (False, True):
            assert slow.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip), text[:40]
    # a 4-byte emoji split across tokens decodes as U+FFFD on both sides when cut in the middle
    ids = slow("🤖", add_special_tokens=False)["input_ids"]
    if len(ids) > 1:
        assert slow.decode(ids[:1]) == hf.decode(ids[:1])


def test_special_token_ids_follow_meta_layout(tokmod):
    """Meta's Llama 3.1 tokenizer.model has 128000 base tokens; its published special ids must come out."""
    specials = tokmod.llama3_special_tokens()
    ids = {t: 128000 + i for i, t in enumerate(specials)}
    assert len(specials) == 256
    assert ids["<|begin_of_text|>"] == 128000
    assert ids["<|end_of_text|>"] == 128001
    assert ids["<|finetune_right_pad_id|>"] == 128004
    assert ids["<|start_header_id|>"] == 128006
    assert ids["<|end_header_id|>"] == 128007
    assert ids["<|eom_id|>"] == 128008
    assert ids["<|eot_id|>"] == 128009
    assert ids["<|python_tag|>"] == 128010
    assert ids["<|reserved_special_token_3|>"] == 128011
    assert specials[-1] == "<|reserved_special_token_247|>"
    assert len(set(specials)) == 256


def test_vocab_and_specials(tokenizers):
    slow, hf = tokenizers["slow"], tokenizers["hf"]
    assert len(slow) == len(hf)
    assert slow.get_vocab() == hf.get_vocab()
    base = slow.vocab_size
    assert slow.convert_tokens_to_ids("<|eot_id|>") == base + 9 == hf.convert_tokens_to_ids("<|eot_id|>")
    assert slow.bos_token_id == base and slow.eos_token_id == base + 1
    assert slow.convert_ids_to_tokens(slow("Hello world")["input_ids"]) == hf.convert_ids_to_tokens(
        hf("Hello world")["input_ids"]
    )


def _llama3_prompt_by_hand(messages, add_generation_prompt):
    """Llama 3 prompt format as documented by Meta, written out without Jinja."""
    out = "<|begin_of_text|>"
    for m in messages:
        out += f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
    if add_generation_prompt:
        out += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return out


CHATS = [
    [{"role": "user", "content": "Who keeps the light?"}],
    [
        {"role": "system", "content": "  You are a lighthouse keeper.\n"},
        {"role": "user", "content": "灯塔在哪里？ 🌊"},
        {"role": "assistant", "content": "On the island."},
        {"role": "user", "content": "def f():\n    return 1"},
    ],
]


@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template(tokmod, add_generation_prompt):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(DEMO_HF))  # the HF folder's tokenizer_config.json chat_template
    ours = [
        tokmod.Llama3Tokenizer(str(DEMO_VOCAB)),
        tokmod.Llama3TokenizerFast(tokenizer_file=str(DEMO_HF / "tokenizer.json")),
    ]
    for chat in CHATS:
        want = _llama3_prompt_by_hand(chat, add_generation_prompt)
        assert hf.apply_chat_template(chat, tokenize=False, add_generation_prompt=add_generation_prompt) == want
        want_ids = hf(want, add_special_tokens=False)["input_ids"]
        assert hf.apply_chat_template(chat, add_generation_prompt=add_generation_prompt) == want_ids
        for tok in ours:
            assert tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=add_generation_prompt) == want
            assert tok.apply_chat_template(chat, add_generation_prompt=add_generation_prompt) == want_ids


def test_save_vocabulary_round_trip(tokmod, tmp_path):
    tok = tokmod.Llama3Tokenizer(str(DEMO_VOCAB))
    (path,) = tok.save_vocabulary(str(tmp_path))
    assert Path(path).read_bytes() == DEMO_VOCAB.read_bytes()
    fast = tokmod.Llama3TokenizerFast(tokenizer_file=str(DEMO_HF / "tokenizer.json"))
    (tj,) = fast.save_vocabulary(str(tmp_path))
    again = tokmod.Llama3TokenizerFast(tokenizer_file=tj)
    for text in MIXED:
        assert again(text)["input_ids"] == tok(text)["input_ids"]


@pytest.mark.parametrize("cls_name", ["Llama3Tokenizer", "Llama3TokenizerFast"])
def test_save_pretrained_from_pretrained(tokmod, tmp_path, cls_name):
    cls = getattr(tokmod, cls_name)
    tok = cls(str(DEMO_VOCAB))
    tok.save_pretrained(str(tmp_path), save_json=True)
    again = cls.from_pretrained(str(tmp_path))
    assert len(again) == len(tok) and again.eos_token_id == tok.eos_token_id
    for text in MIXED:
        assert again(text)["input_ids"] == tok(text)["input_ids"]


def test_demo_tokenizer_json_is_derived_from_tokenizer_model(tokmod):
    """The committed tokenizer.json is exactly what the converter makes from the committed tokenizer.model."""
    ranks = tokmod.load_tiktoken_bpe_file(DEMO_VOCAB)
    made = json.loads(tokmod.tiktoken_to_hf_tokenizer(ranks).to_str())
    committed = json.loads((DEMO_HF / "tokenizer.json").read_text(encoding="utf-8"))
    assert made == committed
    cfg = json.loads((DEMO_HF / "config.json").read_text())
    assert cfg["vocab_size"] == len(ranks) + 256
    assert cfg["bos_token_id"] == len(ranks) and cfg["eos_token_id"] == len(ranks) + 1


# --- building through MindFormers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls_name, files",
    [
        ("Llama3Tokenizer", {"vocab_file": DEMO_VOCAB}),
        ("Llama3TokenizerFast", {"vocab_file": DEMO_VOCAB}),
        ("Llama3TokenizerFast", {"vocab_file": DEMO_HF / "tokenizer.json"}),
        ("Llama3TokenizerFast", {"vocab_file": None, "tokenizer_file": DEMO_HF / "tokenizer.json"}),
    ],
)
def test_build_tokenizer_from_yaml_dict(cls_name, files):
    """auto_register resolved by mf_ext's registry, then MindFormers' own build_tokenizer builds the class."""
    from mindformers.models.build_tokenizer import build_tokenizer
    from transformers import PreTrainedTokenizerFast

    from mf_ext.registry import resolve_auto_register

    tok_cfg = {"type": cls_name, "auto_register": f"llama3_1_tokenizer.{cls_name}"}
    tok_cfg.update({k: (None if v is None else str(v)) for k, v in files.items()})
    cfg = {"processor": {"tokenizer": tok_cfg}}
    resolved, entries = resolve_auto_register(cfg, str(PLUGIN))
    assert [e.cls.__name__ for e in entries] == [cls_name]
    assert "auto_register" in cfg["processor"]["tokenizer"]  # the caller's config is left alone
    tok = build_tokenizer(resolved["processor"]["tokenizer"])
    assert type(tok).__name__ == cls_name
    hf = PreTrainedTokenizerFast(tokenizer_file=str(DEMO_HF / "tokenizer.json"))
    for text in MIXED:
        assert tok(text)["input_ids"] == hf(text)["input_ids"]


def test_predict_demo_yaml_tokenizer():
    """The shipped demo YAML's tokenizer builds through mf_ext's loader (paths relative to the YAML)."""
    import mf_ext

    yaml_path = PLUGIN / "predict_demo.yaml"
    if not yaml_path.exists():
        pytest.fail(f"{yaml_path} is missing")
    tok = mf_ext.load_tokenizer(config=str(yaml_path), register_path=str(PLUGIN))
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(DEMO_HF))
    for text in MIXED:
        assert tok(text)["input_ids"] == hf(text)["input_ids"]


# --- bad input -------------------------------------------------------------------------------------------------


def test_missing_vocab_file(tokmod, tmp_path):
    missing = tmp_path / "nope" / "tokenizer.model"
    with pytest.raises(FileNotFoundError, match=r"vocab_file '.*nope/tokenizer\.model' not found"):
        tokmod.Llama3Tokenizer(str(missing))
    with pytest.raises(FileNotFoundError, match=r"tokenizer_file '.*nope\.json' not found"):
        tokmod.Llama3TokenizerFast(tokenizer_file=str(tmp_path / "nope.json"))


def _copy_with_line(tmp_path: Path, lineno: int, line: bytes) -> Path:
    lines = DEMO_VOCAB.read_bytes().splitlines(keepends=True)
    lines[lineno - 1] = line
    out = tmp_path / "tokenizer.model"
    out.write_bytes(b"".join(lines))
    return out


@pytest.mark.parametrize(
    "line, message",
    [
        (b"IQ==\n", r"malformed tiktoken BPE line 'IQ=='"),  # rank missing
        (b"IQ== notanumber\n", r"malformed tiktoken BPE line 'IQ== notanumber'"),
        (b"%%%% 2\n", r"malformed tiktoken BPE line '%%%% 2'"),  # not base64
        (b"IQ== 2 extra\n", r"malformed tiktoken BPE line"),
    ],
)
def test_malformed_line_names_file_and_line(tokmod, tmp_path, line, message):
    bad = _copy_with_line(tmp_path, 3, line)
    with pytest.raises(ValueError, match=rf"^{str(bad)}:3: {message}.*expected '<base64 token> <rank>'") as exc:
        tokmod.Llama3Tokenizer(str(bad))
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match=rf"^{str(bad)}:3: "):
        tokmod.Llama3TokenizerFast(vocab_file=str(bad))


def test_duplicate_token_and_rank_gap(tokmod, tmp_path):
    first = DEMO_VOCAB.read_bytes().splitlines()[0].split()[0]
    dup = _copy_with_line(tmp_path, 5, first + b" 4\n")
    with pytest.raises(ValueError, match=rf"^{str(dup)}:5: token .* appears twice"):
        tokmod.load_tiktoken_bpe_file(dup)
    lines = DEMO_VOCAB.read_bytes().splitlines(keepends=True)
    gap = tmp_path / "gap.model"
    gap.write_bytes(b"".join(lines[:10] + lines[11:]))
    with pytest.raises(ValueError, match=rf"^{str(gap)}: ranks must be 0\.\.\d+ without gaps, rank 10 is missing"):
        tokmod.load_tiktoken_bpe_file(gap)
    nobytes = tmp_path / "nobytes.model"
    nobytes.write_bytes(base64.b64encode(b"ab") + b" 0\n")
    with pytest.raises(ValueError, match="needs all 256 single bytes"):
        tokmod.load_tiktoken_bpe_file(nobytes)


def test_unknown_special_token_argument(tokmod):
    with pytest.raises(ValueError, match=r"eos_token='<\|im_end\|>' is not a Llama 3 special token"):
        tokmod.Llama3Tokenizer(str(DEMO_VOCAB), eos_token="<|im_end|>")


def test_bad_tokenizer_json(tokmod, tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(
        ValueError, match=rf"tokenizer_file '{tmp_path}/tokenizer\.json' is not a valid tokenizer\.json"
    ):
        tokmod.Llama3TokenizerFast(tokenizer_file=str(bad))


def test_demo_artifacts_small():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024, f"demo artifacts are {total} bytes"
