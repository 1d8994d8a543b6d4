"""The finetune run mode: a plain MindSpore training step behind MindFormers' YAML keys (CPU and Ascend).

Why not ``mindformers.Trainer``: on CPU its stock train-step wrapper needs ``NPUGetFloatStatusV2`` (no CPU kernel),
its data-parallel path needs ``comm_func.barrier`` (no CPU kernel) and ``build_context`` silently flips MindSpore
to PyNative unless called first. A compiled ``value_and_grad`` step is ~20 ms on a tiny model in graph mode, works
under ``msrun`` data parallel with MindSpore's own gradient reducer, and reads the same keys:

* ``runner_config.epochs`` / ``batch_size`` (per device) / ``stop_step`` or ``max_steps`` (optional early stop)
* ``optimizer`` (``type: AdamW`` (= AdamWeightDecay) or ``SGD``; ``betas``, ``eps``, ``weight_decay``,
  ``momentum``), ``runner_wrapper.use_clip_grad`` / ``max_grad_norm`` (global-norm clip)
* ``lr_schedule`` (``type``: ``ConstantWarmUpLR`` | ``LinearWithWarmUpLR`` | ``CosineWithWarmUpLR``;
  ``learning_rate``, ``lr_end``, ``warmup_steps`` or ``warmup_ratio``, ``total_steps``)
* ``train_dataset.data_loader.dataset_dir`` (a ``.mindrecord`` from ``mf-ext data``, or a folder of them),
  ``train_dataset.data_loader.shuffle``, ``seed``
* ``callbacks: [{type: CheckpointMonitor, prefix, save_checkpoint_steps, keep_checkpoint_max}]``
* ``output_dir`` → ``output_dir/checkpoint/rank_{r}/{prefix}_rank_{r}-{epoch}_{step}.ckpt`` (model + optimizer
  state + ``epoch_num``/``step_num``), ``resume_training``, ``load_checkpoint``
* ``use_parallel: True`` under ``msrun``: data parallel, gradients averaged (``gradients_mean``)
* ``model.model_config.pet_config`` (LoRA, see :mod:`mf_ext.train.lora`)
* ``trainer_backend: mindformers`` runs MindFormers' own ``Trainer`` instead (see :mod:`mf_ext.train.mf_trainer`)
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mf_ext.config import ConfigError

COLUMNS = ["input_ids", "labels"]


@dataclass
class FinetuneResult:
    """What a run did (returned to the launcher and tests)."""

    losses: list[float] = field(default_factory=list)  # per step, this process (after the DP all-reduce of grads)
    steps: int = 0  # global optimizer steps done at the end (including resumed ones)
    start_step: int = 0  # step the run resumed from
    tokens_per_s: float = 0.0  # mean over steps after the first (which includes graph compilation), all ranks
    checkpoints: list[Path] = field(default_factory=list)
    model: object = None
    lora_targets: list[str] = field(default_factory=list)
    rank: int = 0
    world: int = 1


def _get(node, key, default=None):
    if node is None:
        return default
    value = node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)
    return default if value is None else value


def lr_schedule(cfg_lr, total_steps: int) -> np.ndarray:
    """Per-step learning rates (float32, length ``total_steps + 1``) from MindFormers' ``lr_schedule`` keys."""
    kind = str(_get(cfg_lr, "type", "ConstantWarmUpLR"))
    lr = float(_get(cfg_lr, "learning_rate", 1e-5))
    lr_end = float(_get(cfg_lr, "lr_end", 0.0))
    total = int(_get(cfg_lr, "total_steps", -1))
    total = total_steps if total is None or total <= 0 else total
    warmup = _get(cfg_lr, "warmup_steps", None)
    if warmup is None:
        warmup = int(float(_get(cfg_lr, "warmup_ratio", 0.0)) * total)
    warmup = int(warmup)
    steps = np.arange(total_steps + 1, dtype=np.float64)
    decay_len = max(total - warmup, 1)
    progress = np.clip((steps - warmup) / decay_len, 0.0, 1.0)
    if kind in ("ConstantWarmUpLR", "constant"):
        after = np.full_like(steps, lr)
    elif kind in ("LinearWithWarmUpLR", "linear"):
        after = lr + (lr_end - lr) * progress
    elif kind in ("CosineWithWarmUpLR", "cosine"):
        after = lr_end + 0.5 * (lr - lr_end) * (1.0 + np.cos(math.pi * progress))
    else:
        raise ConfigError(
            f"lr_schedule.type: {kind!r} is not supported; expected ConstantWarmUpLR, LinearWithWarmUpLR or "
            "CosineWithWarmUpLR"
        )
    # MindFormers' warm-up ramps linearly from 0 over `warmup` steps (step s uses lr * (s + 1) / warmup).
    ramp = lr * (steps + 1) / max(warmup, 1)
    return np.where(steps < warmup, ramp, after).astype(np.float32)


