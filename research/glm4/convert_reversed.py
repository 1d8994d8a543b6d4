"""GLM-family MindSpore -> HF converter (MindFormers' ``convert_reversed.py`` entry point, streamed).

Writes HF transformers' ``GlmForCausalLM`` layout (safetensors + index + ``config.json`` +
``generation_config.json``) by default, or THUDM's ChatGLM layout with ``layout="chatglm"``; the architecture comes
from the ``config.json`` kept beside the checkpoint (either format), ``hf_config=`` or ``ms_config=``.

    mf-ext convert ms_to_hf --model glm4 --input_path glm4.ckpt --output_path HF_DIR
"""

from __future__ import annotations

import json

from mf_ext.convert import ms_to_hf
from mf_ext.convert.engine import find_source_config
from mf_ext.convert.errors import ConversionError

from .hf_config import chatglm_to_hf, hf_to_chatglm, is_chatglm
from .weight_map import CHATGLM_SPEC, SPEC

LAYOUTS = ("hf", "chatglm")


def _sidecar(input_path) -> dict | None:
    path = find_source_config(input_path)
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConversionError(f"{str(path)!r}: cannot read the model config ({e})") from None


def convert_ms_to_pt(input_path, output_path, dtype=None, layout="hf", **kw):
    """Convert the MindSpore checkpoint at ``input_path`` to an HF folder at ``output_path``.

    ``layout``: ``"hf"`` (``GlmForCausalLM``) or ``"chatglm"`` (THUDM's remote-code names and ``config.json``).
    ``dtype=None`` keeps the checkpoint's dtype.
    """
    if layout not in LAYOUTS:
        raise ConversionError(f"layout {layout!r} is not known; expected one of {LAYOUTS}")
    cfg = kw.pop("hf_config", None)
    if cfg is not None and not isinstance(cfg, dict):
        try:
            cfg = json.loads(open(cfg).read())  # noqa: SIM115 - one small JSON file
        except (OSError, ValueError) as e:
            raise ConversionError(f"{str(cfg)!r}: cannot read the model config ({e})") from None
    if cfg is None and kw.get("ms_config") is None:
        cfg = _sidecar(input_path)
    if cfg is not None:  # either format's config.json, translated to the layout written
        if layout == "chatglm" and not is_chatglm(cfg):
            cfg = hf_to_chatglm(cfg)
        elif layout == "hf" and is_chatglm(cfg):
            cfg = chatglm_to_hf(cfg)
        kw["hf_config"] = cfg
    return ms_to_hf(CHATGLM_SPEC if layout == "chatglm" else SPEC, input_path, output_path, dtype, **kw)
