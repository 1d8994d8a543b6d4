"""GLM-2/3/4 model config (MindFormers ``PretrainedConfig``), Llama-style field names plus GLM's rotary and biases.

Registered into ``MindFormerRegister`` (module type CONFIG) by ``auto_register: glm4_config.Glm4Config``;
importing this file registers nothing by itself. The HF ``config.json`` mapping (``GlmForCausalLM`` and THUDM's
ChatGLM) is ``hf_config.py``.
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype
from mindformers.modules.transformer.transformer import TransformerOpParallelConfig, default_transformer_config

from .hf_config import ARCH_KEYS as _ARCH_KEYS
from .hf_config import to_hf_config as _to_hf_config
from .hf_config import to_model_config as _to_model_config

__all__ = ["Glm4Config"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class Glm4Config(PretrainedConfig):
    """GLM-2/3/4 architecture config.

    Args (beyond the usual sizes ``hidden_size``, ``num_layers``, ``num_heads``, ``n_kv_heads`` (ChatGLM's
    ``multi_query_group_num``), ``head_dim`` (``kv_channels``), ``intermediate_size`` (``ffn_hidden_size``),
    ``vocab_size`` (``padded_vocab_size``)):
        theta: rotary base (HF ``rope_theta``; ChatGLM's ``10000 * rope_ratio``).
        partial_rotary_factor: share of each head that rotates (GLM: 0.5), interleaved pairs.
        qkv_has_bias: biases on the fused q/k/v projection (ChatGLM's ``add_qkv_bias``).
        rms_norm_eps: RMSNorm epsilon (ChatGLM's ``layernorm_epsilon``).
    """

    model_type = "glm4_ext"

    HF_ARCHITECTURE_KEYS = _ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 8192,
        hidden_size: int = 4096,
        num_layers: int = 40,
        num_heads: int = 32,
        n_kv_heads: int | None = 2,
        head_dim: int | None = 128,
        intermediate_size: int = 13696,
        vocab_size: int = 151552,
        rms_norm_eps: float = 1.5625e-07,
        theta: float = 5000000.0,
        partial_rotary_factor: float = 0.5,
        qkv_has_bias: bool = True,
        max_position_embedding: int | None = None,
        tie_word_embeddings: bool = False,
        bos_token_id: int | None = None,
        eos_token_id: int | list[int] = 151329,
        pad_token_id: int | None = 151329,
        ignore_token_id: int = -100,
        compute_dtype: str = "float32",
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        rotary_dtype: str = "float32",
        param_init_type: str = "float32",
        embedding_init_type: str | None = None,
        use_past: bool = False,
        use_flash_attention: bool = False,
        is_dynamic: bool = False,
        parallel_config: dict | TransformerOpParallelConfig = default_transformer_config,
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
        if isinstance(parallel_config, dict):
            parallel_config = TransformerOpParallelConfig(**parallel_config)
        for name, value in (
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("vocab_size", vocab_size),
            ("intermediate_size", intermediate_size),
            ("seq_length", seq_length),
            ("batch_size", batch_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Glm4Config.{name}: expected a positive int, got {value!r}")
        n_kv_heads = num_heads if n_kv_heads is None else n_kv_heads
        if not isinstance(n_kv_heads, int) or n_kv_heads <= 0 or num_heads % n_kv_heads:
            raise ValueError(
                f"Glm4Config.n_kv_heads: expected a positive divisor of num_heads={num_heads}, got {n_kv_heads!r}"
            )
        if head_dim is None:
            if hidden_size % num_heads:
                raise ValueError(
                    f"Glm4Config.hidden_size: {hidden_size!r} is not divisible by num_heads={num_heads!r} "
                    "(set head_dim explicitly)"
                )
            head_dim = hidden_size // num_heads
        rot = int(head_dim * partial_rotary_factor)
        if not 0 < partial_rotary_factor <= 1 or rot <= 0 or rot % 2:
            raise ValueError(
                f"Glm4Config.partial_rotary_factor: {partial_rotary_factor!r} x head_dim {head_dim} must give a "
                "positive even number of rotary channels"
            )
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.vocab_size = vocab_size
        self.rms_norm_eps = rms_norm_eps
        self.theta = float(theta)
        self.partial_rotary_factor = float(partial_rotary_factor)
        self.qkv_has_bias = bool(qkv_has_bias)
        self.max_position_embedding = max_position_embedding if max_position_embedding else seq_length
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
        for name, value in (
            ("compute_dtype", compute_dtype),
            ("layernorm_compute_type", layernorm_compute_type),
            ("softmax_compute_type", softmax_compute_type),
            ("rotary_dtype", rotary_dtype),
            ("param_init_type", param_init_type),
        ):
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"Glm4Config.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.compute_dtype = convert_mstype(compute_dtype)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.rotary_dtype = convert_mstype(rotary_dtype)
        self.param_init_type = convert_mstype(param_init_type)
        self.embedding_init_type = convert_mstype(embedding_init_type) if embedding_init_type else self.param_init_type
        self.use_past = use_past
        self.use_flash_attention = use_flash_attention
        self.is_dynamic = is_dynamic
        self.parallel_config = parallel_config
        self.init_method_std = init_method_std
        self.checkpoint_name_or_path = checkpoint_name_or_path
        self.repetition_penalty = repetition_penalty
        self.max_decode_length = max_decode_length
        self.top_k = top_k
        self.top_p = top_p
        self.do_sample = do_sample

    @classmethod
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> Glm4Config:
        """Build a config from an HF ``GlmForCausalLM`` or ChatGLM ``config.json`` dict; ``overrides`` win."""
        kwargs = _to_model_config(hf_config)
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf_config(self) -> dict:
        """The HF ``GlmConfig`` dict (``config.json`` content) for this architecture."""
        dtype_name = {convert_mstype(n): n for n in _DTYPE_NAMES}[self.param_init_type]
        mc = {key: getattr(self, key) for key in _ARCH_KEYS}
        mc["init_method_std"] = self.init_method_std
        return {**_to_hf_config(mc), "torch_dtype": dtype_name, "use_cache": True}
