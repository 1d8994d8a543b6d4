"""Baichuan2 MindSpore -> HF converter (MindFormers' ``convert_reversed.py`` entry point, streamed).

Writes Baichuan2's layout (``W_pack``, ``lm_head``) with a ``config.json`` naming the position encoding. Derived from
the same ``weight_map.SPEC`` as ``convert_weight``.

    mf-ext convert ms_to_hf --model baichuan2 --input_path baichuan2_7b.ckpt --output_path HF_DIR
"""

from __future__ import annotations

from mf_ext.convert import ms_to_hf

from .weight_map import SPEC


def convert_ms_to_pt(input_path, output_path, dtype=None, **kw):
    """Convert the MindSpore checkpoint at ``input_path`` to an HF folder at ``output_path``; the architecture comes
    from the ``config.json`` kept beside the checkpoint, ``hf_config=`` or ``ms_config=`` (YAML / model_config)."""
    return ms_to_hf(SPEC, input_path, output_path, dtype, **kw)
