"""Our qwen2 ``.ckpt`` equals MindFormers' own Qwen2.5 converter's (``research/qwen2_5/convert_weight.py`` of
mindspore-lab/mindformers r1.8.0, read from the git mirror at test time, never committed) tensor for tensor: plain and
with ``qkv_concat`` (their ``convert_qkv_concat_weight``), tied and untied, fp32 and bf16.

The one difference, by design: for tied embeddings they write ``lm_head.weight`` as a copy of the embedding (checked
equal here); we leave it to the tie, and our reverse converter accepts their file (tests/convert/test_mindformers_parity.py
does the same for Llama). Skipped where the mirror is absent, as in CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

from tests.convert.convert_helpers import plugin, read_st_dir
from tests.hf_fixtures import make_hf_qwen2

ms = pytest.importorskip("mindspore")
MIRROR = Path(os.environ.get("MINDFORMERS_MIRROR", "/work/.mirror/mindspore-lab+mindformers/repo"))
TAG = "r1.8.0"


@pytest.fixture(scope="module")
def theirs(tmp_path_factory):
    if not MIRROR.exists() or shutil.which("git") is None:
        pytest.skip(f"MindFormers git mirror not found at {str(MIRROR)!r} (set MINDFORMERS_MIRROR)")
    out = subprocess.run(
        ["git", "-C", str(MIRROR), "show", f"{TAG}:research/qwen2_5/convert_weight.py"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        pytest.skip(f"cannot read {TAG}:research/qwen2_5/convert_weight.py: {out.stderr.strip()[:200]}")
    path = tmp_path_factory.mktemp("mf_qwen2_5") / "mf_qwen2_5_convert_weight.py"
    path.write_text(out.stdout)
    spec = importlib.util.spec_from_file_location("mf_qwen2_5_convert_weight", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _np(p) -> np.ndarray:
    return ms.ops.cast(p, ms.float32).asnumpy() if p.dtype == ms.bfloat16 else p.asnumpy()


@pytest.mark.parametrize(("tied", "dtype"), [(True, "float32"), (False, "bfloat16")])
def test_equals_mindformers_qwen2_5_converter(theirs, tmp_path, tied, dtype):
    src = make_hf_qwen2(tmp_path / "hf", num_heads=4, num_kv_heads=2, tie_word_embeddings=tied, dtype=dtype, seed=1)
    theirs.convert_pt_to_ms(str(src), str(tmp_path / "mf.ckpt"), dtype=getattr(ms, dtype))
    their_params = ms.load_checkpoint(str(tmp_path / "mf.ckpt"))
    cfg = json.loads((src / "config.json").read_text())
    model_config = types.SimpleNamespace(
        model_config={k: cfg[v] for k, v in (("num_heads", "num_attention_heads"), ("n_kv_heads", "num_key_value_heads"),
                                              ("hidden_size", "hidden_size"), ("intermediate_size", "intermediate_size"))}
    )  # fmt: skip
    for qkv_concat in (False, True):
        want = dict(their_params)
        if qkv_concat:
            want = theirs.convert_qkv_concat_weight(want, model_config)
        out = tmp_path / f"ours_{qkv_concat}.ckpt"
        plugin("qwen2").convert_pt_to_ms(src, out, dtype, qkv_concat=qkv_concat, progress=False)
        ours = ms.load_checkpoint(str(out))
        if tied:
            np.testing.assert_array_equal(
                _np(want.pop("lm_head.weight")), _np(want["model.tok_embeddings.embedding_weight"])
            )
        assert sorted(ours) == sorted(want), (qkv_concat, sorted(set(ours) ^ set(want)))
        assert any(".w_qkv.bias" in n for n in ours) == qkv_concat
        for name, p in want.items():
            assert ours[name].dtype == p.dtype, name
            np.testing.assert_array_equal(_np(ours[name]), _np(p), err_msg=f"{name} (qkv_concat={qkv_concat})")
    if tied:  # their file (with its lm_head copy) converts back to the original HF tensors
        plugin("qwen2").convert_ms_to_pt(tmp_path / "mf.ckpt", tmp_path / "back", hf_config=src / "config.json",
                                         progress=False)  # fmt: skip
        assert read_st_dir(tmp_path / "back") == read_st_dir(src)
