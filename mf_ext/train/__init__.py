"""Finetuning on MindSpore (CPU and Ascend): the launcher's ``--run_mode finetune``, LoRA, export to HF / PEFT.

Importing this package is cheap; MindSpore is imported when :func:`finetune` runs.
"""

from __future__ import annotations

__all__ = ["finetune", "FinetuneResult"]


def finetune(config, **kwargs):
    """Finetune the model of a loaded ``MindFormerConfig``; see :func:`mf_ext.train.runner.finetune`."""
    from .runner import finetune as _finetune

    return _finetune(config, **kwargs)


def __getattr__(name):  # PEP 562
    if name == "FinetuneResult":
        from .runner import FinetuneResult

        return FinetuneResult
    raise AttributeError(f"module 'mf_ext.train' has no attribute {name!r}")
