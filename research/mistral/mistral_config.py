"""Mistral model config (MindFormers ``PretrainedConfig``): MindFormers' Llama field names plus ``sliding_window``.

Registered into ``MindFormerRegister`` (module type CONFIG) by ``auto_register: mistral_config.MistralConfig``.
The HF ``config.json`` mapping is ``hf_config.py`` (:meth:`MistralConfig.from_hf_config` / :meth:`to_hf_config`).
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

__all__ = ["MistralConfig"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class MistralConfig(PretrainedConfig):
    """Mistral architecture config.

    Args (beyond MindFormers' Llama fields): ``sliding_window`` -- each query attends to the keys of the last
    ``sliding_window`` positions (itself included), as HF's ``MistralForCausalLM``; ``None`` = the whole context.
    ``head_dim`` defaults to ``hidden_size // num_heads``.
    """

    model_type = "mistral"

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
        vocab_size: int = 32768,
        rms_norm_eps: float = 1e-5,
        theta: float = 1000000.0,
        max_position_embedding: int | None = None,
        sliding_window: int | None = None,
        tie_word_embeddings: bool = False,
        bos_token_id: int = 1,
        eos_token_id: int | list[int] = 2,
        pad_token_id: int | None = None,
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
            ("intermediate_size", intermediate_size),
            ("vocab_size", vocab_size),
            ("seq_length", seq_length),
            ("batch_size", batch_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"MistralConfig.{name}: expected a positive int, got {value!r}")
        n_kv_heads = num_heads if n_kv_heads is None else n_kv_heads
        if not isinstance(n_kv_heads, int) or n_kv_heads <= 0 or num_heads % n_kv_heads:
            raise ValueError(
                f"MistralConfig.n_kv_heads: expected a positive divisor of num_heads={num_heads}, got {n_kv_heads!r}"
            )
        if head_dim is None:
            if hidden_size % num_heads:
                raise ValueError(
                    f"MistralConfig.hidden_size: {hidden_size!r} is not divisible by num_heads={num_heads!r} "
                    "(set head_dim explicitly)"
                )
            head_dim = hidden_size // num_heads
        if head_dim % 2:
            raise ValueError(f"MistralConfig.head_dim: rotary embedding needs an even head_dim, got {head_dim!r}")
        if sliding_window is not None and (
            not isinstance(sliding_window, int) or isinstance(sliding_window, bool) or sliding_window <= 0
        ):
            raise ValueError(f"MistralConfig.sliding_window: expected a positive int or None, got {sliding_window!r}")
        for name, value in (
            ("compute_dtype", compute_dtype),
            ("layernorm_compute_type", layernorm_compute_type),
            ("softmax_compute_type", softmax_compute_type),
            ("rotary_dtype", rotary_dtype),
            ("param_init_type", param_init_type),
        ):
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"MistralConfig.{name}: expected one of {_DTYPE_NAMES}, got {value!r}")
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
        self.max_position_embedding = max_position_embedding if max_position_embedding else seq_length
        self.sliding_window = sliding_window
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
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
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> MistralConfig:
        """Build a config from an HF Mistral ``config.json`` dict; ``overrides`` win over mapped values."""
        kwargs = _to_model_config(hf_config)
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf_config(self) -> dict:
        """The HF ``MistralConfig`` dict (``config.json`` content) for this architecture."""
        dtype_name = {convert_mstype(n): n for n in _DTYPE_NAMES}[self.param_init_type]
        mc = {key: getattr(self, key) for key in ARCH_KEYS}
        mc["init_method_std"] = self.init_method_std
        return {**_to_hf_config(mc), "torch_dtype": dtype_name, "use_cache": True}
