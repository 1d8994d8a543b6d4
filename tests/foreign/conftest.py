from types import SimpleNamespace

import pytest

from tests.foreign.foreign_helpers import make_hf, make_tokenizer_json


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tokenizer.json built with `tokenizers` and a tiny random HF Llama of a vocabulary that covers it."""
    base = tmp_path_factory.mktemp("foreign_tiny")
    return SimpleNamespace(tok=make_tokenizer_json(base / "tok" / "tokenizer.json"), hf=make_hf(base / "hf"))
