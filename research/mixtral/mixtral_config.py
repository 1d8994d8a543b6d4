"""Mixtral model config (MindFormers ``PretrainedConfig``; field names follow MindFormers' Llama YAMLs).

Registered into ``MindFormerRegister`` by ``auto_register: mixtral_config.MixtralConfig``.
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype
from mindformers.modules.transformer.transformer import TransformerOpParallelConfig, default_transformer_config

# 'from .hf_config import' (MindFormers' auto_register copies only such relative imports)
from .hf_config import ARCH_KEYS
from .hf_config import to_hf_config as _to_hf_config
from .hf_config import to_model_config as _to_model_config

__all__ = ["MixtralConfig"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class MixtralConfig(PretrainedConfig):
    """Mixtral architecture: Llama attention (GQA, rotary) with a top-k softmax MoE feed-forward in every layer.

    MoE fields: ``num_experts`` (HF ``num_local_experts``), ``num_experts_per_tok``, ``intermediate_size`` (each
    expert's); training: ``output_router_logits`` adds ``router_aux_loss_coef`` x the load-balancing loss to the
    training loss (HF's switch of the same name).
    """

    model_type = "mixtral"
    HF_ARCHITECTURE_KEYS = ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 4096,
        hidden_size: int = 4096,
        num_layers: int = 32,
        num_heads: int = 32,
        n_kv_heads: int | None = 8,
        head_dim: int | None = None,
        intermediate_size: int = 14336,
        num_experts: int = 8,
        num_experts_per_tok: int = 2,
        vocab_size: int = 32000,
        rms_norm_eps: float = 1e-5,
        theta: float = 1e6,
        rope_scaling: dict | None = None,
        sliding_window: int | None = None,
        max_position_embedding: int | None = None,
        tie_word_embeddings: bool = False,
        output_router_logits: bool = False,
        router_aux_loss_coef: float = 0.001,
        bos_token_id: int = 1,
        eos_token_id: int | list[int] = 2,
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
                            ("vocab_size", vocab_size), ("num_experts", num_experts),
                            ("num_experts_per_tok", num_experts_per_tok)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"MixtralConfig.{name}: expected a positive int, got {value!r}")
        if num_experts_per_tok > num_experts:
            raise ValueError(
                f"MixtralConfig.num_experts_per_tok: {num_experts_per_tok!r} exceeds num_experts {num_experts!r}"
            )
        for name, value in (("compute_dtype", compute_dtype), ("layernorm_compute_type", layernorm_compute_type),
                            ("softmax_compute_type", softmax_compute_type), ("rotary_dtype", rotary_dtype),
                            ("param_init_type", param_init_type)):  # fmt: skip
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"MixtralConfig.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.n_kv_heads = num_heads if n_kv_heads is None else n_kv_heads
        self.head_dim = head_dim or hidden_size // num_heads
        self.intermediate_size = intermediate_size
        self.num_experts = num_experts
        self.num_experts_per_tok = num_experts_per_tok
        self.vocab_size = vocab_size
        self.rms_norm_eps = rms_norm_eps
        self.theta = float(theta)
        self.rope_scaling = rope_scaling
        self.sliding_window = sliding_window
        self.max_position_embedding = max_position_embedding or seq_length
        self.tie_word_embeddings = bool(tie_word_embeddings)
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

    @classmethod
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> MixtralConfig:
        """From an HF Mixtral ``config.json`` dict (mapping: ``hf_config.to_model_config``)."""
        return cls(**{**_to_model_config(hf_config), **overrides})

    def to_hf_config(self) -> dict:
        """The HF ``MixtralConfig`` dict for this architecture."""
        mc = {key: getattr(self, key) for key in ARCH_KEYS}
        mc.update(output_router_logits=self.output_router_logits, router_aux_loss_coef=self.router_aux_loss_coef)
        return _to_hf_config(mc)
