"""GLM-family source -> MindSpore converter (MindFormers' ``convert_weight.py`` entry point, streamed).

Reads HF transformers' ``GlmForCausalLM`` checkpoints and THUDM's remote-code ChatGLM ones (``chatglm2-6b``,
``chatglm3-6b``, ``glm-4-9b(-chat)``; told apart by ``config.json``'s ``model_type``), safetensors or
``pytorch_model*.bin``; writes a MindSpore ``.ckpt`` (default) or a MindSpore-named safetensors folder, plus the
source ``config.json`` beside it. The mappings are ``weight_map.SPEC`` / ``weight_map.CHATGLM_SPEC``.

    mf-ext convert hf_to_ms --model glm4 --input_path HF_DIR --output_path glm4.ckpt [--dtype bfloat16]
"""

from __future__ import annotations

import json
from pathlib import Path

from mf_ext.convert import hf_to_ms
from mf_ext.convert.errors import ConversionError

from .weight_map import spec_for


def source_config(input_path, hf_config=None) -> dict:
    """The ``config.json`` dict of the source: ``hf_config`` (dict or path) if given, else the one beside the weights
    (``{}`` when there is none: the engine then names what is missing)."""
    if isinstance(hf_config, dict):
        return hf_config
    path = Path(hf_config) if hf_config is not None else None
    if path is None:
        inp = Path(input_path)
        path = (inp if inp.is_dir() else inp.parent) / "config.json"
        if not path.is_file():
            return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConversionError(f"{str(path)!r}: cannot read the model config ({e})") from None


def convert_pt_to_ms(input_path, output_path, dtype=None, **kw):
    """Convert the GLM checkpoint at ``input_path`` (HF ``GlmForCausalLM`` or ChatGLM) to MindSpore at ``output_path``.

    ``dtype``: output dtype (``None`` keeps the source dtype). Keyword options: ``format="ckpt"|"safetensors"``,
    ``dry_run=False``, ``hf_config=None`` (config.json path or dict overriding the one in ``input_path``),
    ``progress=True``. Returns the engine's result (or the plan for ``dry_run``).
    """
    spec = spec_for(source_config(input_path, kw.get("hf_config")))
    return hf_to_ms(spec, input_path, output_path, dtype, **kw)
