"""GPT2 weight mapping: HF ``GPT2LMHeadModel`` names <-> this folder's model (mf-ext's shared-block names), as data.

HF GPT2 keeps its projections in ``Conv1D`` modules whose weights are stored ``(in, out)``: every weight is
transposed to MindSpore's ``(out, in)`` (:class:`Transpose`, its own inverse). ``attn.c_attn`` stays fused as
``attention.w_qkv`` -- ``[q; k; v]`` rows after the transpose, the "stacked" layout the model splits -- with its
bias. LayerNorms are ``gamma``/``beta``; the learned position table is ``model.pos_embeddings``; the head is tied
to ``wte`` (``tie_word_embeddings``, GPT2's default), an untied ``lm_head.weight`` is kept. The causal-mask buffers
older checkpoints carry (``attn.bias``, ``attn.masked_bias``) are not weights and are dropped.

Two HF spellings: ``SPEC`` reads GPT2LMHeadModel's names (``transformer.h.{L}...``, what ``save_pretrained``
writes); ``SPEC_GPT2MODEL`` reads GPT2Model's bare names (``h.{L}...``, ``wte.weight``), the layout of the original
OpenAI release files (openai-community/gpt2) and of MindFormers' GPT2 converter input. ``convert_weight.py`` picks
one from the checkpoint's tensor names; ms->hf always writes GPT2LMHeadModel's.
"""

from __future__ import annotations

from mf_ext.convert.spec import Drop, Rename, Spec, Transpose

from .hf_config import to_hf_config as hf_config_from_ms

MS = "model.layers.{L}."
T = Transpose()


def rules(prefix: str) -> tuple:
    """The mapping for HF names under ``prefix`` (``"transformer."`` for GPT2LMHeadModel, ``""`` for GPT2Model)."""
    h = prefix + "h.{L}."
    return (
        Rename(prefix + "wte.weight", "model.tok_embeddings.embedding_weight", ("vocab", "hidden")),
        Rename(prefix + "wpe.weight", "model.pos_embeddings.embedding_weight", ("positions", "hidden")),
        Rename(prefix + "ln_f.weight", "model.norm_out.gamma", ("hidden",)),
        Rename(prefix + "ln_f.bias", "model.norm_out.beta", ("hidden",)),
        Rename("lm_head.weight", "lm_head.weight", ("vocab", "hidden"), unless="tie_word_embeddings"),
        Drop(
            "lm_head.weight",
            f"tied to {prefix}wte.weight (tie_word_embeddings)",
            when="tie_word_embeddings",
            same_as=prefix + "wte.weight",
        ),
        Drop(h + "attn.bias", "causal-mask buffer, not a weight"),
        Drop(h + "attn.masked_bias", "mask fill-value buffer, not a weight"),
        Rename(h + "ln_1.weight", MS + "attention_norm.gamma", ("hidden",)),
        Rename(h + "ln_1.bias", MS + "attention_norm.beta", ("hidden",)),
        Rename(h + "attn.c_attn.weight", MS + "attention.w_qkv.weight", ("hidden", "3*hidden"), op=T),
        Rename(h + "attn.c_attn.bias", MS + "attention.w_qkv.bias", ("3*hidden",)),
        Rename(h + "attn.c_proj.weight", MS + "attention.wo.weight", ("hidden", "hidden"), op=T),
        Rename(h + "attn.c_proj.bias", MS + "attention.wo.bias", ("hidden",)),
        Rename(h + "ln_2.weight", MS + "ffn_norm.gamma", ("hidden",)),
        Rename(h + "ln_2.bias", MS + "ffn_norm.beta", ("hidden",)),
        Rename(h + "mlp.c_fc.weight", MS + "feed_forward.c_fc.weight", ("hidden", "inter"), op=T),
        Rename(h + "mlp.c_fc.bias", MS + "feed_forward.c_fc.bias", ("inter",)),
        Rename(h + "mlp.c_proj.weight", MS + "feed_forward.c_proj.weight", ("inter", "hidden"), op=T),
        Rename(h + "mlp.c_proj.bias", MS + "feed_forward.c_proj.bias", ("hidden",)),
    )


RULES = rules("transformer.")


def dims(cfg: dict) -> dict[str, int]:
    hidden = cfg["n_embd"]
    return {
        "layers": cfg["n_layer"],
        "hidden": hidden,
        "inter": cfg.get("n_inner") or 4 * hidden,
        "vocab": cfg["vocab_size"],
        "positions": cfg.get("n_positions", 1024),
    }


def flags(cfg: dict) -> dict[str, bool]:
    return {"tie_word_embeddings": bool(cfg.get("tie_word_embeddings", True))}


def generation_config(cfg: dict) -> dict:
    out = {"_from_model_config": True}
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if cfg.get(k) is not None:
            out[k] = cfg[k]
    return out


SPEC = Spec(
    name="gpt2",
    rules=RULES,
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
)
SPEC_GPT2MODEL = Spec(
    name="gpt2",
    rules=rules(""),
    dims=dims,
    flags=flags,
    generation_config=generation_config,
    hf_config_from_ms=hf_config_from_ms,
)
