"""Qwen2 model config (Qwen1.5 / Qwen2 / Qwen2.5): MindFormers' legacy ``LlamaConfig`` field names.

Registered into ``MindFormerRegister`` (module type CONFIG) by ``auto_register: qwen2_config.Qwen2Config``; importing
this file registers nothing by itself (MindFormers' own mcore ``Qwen2Config`` is registered under another key).
"""

from __future__ import annotations

from typing import Any

from mindformers.models.configuration_utils import PretrainedConfig
from mindformers.models.utils import convert_mstype
from mindformers.modules.transformer.transformer import TransformerOpParallelConfig, default_transformer_config

# "from .hf_config import" (not "from . import hf_config"): MindFormers' auto_register copies the relative imports it
# finds in that form beside this file (run_mindformer.py --register_path)
from .hf_config import ARCH_KEYS, normalize_rope_scaling, to_hf_config, to_model_config

__all__ = ["Qwen2Config"]

_DTYPE_NAMES = ("float32", "float16", "bfloat16")


class Qwen2Config(PretrainedConfig):
    """Qwen2 architecture config (MindFormers legacy-style ``PretrainedConfig``).

    Field names follow MindFormers' ``LlamaConfig`` (``num_layers``, ``num_heads``, ``n_kv_heads``, ``theta``,
    ``max_position_embedding`` ...), the config MindFormers' qwen2_5 YAMLs use. Qwen2 has q/k/v biases
    (``qkv_has_bias``, always true: accepted for those YAMLs), no o_proj bias, SwiGLU, RMSNorm, and in its small sizes
    tied embeddings. ``rope_scaling``: ``None`` or ``{"type": "linear" | "dynamic" | "yarn" | "llama3", ...}``.

    :meth:`from_hf_config` builds one from a HuggingFace ``config.json`` dict, :meth:`to_hf_config` goes back.
    """

    model_type = "qwen2_ext"  # not "qwen2": MindFormers maps that to its mcore config
    HF_ARCHITECTURE_KEYS = ARCH_KEYS

    def __init__(
        self,
        batch_size: int = 1,
        seq_length: int = 2048,
        hidden_size: int = 3584,
        num_layers: int = 28,
        num_heads: int = 28,
        n_kv_heads: int | None = 4,
        head_dim: int | None = None,
        max_position_embedding: int | None = None,
        intermediate_size: int = 18944,
        vocab_size: int = 152064,
        rms_norm_eps: float = 1e-6,
        bos_token_id: int | None = 151643,
        eos_token_id: int | list[int] = 151645,
        pad_token_id: int | None = 151643,
        ignore_token_id: int = -100,
        theta: float = 1000000.0,
        rope_scaling: dict | None = None,
        qkv_has_bias: bool = True,
        compute_dtype: str = "float32",
        layernorm_compute_type: str = "float32",
        softmax_compute_type: str = "float32",
        rotary_dtype: str = "float32",
        param_init_type: str = "float32",
        embedding_init_type: str | None = None,
        qkv_concat: bool = False,
        tie_word_embeddings: bool = False,
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
        name = type(self).__name__
        if isinstance(parallel_config, dict):
            parallel_config = TransformerOpParallelConfig(**parallel_config)
        for key, value in (
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("vocab_size", vocab_size),
            ("intermediate_size", intermediate_size),
            ("seq_length", seq_length),
            ("batch_size", batch_size),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}.{key}: expected a positive int, got {value!r}")
        n_kv_heads = num_heads if n_kv_heads is None else n_kv_heads
        if not isinstance(n_kv_heads, int) or n_kv_heads <= 0 or num_heads % n_kv_heads:
            raise ValueError(
                f"{name}.n_kv_heads: expected a positive divisor of num_heads={num_heads}, got {n_kv_heads!r}"
            )
        if head_dim is None:
            if hidden_size % num_heads:
                raise ValueError(
                    f"{name}.hidden_size: {hidden_size!r} is not divisible by num_heads={num_heads!r} "
                    "(set head_dim explicitly)"
                )
            head_dim = hidden_size // num_heads
        if not isinstance(head_dim, int) or head_dim <= 0 or head_dim % 2:
            raise ValueError(f"{name}.head_dim: rotary embedding needs a positive even int, got {head_dim!r}")
        if not qkv_has_bias:
            raise ValueError(f"{name}.qkv_has_bias: Qwen2 has q/k/v biases (expected True), got {qkv_has_bias!r}")
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = head_dim
        self.max_position_embedding = max_position_embedding if max_position_embedding else seq_length
        self.intermediate_size = intermediate_size
        self.vocab_size = vocab_size
        self.rms_norm_eps = rms_norm_eps
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.ignore_token_id = ignore_token_id
        self.theta = float(theta)
        self.rope_scaling = normalize_rope_scaling(rope_scaling, f"{name}.rope_scaling")
        self.qkv_has_bias = True
        for key, value in (
            ("compute_dtype", compute_dtype),
            ("layernorm_compute_type", layernorm_compute_type),
            ("softmax_compute_type", softmax_compute_type),
            ("rotary_dtype", rotary_dtype),
            ("param_init_type", param_init_type),
        ):
            if isinstance(value, str) and value.lower() not in _DTYPE_NAMES:
                raise ValueError(f"{name}.{key}: expected one of {_DTYPE_NAMES}, got {value!r}")
        self.compute_dtype = convert_mstype(compute_dtype)
        self.layernorm_compute_type = convert_mstype(layernorm_compute_type)
        self.softmax_compute_type = convert_mstype(softmax_compute_type)
        self.rotary_dtype = convert_mstype(rotary_dtype)
        self.param_init_type = convert_mstype(param_init_type)
        self.embedding_init_type = convert_mstype(embedding_init_type) if embedding_init_type else self.param_init_type
        self.qkv_concat = bool(qkv_concat)
        self.tie_word_embeddings = bool(tie_word_embeddings)
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
    def from_hf_config(cls, hf_config: dict, **overrides: Any) -> Qwen2Config:
        """A config from a HuggingFace ``config.json`` dict; ``overrides`` win over mapped values (``ValueError``
        naming the HF key for what this model does not compute; the mapping is ``hf_config.to_model_config``)."""
        kwargs = to_model_config(hf_config)
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf_config(self) -> dict:
        """The HuggingFace ``config.json`` dict for this architecture."""
        dtype_name = {convert_mstype(n): n for n in _DTYPE_NAMES}[self.param_init_type]
        mc = {key: getattr(self, key) for key in self.HF_ARCHITECTURE_KEYS}
        mc["init_method_std"] = self.init_method_std
        return {**to_hf_config(mc), "torch_dtype": dtype_name, "use_cache": True}