def _build_optimizer(cfg_opt, params, lrs):
    from mindspore import Tensor, nn

    kind = str(_get(cfg_opt, "type", "AdamW"))
    lr = Tensor(lrs)
    wd = float(_get(cfg_opt, "weight_decay", 0.0))
    # Decay matrices only (not norms / 1-D tensors), as MindFormers' default grouping does.
    decay = [p for p in params if len(p.shape) >= 2]
    no_decay = [p for p in params if len(p.shape) < 2]
    groups = [{"params": decay, "weight_decay": wd}] + ([{"params": no_decay, "weight_decay": 0.0}] if no_decay else [])
    if kind in ("AdamW", "AdamWeightDecay", "FusedAdamWeightDecay", "adamw"):
        betas = _get(cfg_opt, "betas", [0.9, 0.999])
        eps = float(_get(cfg_opt, "eps", 1e-8))
        return nn.AdamWeightDecay(groups, learning_rate=lr, beta1=float(betas[0]), beta2=float(betas[1]), eps=eps)
    if kind in ("SGD", "sgd"):
        return nn.SGD(groups, learning_rate=lr, momentum=float(_get(cfg_opt, "momentum", 0.0)))
    raise ConfigError(f"optimizer.type: {kind!r} is not supported; expected AdamW (AdamWeightDecay) or SGD")


def _train_step_cell(network, optimizer, max_grad_norm: float):
    from mindspore import nn, ops

    class TrainStep(nn.TrainOneStepCell):
        """Loss, grads (all-reduced and averaged under data parallel), optional global-norm clip, update.

        No overflow check: fp32/bf16 training needs none, and the NPU status op it would use has no CPU kernel.
        """

        def __init__(self, net, opt, clip):
            super().__init__(net, opt, sens=1.0)
            self.clip = clip

        def construct(self, input_ids, labels):
            loss = self.network(input_ids, labels)
            sens = ops.fill(loss.dtype, loss.shape, self.sens)
            grads = self.grad(self.network, self.weights)(input_ids, labels, sens)
            grads = self.grad_reducer(grads)
            if self.clip > 0:
                grads = ops.clip_by_global_norm(grads, self.clip)
            return ops.depend(loss, self.optimizer(grads))

    class LossNet(nn.Cell):
        def __init__(self, model):
            super().__init__(auto_prefix=False)  # keep the model's parameter names in checkpoints
            self.model = model

        def construct(self, input_ids, labels):
            return self.model(input_ids, labels)

    return TrainStep(LossNet(network), optimizer, max_grad_norm)


def _dataset_files(path: Path) -> list[str]:
    if path.is_dir():
        files = sorted(str(p) for p in path.glob("*.mindrecord"))
        if not files:
            raise ConfigError(f"train_dataset.data_loader.dataset_dir: folder {str(path)!r} holds no *.mindrecord")
        return files
    if not path.exists():
        raise ConfigError(f"train_dataset.data_loader.dataset_dir: {str(path)!r} does not exist")
    if not Path(str(path) + ".db").exists():
        raise ConfigError(
            f"train_dataset.data_loader.dataset_dir: {str(path)!r} has no {path.name + '.db'!r} index beside it "
            "(expected a MindRecord written by `mf-ext data`)"
        )
    return [str(path)]


def _num_rows(files: list[str]) -> int:
    import mindspore.dataset as ds

    try:
        return ds.MindDataset(files, columns_list=COLUMNS, shuffle=False).get_dataset_size()
    except Exception as e:  # MindSpore raises RuntimeError with a multi-line C++ trace: keep the first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"train dataset {files[0]!r} cannot be read as MindRecord with {COLUMNS}: {first}") from None


