"""The DeepSeek families' tokenizers (a ``tokenizer.json`` through MindFormers' ``PreTrainedTokenizerFast``), built
from each family's predict.yaml, agree id for id with transformers' ``PreTrainedTokenizerFast`` on the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.sft_tokenizers import make_bpe_tokenizer_dir

REPO = Path(__file__).resolve().parents[3]
TEXTS = ["Multi-head latent attention compresses keys and values", "Why? 42 experts, 8 groups -- déjà vu.\n\n"]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_bpe_tokenizer_dir(tmp_path_factory.mktemp("tok") / "tok", vocab_size=300)


@pytest.mark.parametrize("family", ["deepseek2", "deepseek3"])
def test_tokenizer_matches_transformers(family, tok_dir, monkeypatch, tmp_path):
    from transformers import PreTrainedTokenizerFast

    import mf_ext

    monkeypatch.chdir(tmp_path)
    plugin = REPO / "research" / family
    ours = mf_ext.load_tokenizer(
        config=str(plugin / "predict.yaml"),
        register_path=str(plugin),
        vocab_file=str(tok_dir / "tokenizer.json"),
        tokenizer_file=str(tok_dir / "tokenizer.json"),
    )
    assert type(ours).__module__.endswith(f"{family}_tokenizer")
    theirs = PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"))
    for text in TEXTS:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == theirs.encode(text, add_special_tokens=False)
        assert ours.decode(ids) == text
