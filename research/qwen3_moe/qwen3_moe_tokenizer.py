"""Qwen3-MoE tokenizer: the HF ``tokenizers`` ``tokenizer.json`` of the checkpoint, through MindFormers'
``PreTrainedTokenizerFast``. The YAML names the file as ``vocab_file`` (MindFormers' tokenizer builder requires that
key) or ``tokenizer_file``; MindFormers' registry is keyed by class name, hence a class of this family."""

from __future__ import annotations

from mindformers.models.tokenization_utils_fast import PreTrainedTokenizerFast

__all__ = ["Qwen3MoeTokenizerFast"]


class Qwen3MoeTokenizerFast(PreTrainedTokenizerFast):
    """``tokenizer.json`` (HF ``tokenizers``) tokenizer; special tokens as the YAML or ``tokenizer_config`` say."""

    vocab_files_names = {"vocab_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file=None, tokenizer_file=None, **kwargs):
        super().__init__(tokenizer_file=tokenizer_file or vocab_file, **kwargs)
