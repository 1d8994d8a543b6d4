"""Baichuan2 HF -> MindSpore converter (MindFormers' ``convert_weight.py`` entry point, streamed).

Reads the Hub checkpoint (safetensors or ``pytorch_model*.bin``: ``W_pack`` split into ``wq/wk/wv``, the NormHead's
raw ``lm_head.weight`` unchanged); writes a MindSpore ``.ckpt`` (or MindSpore-named safetensors) plus the source
``config.json`` beside it. The mapping is ``weight_map.SPEC``.

    mf-ext convert hf_to_ms --model baichuan2 --input_path Baichuan2-7B-Base --output_path baichuan2_7b.ckpt
"""

from __future__ import annotations

from mf_ext.convert import hf_to_ms

from .weight_map import SPEC


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the checkpoint at ``input_path`` to MindSpore at ``output_path`` (``dtype=None`` keeps the source
    dtype). Keyword options: ``format="ckpt"|"safetensors"``, ``qkv_concat=False`` (True: ``W_pack`` whole as
    ``attention.w_qkv``), ``dry_run=False``, ``hf_config=None``, ``progress=True``."""
    return hf_to_ms(SPEC, input_path, output_path, dtype, **kw)
