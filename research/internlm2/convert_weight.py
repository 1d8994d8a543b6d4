"""InternLM2 / InternLM HF -> MindSpore converter (MindFormers' ``convert_weight.py`` entry point, streamed).

Reads the Hub checkpoint (safetensors or ``pytorch_model*.bin``; InternLM2's fused ``wqkv`` or InternLM's Llama
names, told apart by ``config.json`` ``model_type``); writes a MindSpore ``.ckpt`` (or MindSpore-named safetensors)
plus the source ``config.json`` beside it. The mapping is ``weight_map.SPEC``.

    mf-ext convert hf_to_ms --model internlm2 --input_path internlm2-chat-7b --output_path internlm2.ckpt
"""

from __future__ import annotations

from mf_ext.convert import hf_to_ms

from .weight_map import SPEC


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the checkpoint at ``input_path`` to MindSpore at ``output_path`` (``dtype=None`` keeps the source
    dtype). Keyword options: ``format="ckpt"|"safetensors"``, ``qkv_concat=False`` (True: fused ``attention.w``),
    ``dry_run=False``, ``hf_config=None``, ``progress=True``."""
    return hf_to_ms(SPEC, input_path, output_path, dtype, **kw)
