"""DeepSeek-V2 model config (MindFormers ``PretrainedConfig``; field names follow MindFormers' YAMLs and HF's).

Registered into ``MindFormerRegister`` by ``auto_register: deepseek2_config.DeepSeek2Config``.
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype
from mindformers.modules.transformer.transformer import TransformerOpParallelConfig, default_transformer_config

# 'from .hf_config import' (MindFormers' auto_register copies only such relative imports)
from .hf_config import ARCH_KEYS, TOPK_METHODS
from .hf_config import to_hf_config as _to_hf_config
from .hf_config import to_model_config as _to_model_config

__all__ = ["DeepSeek2Config"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class DeepSeek2Config(PretrainedConfig):
    """DeepSeek-V2 / V2-Lite: multi-head latent attention (``q_lora_rank`` ``None`` = plain query projection,
    V2-Lite), dense SwiGLU in the first ``first_k_dense_replace`` layers, then MoE layers with softmax routing
    (``topk_method`` ``greedy`` or ``group_limited_greedy`` over ``n_group`` groups, ``topk_group`` kept), weights
    times ``routed_scaling_factor`` (never renormalised, as HF's ``DeepseekV2MoEGate``), and ``n_shared_experts``
    shared experts (one SwiGLU of ``n_shared_experts * moe_intermediate_size``)."""

    model_type = "deepseek2"
    HF_ARCHITECTURE_KEYS = ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 4096,
        hidden_size: int = 5120,
        num_layers: int = 60,
        num_heads: int = 128,
        intermediate_size: int = 12288,
        moe_intermediate_size: int = 1536,
        vocab_size: int = 102400,
        rms_norm_eps: float = 1e-6,
        theta: float = 10000.0,
        rope_scaling: dict | None = None,
        max_position_embedding: int | None = None,
        tie_word_embeddings: bool = False,
        q_lora_rank: int | None = 1536,
        kv_lora_rank: int = 512,
        qk_nope_head_dim: int = 128,
        qk_rope_head_dim: int = 64,
        v_head_dim: int = 128,
        attention_bias: bool = False,
        n_routed_experts: int = 160,
        n_shared_experts: int | None = 2,
        num_experts_per_tok: int = 6,
        first_k_dense_replace: int = 1,
        topk_method: str = "group_limited_greedy",
        n_group: int | None = 8,
        topk_group: int | None = 3,
        routed_scaling_factor: float = 16.0,
        output_router_logits: bool = False,
        router_aux_loss_coef: float = 0.001,
        bos_token_id: int = 100000,
        eos_token_id: int | list[int] = 100001,
        pad_token_id: int | None = None,
        ignore_token_id: int = -100,
        compute_dtype: str = "float32",
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        rotary_dtype: str = "float32",
        param_init_type: str = "float32",
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
        for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_heads", num_heads),
                            ("vocab_size", vocab_size), ("n_routed_experts", n_routed_experts),
                            ("num_experts_per_tok", num_experts_per_tok), ("kv_lora_rank", kv_lora_rank),
                            ("qk_rope_head_dim", qk_rope_head_dim), ("v_head_dim", v_head_dim)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"DeepSeek2Config.{name}: expected a positive int, got {value!r}")
        if num_experts_per_tok > n_routed_experts:
            raise ValueError(
                f"DeepSeek2Config.num_experts_per_tok: {num_experts_per_tok!r} exceeds n_routed_experts "
                f"{n_routed_experts!r}"
            )
        if topk_method not in TOPK_METHODS:
            raise ValueError(f"DeepSeek2Config.topk_method: expected one of {TOPK_METHODS}, got {topk_method!r}")
        for name, value in (("compute_dtype", compute_dtype), ("layernorm_compute_type", layernorm_compute_type),
                            ("softmax_compute_type", softmax_compute_type), ("rotary_dtype", rotary_dtype),
                            ("param_init_type", param_init_type)):  # fmt: skip
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"DeepSeek2Config.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.n_kv_heads = num_heads
        self.intermediate_size = intermediate_size
        self.moe_intermediate_size = moe_intermediate_size
        self.vocab_size = vocab_size
        self.rms_norm_eps = rms_norm_eps
        self.theta = float(theta)
        self.rope_scaling = rope_scaling
        self.max_position_embedding = max_position_embedding or seq_length
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.q_lora_rank = q_lora_rank
        self.kv_lora_rank = kv_lora_rank
        self.qk_nope_head_dim = qk_nope_head_dim
        self.qk_rope_head_dim = qk_rope_head_dim
        self.v_head_dim = v_head_dim
        self.attention_bias = bool(attention_bias)
        self.n_routed_experts = n_routed_experts
        self.n_shared_experts = n_shared_experts
        self.num_experts_per_tok = num_experts_per_tok
        self.first_k_dense_replace = int(first_k_dense_replace or 0)
        self.topk_method = topk_method
        self.n_group = n_group
        self.topk_group = topk_group
        self.routed_scaling_factor = float(routed_scaling_factor)
        self.output_router_logits = bool(output_router_logits)
        self.router_aux_loss_coef = float(router_aux_loss_coef)
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
        self.compute_dtype = convert_mstype(compute_dtype)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.rotary_dtype = convert_mstype(rotary_dtype)
        self.param_init_type = convert_mstype(param_init_type)
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

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @classmethod
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> DeepSeek2Config:
        """From an HF DeepSeek-V2 ``config.json`` dict (mapping: ``hf_config.to_model_config``)."""
        return cls(**{**_to_model_config(hf_config), **overrides})

    def to_hf_config(self) -> dict:
        """The HF ``DeepseekV2Config`` dict for this architecture."""
        return _to_hf_config({key: getattr(self, key) for key in ARCH_KEYS})
