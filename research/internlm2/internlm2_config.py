"""InternLM2 / InternLM model config: MindFormers' ``LlamaConfig`` field names plus InternLM's ``has_bias``.

Registered into ``MindFormerRegister`` (module type CONFIG) by ``auto_register: internlm2_config.InternLM2Config``.
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype

from . import hf_config as _hf
from .hf_config import ARCH_KEYS  # this form also makes MindFormers' auto_register copy hf_config.py beside it

__all__ = ["InternLM2Config"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class InternLM2Config(PretrainedConfig):
    """InternLM2 (and InternLM) architecture config (MindFormers legacy-style ``PretrainedConfig``).

    Field names follow MindFormers' ``LlamaConfig`` / InternLM2 YAMLs (``num_layers``, ``num_heads``, ``n_kv_heads``,
    ``theta``, ``max_position_embedding``, ``qkv_concat``). Additions: ``has_bias`` (biases on q/k/v/o, InternLM's
    ``bias``), ``rope_scaling`` (``{"type": "dynamic"|"linear", "factor"}``), ``hf_layout`` (``"internlm2"`` or
    ``"internlm"``: the checkpoint layout ``to_hf_config`` writes back). ``qkv_concat`` keeps q/k/v fused as
    ``attention.w`` (MindFormers' InternLM2 name; rows grouped per key/value head as InternLM2's ``wqkv``).
    """

    model_type = "internlm2"
    HF_ARCHITECTURE_KEYS = ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 2048,
        hidden_size: int = 4096,
        num_layers: int = 32,
        num_heads: int = 32,
        n_kv_heads: int | None = None,
        intermediate_size: int = 14336,
        vocab_size: int = 92544,
        rms_norm_eps: float = 1e-5,
        theta: float = 1000000.0,
        rope_scaling: dict | None = None,
        max_position_embedding: int | None = None,
        has_bias: bool = False,
        hf_layout: str = "internlm2",
        tie_word_embeddings: bool = False,
        bos_token_id: int = 1,
        eos_token_id: int | list[int] = 2,
        pad_token_id: int | None = 2,
        ignore_token_id: int = -100,
        compute_dtype: str = "float32",
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        rotary_dtype: str = "float32",
        param_init_type: str = "float32",
        embedding_init_type: str | None = None,
        qkv_concat: bool = False,
        use_past: bool = False,
        use_flash_attention: bool = False,
        init_method_std: float = 0.02,
        checkpoint_name_or_path: str = "",
        repetition_penalty: float = 1.0,
        max_decode_length: int = 1024,
        top_k: int = 0,
        top_p: float = 1.0,
        do_sample: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_heads", num_heads),
                            ("vocab_size", vocab_size), ("intermediate_size", intermediate_size),
                            ("seq_length", seq_length), ("batch_size", batch_size)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"InternLM2Config.{name}: expected a positive int, got {value!r}")
        n_kv_heads = num_heads if n_kv_heads is None else n_kv_heads
        if not isinstance(n_kv_heads, int) or n_kv_heads <= 0 or num_heads % n_kv_heads:
            raise ValueError(
                f"InternLM2Config.n_kv_heads: expected a positive divisor of num_heads={num_heads}, got {n_kv_heads!r}"
            )
        if hidden_size % num_heads or (hidden_size // num_heads) % 2:
            raise ValueError(
                f"InternLM2Config.hidden_size: {hidden_size!r} must split into num_heads={num_heads} heads of an "
                "even size (rotary)"
            )
        if hf_layout not in ("internlm2", "internlm"):
            raise ValueError(f"InternLM2Config.hf_layout: expected 'internlm2' or 'internlm', got {hf_layout!r}")
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = hidden_size // num_heads
        self.intermediate_size = intermediate_size
        self.vocab_size = vocab_size
        self.rms_norm_eps = rms_norm_eps
        self.theta = float(theta)
        self.rope_scaling = _hf.normalize_rope_scaling(rope_scaling, "InternLM2Config.rope_scaling")
        self.max_position_embedding = max_position_embedding if max_position_embedding else seq_length
        self.has_bias = bool(has_bias)
        self.hf_layout = hf_layout
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
        for name, value in (("compute_dtype", compute_dtype), ("layernorm_compute_type", layernorm_compute_type),
                            ("softmax_compute_type", softmax_compute_type), ("rotary_dtype", rotary_dtype),
                            ("param_init_type", param_init_type)):  # fmt: skip
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"InternLM2Config.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.compute_dtype = convert_mstype(compute_dtype)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.rotary_dtype = convert_mstype(rotary_dtype)
        self.param_init_type = convert_mstype(param_init_type)
        self.embedding_init_type = convert_mstype(embedding_init_type) if embedding_init_type else self.param_init_type
        self.qkv_concat = bool(qkv_concat)
        self.use_past = use_past
        self.use_flash_attention = use_flash_attention
        self.init_method_std = init_method_std
        self.checkpoint_name_or_path = checkpoint_name_or_path
        self.repetition_penalty = repetition_penalty
        self.max_decode_length = max_decode_length
        self.top_k = top_k
        self.top_p = top_p
        self.do_sample = do_sample

    @classmethod
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> InternLM2Config:
        """A config from an InternLM2 / InternLM ``config.json`` dict (``hf_config.to_model_config``)."""
        kwargs = _hf.to_model_config(hf_config)
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf_config(self) -> dict:
        """The ``config.json`` content for this architecture (``hf_config.to_hf_config``)."""
        dtype_name = {convert_mstype(n): n for n in _DTYPE_NAMES}[self.param_init_type]
        mc = {key: getattr(self, key) for key in _hf.ARCH_KEYS}
        mc["init_method_std"] = self.init_method_std
        return {**_hf.to_hf_config(mc), "torch_dtype": dtype_name, "use_cache": True}