def _epoch_batches(files, order: np.ndarray, batch_size: int, skip: int):
    """Yield ``(input_ids, labels)`` numpy batches for this rank's row order, skipping ``skip`` batches."""
    import mindspore.dataset as ds

    rows = order[skip * batch_size :]
    if len(rows) == 0:
        return
    sampler = ds.SubsetSampler([int(i) for i in rows])
    d = ds.MindDataset(files, columns_list=COLUMNS, sampler=sampler).batch(batch_size, drop_remainder=True)
    yield from d.create_tuple_iterator(num_epochs=1, output_numpy=True)


_CKPT_RE = re.compile(r"-(\d+)_(\d+)\.ckpt$")


def find_last_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint with the highest ``step_num`` in ``ckpt_dir`` (hidden temporaries ignored)."""
    if not ckpt_dir.is_dir():
        return None
    best, best_step = None, -1
    for p in ckpt_dir.glob("*.ckpt"):
        if p.name.startswith("."):
            continue
        step = _read_step(p)
        if step > best_step:
            best, best_step = p, step
    return best


def _read_step(path: Path) -> int:
    import mindspore as ms

    try:
        d = ms.load_checkpoint(str(path), choice_func=lambda n: n in ("step_num", "epoch_num"))
    except Exception:  # an unreadable file is not a resume candidate
        return -1
    return int(d["step_num"].asnumpy()) if "step_num" in d else -1


def _save_checkpoint(train_step, path: Path, epoch: int, step: int, hf_config: dict | None) -> None:
    """Write ``path`` atomically (hidden temporary + rename) with the HF config beside it for export."""
    import mindspore as ms

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.ckpt")
    ms.save_checkpoint(train_step, str(tmp), append_dict={"epoch_num": epoch, "step_num": step})
    if hf_config is not None:
        cfg_tmp = path.with_name(f".{path.name}.config.json.tmp")
        cfg_tmp.write_text(json.dumps(hf_config, indent=2))
        os.replace(cfg_tmp, str(path) + ".config.json")
    os.replace(tmp, path)


def _hf_config_for(model, load_checkpoint) -> dict | None:
    if load_checkpoint:
        from mf_ext.convert import find_source_config

        src = find_source_config(load_checkpoint)
        if src is not None:
            return json.loads(Path(src).read_text())
    to_hf = getattr(getattr(model, "config", None), "to_hf_config", None)
    return to_hf() if callable(to_hf) else None


def finetune(
    config,
    *,
    train_dataset: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    load_checkpoint: str | os.PathLike | None = None,
    resume: bool | str = False,
    run_mode: str = "finetune",
    max_steps: int | None = None,
    progress: bool = True,
    print_fn=None,
) -> FinetuneResult:
    """Finetune the model of an already-loaded ``MindFormerConfig`` (``auto_register`` already resolved).

    Args:
        config: the loaded config (``mf_ext.config.load_config``); not modified.
        train_dataset: MindRecord file/folder; default ``train_dataset.data_loader.dataset_dir``.
        output_dir: default ``config.output_dir`` or ``./output``; checkpoints go to ``checkpoint/rank_{r}/``.
        load_checkpoint: MindSpore weights to start from (e.g. the ``--convert`` result); default YAML key.
        resume: continue from the last checkpoint in ``output_dir/checkpoint/rank_{r}`` (model, optimizer,
            learning-rate position and data position); a name or path: from that checkpoint.
        max_steps: stop after this many global steps (default ``runner_config.max_steps`` or all epochs).
    Returns:
        :class:`FinetuneResult` with the per-step losses, throughput, checkpoints and the trained model.
    """
    import mindspore as ms
    from mindspore import Tensor
    from tqdm import tqdm

    from mf_ext.api import build_model_from_config, set_context

    log = print_fn or (lambda msg: tqdm.write(msg, file=sys.stdout))
    cfg = copy.deepcopy(config)
    runner = _get(cfg, "runner_config", {})
    epochs = int(_get(runner, "epochs", 1))
    batch_size = int(_get(runner, "batch_size", 1))
    if max_steps is None:  # ours, or MindFormers' `stop_step` (0 = off)
        max_steps = _get(runner, "max_steps", None) or (int(_get(runner, "stop_step", 0) or 0) or None)
    if epochs < 1 or batch_size < 1:
        raise ConfigError(f"runner_config: epochs and batch_size must be >= 1, got {epochs!r} and {batch_size!r}")
    out_dir = Path(output_dir or _get(cfg, "output_dir", "./output"))
    data_loader = _get(_get(cfg, "train_dataset", {}), "data_loader", {})
    data_path = train_dataset or _get(data_loader, "dataset_dir", None)
    if not data_path:
        raise ConfigError("finetune needs a dataset: --train_dataset X or train_dataset.data_loader.dataset_dir")
    files = _dataset_files(Path(data_path))
    load_checkpoint = load_checkpoint or _get(cfg, "load_checkpoint", None) or None
    if load_checkpoint and not Path(load_checkpoint).exists():
        raise ConfigError(f"load_checkpoint: {str(load_checkpoint)!r} does not exist")
    seed = int(_get(cfg, "seed", 0) or 0)
    backend = str(_get(cfg, "trainer_backend", "mf_ext"))
    if backend == "mindformers":
        from .mf_trainer import finetune_with_mindformers

        return finetune_with_mindformers(
            cfg, data_files=files, output_dir=out_dir, load_checkpoint=load_checkpoint, resume=resume,
            progress=progress, log=log,
        )  # fmt: skip
    if backend != "mf_ext":
        raise ConfigError(f"trainer_backend: expected 'mf_ext' or 'mindformers', got {backend!r}")

    # Context first (CPU where no Ascend), then the communication group, then anything that builds cells.
    set_context(cfg)
    rank, world = 0, 1
    if _get(cfg, "use_parallel", False):
        from mindspore.communication import get_group_size, get_rank, init

        init()
        rank, world = get_rank(), get_group_size()
        ms.reset_auto_parallel_context()
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    ms.set_seed(seed)  # same seed on every rank: identical initial LoRA weights

    n_rows = _num_rows(files)
    steps_per_epoch = n_rows // (batch_size * world)
    if steps_per_epoch == 0:
        raise ConfigError(
            f"train dataset {str(data_path)!r} has {n_rows} rows, fewer than batch_size {batch_size} x {world} "
            "device(s): nothing to train on"
        )
    # Check data and LoRA settings before building (and loading) a possibly large model.
    from .lora import LoraSettings, apply_lora

    mc = cfg.model.model_config
    pet = mc.get("pet_config") if hasattr(mc, "get") else None
    if pet:
        mc.pop("pet_config")
    lora = LoraSettings.from_pet_config(pet)
    model = build_model_from_config(cfg, checkpoint=load_checkpoint)
    result = FinetuneResult(model=model, rank=rank, world=world)
    if lora is not None:
        result.lora_targets = apply_lora(model, lora)
    model.set_train(True)
    trainable = [p for p in model.get_parameters() if p.requires_grad]
    n_trainable = sum(int(np.prod(p.shape)) for p in trainable)
    n_total = sum(int(np.prod(p.shape)) for p in model.get_parameters())

    planned = steps_per_epoch * epochs
    # The schedule spans all epochs; an early stop (stop_step) only ends the run, so a later resume continues the
    # very same schedule and reaches the same weights as an uninterrupted run.
    total_steps = planned if max_steps is None else min(planned, int(max_steps))
    lrs = lr_schedule(_get(cfg, "lr_schedule", {}), planned)
    optimizer = _build_optimizer(_get(cfg, "optimizer", {}), trainable, lrs)
    wrapper = _get(cfg, "runner_wrapper", {})
    clip = float(_get(wrapper, "max_grad_norm", 1.0)) if _get(wrapper, "use_clip_grad", False) else 0.0
    train_step = _train_step_cell(model, optimizer, clip)
    train_step.set_train(True)

    ckpt_cfg = next((c for c in (_get(cfg, "callbacks", []) or []) if _get(c, "type") == "CheckpointMonitor"), {})
    prefix = str(_get(ckpt_cfg, "prefix", "mindformers"))
    save_every = int(_get(ckpt_cfg, "save_checkpoint_steps", steps_per_epoch) or steps_per_epoch)
    keep_max = int(_get(ckpt_cfg, "keep_checkpoint_max", 2) or 2)
    ckpt_dir = out_dir / "checkpoint" / f"rank_{rank}"
    hf_config = _hf_config_for(model, load_checkpoint)
    if hf_config is not None and lora is not None:  # export merges without being told rank and alpha again
        from .export import LORA_KEY

        hf_config = {
            **hf_config,
            LORA_KEY: {"rank": lora.rank, "alpha": lora.alpha, "target_modules": lora.target_modules},
        }

    start = 0
    if resume:
        last = find_last_checkpoint(ckpt_dir)
        if isinstance(resume, (str, os.PathLike)):  # run_mindformer.py's --resume_training NAME: that checkpoint
            last = Path(resume) if Path(resume).is_file() else ckpt_dir / str(resume)
            if not last.is_file():
                raise ConfigError(f"resume_training: checkpoint {str(resume)!r} is not in {str(ckpt_dir)!r}")
        if last is None:
            log(f"[mf-ext] resume: no checkpoint in {ckpt_dir}, starting from step 0")
        else:
            state = ms.load_checkpoint(str(last))
            start = int(state.pop("step_num").asnumpy())
            state.pop("epoch_num", None)
            not_loaded, _ = ms.load_param_into_net(train_step, state, strict_load=True)
            if not_loaded:
                raise ConfigError(f"resume: {str(last)!r} lacks {len(not_loaded)} parameter(s): {not_loaded[:3]}")
            log(f"[mf-ext] resumed from {last} at step {start}")
    result.start_step = start

    log(
        f"[mf-ext] finetune: {n_rows} rows, {world} device(s) x batch {batch_size}, {steps_per_epoch} steps/epoch, "
        f"{total_steps} steps; trainable params {n_trainable} of {n_total}"
        + (f" (LoRA r={lora.rank} alpha={lora.alpha:g} on {len(result.lora_targets)} layers)" if lora else "")
    )
    rng_base = np.random.default_rng(seed)
    epoch_seeds = rng_base.integers(0, 2**31, size=epochs)
    shuffle = bool(_get(data_loader, "shuffle", True))
    step = start
    rate_tokens, rate_time = 0, 0.0
    saved: list[Path] = []
    bar = tqdm(
        total=total_steps,
        initial=start,
        desc=f"finetune rank {rank}",
        disable=None if progress else True,
        file=sys.stderr,
    )
    try:
        for epoch in range(start // steps_per_epoch, epochs):
            if step >= total_steps:
                break
            # Same order on every rank (same seed); rank r takes rows r, r+world, ... so the global batch of step s
            # is the concatenation of every rank's batch s.
            order = np.random.default_rng(epoch_seeds[epoch]).permutation(n_rows) if shuffle else np.arange(n_rows)
            order = order[: steps_per_epoch * batch_size * world][rank::world]
            skip = step - epoch * steps_per_epoch
            for ids, labels in _epoch_batches(files, order, batch_size, skip):
                if step >= total_steps:
                    break
                t0 = time.perf_counter()
                loss = float(train_step(Tensor(ids, ms.int32), Tensor(labels, ms.int32)).asnumpy())
                dt = time.perf_counter() - t0
                step += 1
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss} at step {step}: lower lr_schedule.learning_rate")
                result.losses.append(loss)
                tokens = ids.size * world
                if len(result.losses) > 1:  # the first step includes graph compilation
                    rate_tokens += tokens
                    rate_time += dt
                tps = tokens / dt
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tps:.0f}")
                log(
                    f"[mf-ext] epoch {epoch + 1}/{epochs} step {step}/{total_steps} loss {loss:.6f} "
                    f"lr {float(lrs[min(step - 1, len(lrs) - 1)]):.3e} tokens/s {tps:.0f}"
                )
                in_epoch = step - epoch * steps_per_epoch
                if step % save_every == 0 or step == total_steps or in_epoch == steps_per_epoch:
                    path = ckpt_dir / f"{prefix}_rank_{rank}-{epoch + 1}_{in_epoch}.ckpt"
                    _save_checkpoint(train_step, path, epoch + 1, step, hf_config)
                    saved.append(path)
                    while len(saved) > keep_max:
                        old = saved.pop(0)
                        for stale in (old, Path(str(old) + ".config.json")):
                            stale.unlink(missing_ok=True)
    finally:
        bar.close()
    result.steps = step
    result.checkpoints = saved
    result.tokens_per_s = rate_tokens / rate_time if rate_time > 0 else 0.0
    model.set_train(False)
    if result.losses:
        log(
            f"[mf-ext] done: {step - start} steps, loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}, "
            f"{result.tokens_per_s:.0f} tokens/s (all ranks, after compile); last checkpoint "
            f"{saved[-1] if saved else '-'}"
        )
    return result
