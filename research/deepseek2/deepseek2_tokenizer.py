"""DeepSeek-V2 tokenizer: the HF ``tokenizers`` ``tokenizer.json`` of the checkpoint (byte-level BPE), through
MindFormers' ``PreTrainedTokenizerFast`` (``tokenizer_file`` names it; MindFormers' registry is keyed by class name,
hence a class of this family)."""

from __future__ import annotations

from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

__all__ = ["DeepSeek2TokenizerFast"]


class DeepSeek2TokenizerFast(PreTrainedTokenizerFast):
    """``tokenizer.json`` (HF ``tokenizers``) tokenizer; special tokens as the YAML or ``tokenizer_config`` say."""

    vocab_files_names = {"tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
