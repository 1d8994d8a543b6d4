"""``trainer_backend: mindformers``: finetune through MindFormers' own ``Trainer`` (callbacks, monitors, its
checkpoint layout and resume), with the plug-in model built and loaded by us.

On CPU the stock ``MFTrainOneStepCell`` cannot compile: its overflow check needs ``NPUGetFloatStatusV2`` /
``FloatStatus`` (no CPU kernels). :class:`MFCPUTrainOneStepCell` replaces only that check with ``isfinite`` over
the gradients (all-reduced under data parallel); everything else (clipping, loss scale, lr logging) is MindFormers'.
On Ascend the YAML's own ``runner_wrapper`` is used unchanged.
"""

from __future__ import annotations

import copy

from mf_ext.config import ConfigError

_CPU_WRAPPER = "MFCPUTrainOneStepCell"


def _register_cpu_wrapper() -> None:
    import mindspore as ms
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister
    from mindformers.wrapper.wrapper import MFTrainOneStepCell
    from mindspore import ops

    if MindFormerRegister.is_exist(MindFormerModuleType.WRAPPER, _CPU_WRAPPER):
        return

    class MFCPUTrainOneStepCell(MFTrainOneStepCell):
        """MindFormers' train step with a CPU-capable overflow check (non-finite gradient count > 0)."""

        def get_overflow_status(self, status, compute_output):
            bad = ops.zeros((), ms.float32)
            for g in compute_output:
                bad = bad + ops.cast(ops.logical_not(ops.isfinite(g)), ms.float32).sum()
            if self.is_distributed:
                bad = self.allreduce(bad)
            return bad > 0

    MindFormerRegister.register_cls(MFCPUTrainOneStepCell, MindFormerModuleType.WRAPPER, _CPU_WRAPPER)


def finetune_with_mindformers(config, *, data_files, output_dir, load_checkpoint, resume, progress, log):
    """Run ``mindformers.Trainer.finetune`` on the plug-in model; returns a ``FinetuneResult``."""
    import mindspore as ms
    from mindformers import MindFormerConfig, Trainer, build_context
    from mindspore.train.callback import Callback

    from mf_ext.api import build_model_from_config

    from .lora import LoraSettings, apply_lora
    from .runner import FinetuneResult

    cfg = copy.deepcopy(config)
    cfg.output_dir = str(output_dir)
    device = str((cfg.get("context") or {}).get("device_target", "CPU"))
    if cfg.get("use_parallel") and device == "CPU":
        raise ConfigError(
            "trainer_backend 'mindformers' with use_parallel on CPU is not supported; use the default backend"
        )
    td = cfg.train_dataset
    td.data_loader.dataset_dir = data_files[0] if len(data_files) == 1 else str(data_files[0].rsplit("/", 1)[0])
    defaults = {"num_parallel_workers": 1, "python_multiprocessing": False, "drop_remainder": True, "repeat": 1,
                "numa_enable": False, "prefetch_size": 1, "batch_size": cfg.runner_config.batch_size}  # fmt: skip
    for key, value in defaults.items():
        if td.get(key) is None:
            td[key] = value
    td.setdefault("input_columns", ["input_ids", "labels"])
    cfg.train_dataset_task = MindFormerConfig(type="CausalLanguageModelDataset", dataset_config=td)
    if not cfg.get("trainer") or not cfg.trainer.get("type"):
        cfg.trainer = MindFormerConfig(type="CausalLanguageModelingTrainer", model_name="plugin")
    cfg.runner_config.sink_mode = False  # report every step
    if device == "CPU":
        _register_cpu_wrapper()
        cfg.runner_wrapper.type = _CPU_WRAPPER
    mc = cfg.model.model_config
    pet = mc.pop("pet_config") if mc.get("pet_config") else None  # our LoRA, not MindFormers' (other Linear type)
    build_context(cfg)  # before anything reads MindFormers' context (else it switches MindSpore to PyNative)
    model = build_model_from_config(cfg, checkpoint=load_checkpoint)
    result = FinetuneResult(model=model)
    lora = LoraSettings.from_pet_config(pet)
    if lora is not None:
        result.lora_targets = apply_lora(model, lora)
    model.set_train(True)
    # the weights are loaded already; the Trainer reads a checkpoint only to resume from its own ones
    ckpt_dir = output_dir / "checkpoint"
    if resume and not any(ckpt_dir.glob("rank_*/*.ckpt")):
        log(f"[mf-ext] resume: no checkpoint in {ckpt_dir}, starting from step 0")
        resume = False
    cfg.load_checkpoint = ""

    class _Losses(Callback):
        def on_train_step_end(self, run_context):
            out = run_context.original_args().net_outputs
            loss = out[0] if isinstance(out, (tuple, list)) else out
            result.losses.append(float(loss.asnumpy()) if isinstance(loss, ms.Tensor) else float(loss))

    trainer = Trainer(args=cfg, task="text_generation", model=model, callbacks=[_Losses()])
    if resume:
        trainer.finetune(resume_from_checkpoint=str(ckpt_dir), resume_training=True)
    else:
        trainer.finetune()
    ckpts = sorted((output_dir / "checkpoint" / "rank_0").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    result.checkpoints = ckpts
    result.steps = len(result.losses)
    model.set_train(False)
    if result.losses:
        log(f"[mf-ext] done (mindformers Trainer): loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}")
    return result
