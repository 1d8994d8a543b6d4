"""Python API: what the launcher itself uses, and what tests, notebooks and ``mf-ext verify`` call.

    model = mf_ext.load_model(config="research/llama3_1/predict.yaml", register_path="research/llama3_1",
                              convert="path/to/hf_dir")
    tok = mf_ext.load_tokenizer(config="research/llama3_1/predict.yaml", register_path="research/llama3_1")
    ids = mf_ext.generate(model, tok.encode("hello")[None], max_new_tokens=32)

Models and tokenizers are built through MindFormers' own builders (``build_model`` / ``build_tokenizer``) from the
registry that :func:`mf_ext.config.load_config` filled; nothing here knows a model family by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from mf_ext.config import ConfigError, detect_device_target, load_config_ex
from mf_ext.errors import MfExtError, one_line


def converter_sources(plugin) -> list[Path]:
    """Files of a family folder whose content decides what a conversion produces (part of the cache key): the
    converter entry points, ``family.py``, and the modules its weight specs and HF-config mapping live in."""
    fam = plugin.family
    modules = {ref.partition(":")[0] for ref in fam.specs.values()}
    if fam.hf_config:
        modules.add(fam.hf_config)
    files = [plugin.root / n for n in ("convert_weight.py", "convert_reversed.py", "family.py")]
    files += [f for f in (plugin.module_file(m) for m in sorted(modules)) if f is not None]
    return [f for f in files if f.is_file()]


def _model_overrides(overrides: dict) -> dict:
    """Keyword overrides: a bare key goes to ``model.model_config``; a dotted key is taken as a full key path."""
    return {(k if "." in k else f"model.model_config.{k}"): v for k, v in overrides.items()}


def hf_weight_files(hf_dir: Path) -> list[Path]:
    """The weight files of an HF folder (safetensors / .bin / Meta consolidated .pth), sorted."""
    files: list[Path] = []
    for pattern in ("*.safetensors", "*.bin", "consolidated.*.pth"):
        files += sorted(p for p in hf_dir.glob(pattern) if p.is_file())
    return files


def cache_root() -> Path:
    """Where converted checkpoints are cached: ``$MF_EXT_CACHE`` or ``~/.cache/mf-ext``."""
    return Path(os.environ.get("MF_EXT_CACHE") or Path.home() / ".cache" / "mf-ext")


def check_hf_dir(src: Path) -> list[Path]:
    """An HF checkpoint folder must exist and hold config.json and weights; returns the weight files."""
    if not src.is_dir():
        raise ConfigError(
            f"--convert: {str(src)!r} is not a folder (expected an HF checkpoint folder with config.json)"
        )
    if not (src / "config.json").is_file():
        raise ConfigError(f"--convert: {str(src)!r} has no config.json (expected an HF checkpoint folder)")
    files = hf_weight_files(src)
    if not files:
        raise ConfigError(f"--convert: {str(src)!r} holds no weights (*.safetensors, *.bin or consolidated.*.pth)")
    return files


def convert_cached(
    plugin,
    hf_dir: str | os.PathLike,
    *,
    dtype: str | None = None,
    qkv_concat: bool = False,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
    who: str | None = None,
) -> Path:
    """Convert an HF folder with the plug-in's ``convert_pt_to_ms`` once; later calls with unchanged input reuse it.

    The cache key covers the input files (names, sizes, mtimes), the plug-in's converter sources and the options, so
    a changed checkpoint or converter converts again. The converter writes under a temporary name and renames, so an
    interrupted conversion never leaves a file that looks finished. ``who`` names what asked for ``qkv_concat`` in
    the one-line refusal of a converter that cannot honour it.
    """
    src = Path(hf_dir)
    files = check_hf_dir(src)
    h = hashlib.sha256()
    for f in [src / "config.json", *files, *(src / n for n in ("model.safetensors.index.json",) if (src / n).exists())]:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    engine = sorted((Path(__file__).resolve().parent / "convert").glob("*.py"))  # the engine's code counts too
    for f in [*converter_sources(plugin), *engine]:
        h.update(f.read_bytes())
    h.update(json.dumps({"dtype": dtype, "qkv_concat": bool(qkv_concat), "src": str(src.resolve())}).encode())
    out_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "convert"
    out = out_dir / h.hexdigest()[:20] / "model.ckpt"
    if out.is_file():
        if verbose:
            print(f"[mf-ext] using cached conversion of {str(src)!r}: {out}", flush=True)
        return out
    if verbose:
        print(f"[mf-ext] converting {str(src)!r} with {plugin.root.name}/convert_weight.py -> {out}", flush=True)
    from mf_ext.convert.plugin_call import call_converter

    created = not out.parent.exists()
    t0 = time.perf_counter()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # A folder written for MindFormers' convert_weight.py gets its conventions; what it cannot honour is refused.
        # A bar only on a terminal: in a log or a pipe it would stay behind as "0%| 0.00/4.25M" without a newline.
        call_converter(
            plugin,
            "hf_to_ms",
            src,
            out,
            dtype=dtype,
            qkv_concat=bool(qkv_concat),
            progress=verbose and sys.stderr.isatty(),
            who=who,
        )
        if not out.is_file():
            raise ConfigError(f"{plugin.root.name}/convert_weight.py: convert_pt_to_ms produced no {str(out)!r}")
    except BaseException:  # a failed or interrupted (Ctrl-C) conversion leaves no cache folder that looks started
        if created:
            shutil.rmtree(out.parent, ignore_errors=True)
        raise
    if verbose:
        size = out.stat().st_size
        print(f"[mf-ext] converted {size / 2**20:.1f} MiB in {time.perf_counter() - t0:.2f} s", flush=True)
    return out


def in_place_weights(plugin, hf_dir: Path, *, dtype=None, qkv_concat=False):
    """The HF folder as :class:`~mf_ext.convert.inplace.InPlaceWeights` when ``plugin``'s family maps it by renames
    alone (mf-ext's converter convention, safetensors, no output dtype asked), else ``None``."""
    from mf_ext.convert.plugin_call import convention

    fam = plugin.family
    if "hf" not in (fam.specs or {}):
        return None
    # a family.py folder converts with mf-ext's engine: no need to import its converter (0.3 s) to ask
    if fam.legacy and convention(plugin, plugin.convert_pt_to_ms) != "mf_ext":
        return None
    from mf_ext.convert.inplace import plan_in_place
    from mf_ext.registry import plugin_imports

    with plugin_imports():
        return plan_in_place(fam.spec("hf"), hf_dir, dtype=dtype, qkv_concat=qkv_concat)


def converter_plugin(entries, register_path, hf_dir: Path, model_name: str | None = None):
    """The plug-in whose ``convert_weight.py`` converts ``hf_dir`` for this YAML's model.

    In order: the folder of the model class, of the config class, a register path that holds a converter, the
    tokenizer's folder; else (a MindFormers built-in model, e.g. ``LlamaForCausalLM`` with a tokenizer-only
    ``auto_register``) the built-in family that reads ``hf_dir/config.json``, whose checkpoints use MindFormers'
    parameter names.
    """
    from mf_ext.registry import CONVERT_FILE, RegistryError, family_for_hf_config, load_plugin, parse_register_paths

    candidates = [e.plugin for kind in ("models", "config") for e in entries if e.module_type == kind]
    candidates += [load_plugin(p) for p in parse_register_paths(register_path)]
    candidates += [e.plugin for e in entries if e.module_type == "tokenizer"]
    for plugin in candidates:
        if (plugin.root / CONVERT_FILE).is_file():
            return plugin
    model = model_name or next((e.cls.__name__ for e in entries if e.module_type == "models"), None)
    try:
        hf = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
        return family_for_hf_config(hf)
    except (OSError, json.JSONDecodeError, RegistryError) as exc:
        folders = ", ".join(dict.fromkeys(repr(str(p.root)) for p in candidates)) or "none given"
        raise ConfigError(
            f"--convert: no converter for {model or 'the YAML model'}: no {CONVERT_FILE} in its plug-in folders "
            f"({folders}) and no built-in family reads {str(hf_dir / 'config.json')!r} ({one_line(exc)})"
        ) from None


def apply_hf_architecture(cfg, entries, hf_config: Path, *, who: str = "--convert") -> None:
    """Take the architecture from an HF ``config.json`` (a file, or a folder holding one): the family's mapping
    (``Family.hf_config``, its ``arch_keys``) for a config class of a family folder, else the config class's own
    ``from_hf_config`` / ``HF_ARCHITECTURE_KEYS``; only those keys change."""
    from mf_ext.registry import family_of

    cfg_cls = next((e.cls for e in entries if e.module_type == "config"), None)
    fam = family_of(cfg_cls) if cfg_cls is not None else None
    if fam is not None and fam.hf_config is not None:
        derive, keys = fam.hf_mapping()[0], fam.arch_keys
    elif cfg_cls is not None and hasattr(cfg_cls, "from_hf_config"):
        derive, keys = cfg_cls.from_hf_config, getattr(cfg_cls, "HF_ARCHITECTURE_KEYS", ())
    else:
        return
    path = Path(hf_config)
    path = path / "config.json" if path.is_dir() else path
    try:
        hf = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{who}: {str(path)!r} is not valid JSON ({exc})") from None
    try:
        derived = derive(hf)
    except (ValueError, TypeError, KeyError) as exc:
        detail = str(exc).removeprefix("config.json: ")
        raise ConfigError(f"{who}: {str(path)!r}: {detail}") from None
    # Only the architecture comes from config.json; run settings (seq_length, dtypes, use_past, pet_config, ...)
    # stay as the YAML says.
    model_config = cfg.model.model_config
    changed = []
    for key in keys:
        value = getattr(derived, key, None) if not isinstance(derived, dict) else derived.get(key)
        if value is None and key.endswith("_token_id"):  # unset in config.json: the YAML's id is the better guess
            continue
        if value is not None or key in model_config:
            if key in model_config and model_config[key] != value:
                changed.append(f"{key} {model_config[key]!r} -> {value!r}")
            model_config[key] = value
    if changed:  # the YAML disagreed with the weights: say what config.json decided
        print(f"[mf-ext] {who}: architecture taken from {str(path)!r}: {'; '.join(changed)}", flush=True)
    settle_token_ids(cfg, path, who=who)


# YAML token-id key -> the tokenizer attribute naming the same token (tokenizer_config.json, the YAML's tokenizer)
_TOKEN_KEYS = {"bos_token_id": "bos_token", "eos_token_id": "eos_token", "pad_token_id": "pad_token"}


def _ids_of(value) -> list[int] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return [value]
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return list(value)
    return None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _token_string(value) -> str | None:
    if isinstance(value, dict):  # {"content": "<|eot_id|>", ...} in tokenizer_config.json / special_tokens_map.json
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _hf_token_id(
    folder: Path | None, key: str, yaml_token: str | None, vocab: int
) -> tuple[int | list[int], str] | None:
    """``key``'s id from an HF folder: generation_config.json, else the token named by the tokenizer files (or by
    the YAML's tokenizer) looked up in tokenizer.json / tokenizer_config.json. Only ids inside ``[0, vocab)``."""
    if folder is None:
        return None
    gen = _read_json(folder / "generation_config.json").get(key)
    ids = _ids_of(gen)
    if ids is not None and all(0 <= i < vocab for i in ids):
        return gen, "generation_config.json"
    attr = _TOKEN_KEYS[key]
    tok_cfg = _read_json(folder / "tokenizer_config.json")
    names = [
        (_token_string(tok_cfg.get(attr)), "tokenizer_config.json"),
        (_token_string(_read_json(folder / "special_tokens_map.json").get(attr)), "special_tokens_map.json"),
        (yaml_token, f"the YAML's processor.tokenizer.{attr}"),
    ]
    table: dict[str, int] = {}
    for tid, entry in (tok_cfg.get("added_tokens_decoder") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("content"), str) and str(tid).isdigit():
            table[entry["content"]] = int(tid)
    tok_json = _read_json(folder / "tokenizer.json")
    for entry in tok_json.get("added_tokens") or []:
        if isinstance(entry, dict) and isinstance(entry.get("content"), str) and isinstance(entry.get("id"), int):
            table.setdefault(entry["content"], entry["id"])
    vocab_map = (tok_json.get("model") or {}).get("vocab")
    for name, source in names:
        if name is None:
            continue
        tid = table.get(name)
        if tid is None and isinstance(vocab_map, dict):
            tid = vocab_map.get(name)
        if isinstance(tid, int) and 0 <= tid < vocab:
            return tid, f"{source} ({name!r})"
    return None


def settle_token_ids(cfg, hf_config: Path, *, who: str = "--convert") -> None:
    """Token ids of ``model.model_config`` outside the vocabulary (a YAML's Llama 3 ``pad_token_id: 128004`` on a
    model of 1280 tokens) are taken from the HF folder beside ``hf_config`` or refused: an id the embedding table
    lacks would only surface as a kernel error (``Gather ... input_indices should be in the range``)."""
    mc = cfg.model.model_config
    vocab = mc.get("vocab_size")
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab <= 0:
        return
    path = Path(hf_config)
    folder = path.parent if path.name == "config.json" else None  # x.ckpt.config.json has no tokenizer beside it
    tokenizer = (cfg.get("processor") or {}).get("tokenizer") or {}
    for key, attr in _TOKEN_KEYS.items():
        value = mc.get(key)
        ids = _ids_of(value)
        if ids is None or all(i < vocab for i in ids):  # negative ids mean "none" (e.g. eos -1 disables stopping)
            continue
        found = _hf_token_id(folder, key, _token_string(tokenizer.get(attr)), vocab)
        if found is None:
            where = str(folder) if folder is not None else str(path)
            raise ConfigError(
                f"model.model_config.{key}: {value!r} is outside the vocabulary of {str(path)!r} (vocab_size {vocab}) "
                f"and {where!r} names no {attr} (config.json, generation_config.json, tokenizer files); "
                f"set one with --model.model_config.{key} ID"
            )
        mc[key] = found[0]
        print(
            f"[mf-ext] {who}: model.model_config.{key} {value!r} is outside vocab_size {vocab}; "
            f"using {found[0]!r} from {found[1]}",
            flush=True,
        )


class BackendError(MfExtError, RuntimeError):
    """The model uses an operator MindSpore has no kernel for on this device (one line, naming class and op)."""


_MISSING_KERNEL = (
    re.compile(r"Unsupported op \[(?P<op>\w+)\] on (?P<device>\w+)"),
    re.compile(r"[Kk]ernel (?P<op>\w+) unregistered"),
    re.compile(r"Can not find (?:the )?kernel (?:for|of) (?:op )?\[?(?P<op>\w+)\]?"),
)


def backend_error(exc: BaseException, model_class: str) -> BackendError | None:
    """The one-line error for a MindSpore ``RuntimeError`` about an operator without a kernel on this device (None
    for any other error: that is a bug and keeps its traceback)."""
    text = str(exc)
    for pattern in _MISSING_KERNEL:
        m = pattern.search(text)
        if m:
            device = m.groupdict().get("device")
            if not device:
                try:
                    import mindspore as ms

                    device = ms.get_context("device_target")
                except Exception:  # noqa: BLE001 -- only for the message
                    device = "this device"
            return BackendError(
                f"{model_class} cannot run on {device}: MindSpore has no {device} kernel for the operator "
                f"{m.group('op')!r} it uses (run it on Ascend, or use a model class with a {device} fallback)"
            )
    return None


def set_context(cfg, device_target: str | None = None, mode=None) -> None:
    """Set MindSpore's device and mode from the YAML ``context`` (CPU where no Ascend is present)."""
    import mindspore as ms

    ctx = cfg.get("context") or {}
    target = device_target or ctx.get("device_target") or detect_device_target()
    if target == "Ascend" and detect_device_target() != "Ascend":
        target = "CPU"
    mode = parse_mode(ctx.get("mode", 0) if mode is None else mode)
    if mode == "auto":  # graph until the launcher knows the work (choose_mode); the API builds for graph mode
        mode = 0
    ms.set_context(mode=mode, device_target=target)
    if mode == 1 and target == "CPU":
        # PyNative's asynchronous op queue costs more than the ops of a small model on CPU (measured: 10 decode steps
        # of the demo model 3.9 s async, 1.0 s synchronous); same results.
        ms.set_context(pynative_synchronize=True)
    if target == "CPU":
        cfg.setdefault("context", {})["device_target"] = "CPU"


def parse_mode(mode):
    """``context.mode`` / ``--mode``: 0 (graph), 1 (PyNative) or ``"auto"`` (the launcher's predict picks)."""
    if mode is None:
        return "auto"
    if isinstance(mode, str):
        mode = {"GRAPH_MODE": 0, "PYNATIVE_MODE": 1, "GRAPH": 0, "PYNATIVE": 1, "AUTO": "auto"}.get(
            mode.strip().upper(), mode
        )
        if isinstance(mode, str) and mode.strip() in ("0", "1"):
            mode = int(mode)
    if mode not in (0, 1, "auto") or isinstance(mode, bool):
        raise ConfigError(f"context.mode: expected 0 (GRAPH_MODE), 1 (PYNATIVE_MODE) or auto, got {mode!r}")
    return mode


# ``mode: auto`` (predict). Measured on the 2-core CPU (benchmarks/startup.py): a PyNative (synchronous) decoder-layer
# step of a small model costs 15-25 ms of op dispatch, a graph compile of one forward (prefill or decode; one layer
# graph shared by all layers, so it does not grow with depth) 2-3 s, a compiled step ~4 ms, loading a compiled graph
# from the compile cache ~0.3 s. So: work of at most AUTO_EAGER_LAYER_STEPS layer steps runs in PyNative; above it the
# decode graph is compiled (and cached), and a prompt of at most that many layer steps is still prefilled eagerly,
# which saves the prefill graph's compile. Per-op dispatch does not depend on the parameter count, so the rule counts
# layer steps; with bigger weights the compiled graph's per-step gain only grows.
AUTO_EAGER_LAYER_STEPS = 64


def choose_mode(layers: int, prefill_calls: int, decode_calls: int) -> tuple[int, bool]:
    """``(mode, eager_prefill)`` for ``mode: auto``: 1 (PyNative) for small work, else 0 (graph) with the prefill
    eager when it is small."""
    if (prefill_calls + decode_calls) * layers <= AUTO_EAGER_LAYER_STEPS:
        return 1, False
    return 0, prefill_calls * layers <= AUTO_EAGER_LAYER_STEPS


def _tree_hash(h, files) -> None:
    for f in sorted(set(files)):
        h.update(f.name.encode())
        h.update(f.read_bytes())


def compile_cache_dir(cfg, model, shapes) -> Path:
    """Folder of MindSpore's compile cache for this model and work, under ``$MF_EXT_CACHE/compile``: named by a hash
    of what decides the compiled graphs -- MindSpore's, MindFormers' and Python's versions, the device, the model's
    class and ``model_config`` (architecture, dtypes, run settings), every ``.py`` of mf_ext and of the model's
    plug-in folder, and ``shapes`` (the KV-buffer lengths in the order the run meets them). Weights are not part of
    the graphs (MindSpore binds them at run time), so they are not part of the key."""
    import mindformers
    import mindspore as ms

    h = hashlib.sha256()
    info = {
        "mindspore": ms.__version__,
        "mindformers": getattr(mindformers, "__version__", "?"),
        "python": sys.version,
        "device": ms.get_context("device_target"),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model_config": cfg.model.model_config,
        "shapes": list(shapes),
    }
    h.update(json.dumps(info, sort_keys=True, default=str).encode())
    _tree_hash(h, Path(__file__).resolve().parent.rglob("*.py"))
    module = sys.modules.get(type(model).__module__)
    src = Path(getattr(module, "__file__", "") or "")
    if src.is_file():
        _tree_hash(h, src.parent.glob("*.py"))
    return cache_root() / "compile" / h.hexdigest()[:20]


def compile_cache_enabled() -> bool:
    """``MF_EXT_COMPILE_CACHE=0`` turns the launcher's graph compile cache off."""
    return os.environ.get("MF_EXT_COMPILE_CACHE", "1") not in ("", "0")


def enable_compile_cache(path: Path) -> None:
    """Let MindSpore load compiled graphs from ``path`` and save the ones it compiles there."""
    import mindspore as ms

    path.mkdir(parents=True, exist_ok=True)
    ms.set_context(enable_compile_cache=True, compile_cache_path=str(path))


def load_checkpoint_into(model, checkpoint: str | os.PathLike, *, strict: bool = True) -> None:
    """Load a MindSpore ``.ckpt`` (or a folder of MindSpore-named safetensors) into ``model``.

    With ``strict`` every parameter of the model must be in the checkpoint and every checkpoint tensor must be a
    parameter of the model; anything else is a one-line error naming the first few names.
    """
    import mindspore as ms

    from mf_ext.convert.inplace import InPlaceWeights

    if isinstance(checkpoint, InPlaceWeights):
        checkpoint.load_into(model)
        return
    path = Path(checkpoint)
    if not path.exists():
        raise ConfigError(f"load_checkpoint: {str(checkpoint)!r} does not exist")
    if path.is_dir():
        params = {}
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.ckpt"))
        if not files:
            raise ConfigError(f"load_checkpoint: folder {str(checkpoint)!r} holds no .safetensors or .ckpt files")
        for f in files:
            fmt = "safetensors" if f.suffix == ".safetensors" else "ckpt"
            params.update(ms.load_checkpoint(str(f), format=fmt))
    else:
        fmt = "safetensors" if path.suffix == ".safetensors" else "ckpt"
        try:
            params = ms.load_checkpoint(str(path), format=fmt)
        except Exception as exc:
            raise ConfigError(
                f"load_checkpoint: cannot read {str(checkpoint)!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
    from mf_ext.convert.train_state import is_train_state

    # A finetune checkpoint also holds optimizer state and counters (adam_m.*, global_step, ...): not model weights.
    params = {k: v for k, v in params.items() if not is_train_state(k, params)}
    model_params = {p.name: p for p in model.get_parameters()}
    model_names = set(model_params)
    # A checkpoint in another float dtype than the model's parameters (bf16 weights, fp32 model on CPU) is cast to
    # the parameter's dtype: MindSpore refuses to load across dtypes, and a user expects it to just work.
    for name, value in list(params.items()):
        target = model_params.get(name)
        if (
            target is not None
            and value.dtype != target.dtype
            and value.dtype.is_floating_point
            and target.dtype.is_floating_point
        ):
            params[name] = ms.Parameter(ms.ops.cast(value, target.dtype), name=name)
    if strict:
        missing = sorted(model_names - set(params))
        extra = sorted(set(params) - model_names)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} model parameter(s) missing from it: {', '.join(missing[:4])}")
            if extra:
                parts.append(f"{len(extra)} tensor(s) the model does not have: {', '.join(extra[:4])}")
            raise ConfigError(f"load_checkpoint {str(checkpoint)!r} does not fit the model: {'; '.join(parts)}")
    try:
        not_loaded, _ = ms.load_param_into_net(model, params, strict_load=strict)
    except (RuntimeError, ValueError, TypeError) as exc:  # a shape that differs: the YAML's architecture is not theirs
        raise ConfigError(
            f"load_checkpoint {str(checkpoint)!r} does not fit {type(model).__name__}: {one_line(exc)}"
        ) from None
    if strict and not_loaded:
        raise ConfigError(f"load_checkpoint {str(checkpoint)!r}: parameters not loaded: {', '.join(not_loaded[:4])}")


def prepare(
    config, register_path=None, *, convert=None, checkpoint=None, overrides=None, dtype=None, flags=None, in_place=False
):
    """Load the config and settle which weights to load. Returns ``(cfg, entries, checkpoint_or_None)``.

    ``convert`` (else the YAML's ``convert``, unless a ``checkpoint`` is given) is converted with the plug-in's
    converter (cached) and its ``config.json`` sets the architecture. Otherwise the checkpoint (argument, else YAML
    ``load_checkpoint``) is used, and the HF ``config.json`` our converters and trainer keep beside it
    (``x.ckpt.config.json``), if present, sets the architecture, so a converted or finetuned checkpoint runs with
    any YAML of its family. ``flags`` are passed to :func:`mf_ext.config.load_config_ex`.

    ``in_place`` (inference): an HF safetensors folder whose family mapping only renames tensors is not converted;
    the checkpoint returned is then a :class:`mf_ext.convert.inplace.InPlaceWeights` read from the folder itself.
    """
    cfg, entries = load_config_ex(config, register_path, overrides, flags=flags)
    if convert is None and checkpoint is None:
        convert = cfg.get("convert") or None
    if convert:
        hf_dir = Path(convert)
        check_hf_dir(hf_dir)
        plugin = converter_plugin(entries, register_path, hf_dir, (cfg.model.get("arch") or {}).get("type"))
        apply_hf_architecture(cfg, entries, hf_dir)
        _reapply_model_overrides(cfg, overrides)
        qkv = bool(cfg.model.model_config.get("qkv_concat", False))
        # in place only into the converter folder's own model class (its spec names that class's parameters)
        own = any(e.module_type == "models" and e.plugin.root == plugin.root for e in entries)
        if in_place and own and not checkpoint:
            weights = in_place_weights(plugin, hf_dir, dtype=dtype, qkv_concat=qkv)
            if weights is not None:
                print(f"[mf-ext] loading {str(hf_dir)!r} in place (safetensors, names mapped by the family's spec)")
                return cfg, entries, weights
        who = "model.model_config.qkv_concat in the YAML"
        converted = convert_cached(plugin, hf_dir, dtype=dtype, qkv_concat=qkv, who=who)
        return cfg, entries, checkpoint or converted
    checkpoint = checkpoint or cfg.get("load_checkpoint") or None
    if checkpoint:
        if not Path(checkpoint).exists():
            raise ConfigError(f"load_checkpoint: {str(checkpoint)!r} does not exist")
        from mf_ext.convert.engine import find_source_config

        beside = find_source_config(checkpoint)
        if beside is not None:
            apply_hf_architecture(cfg, entries, beside, who="load_checkpoint")
            _reapply_model_overrides(cfg, overrides)
    return cfg, entries, checkpoint


def _reapply_model_overrides(cfg, overrides) -> None:
    """What the caller set explicitly under ``model.model_config`` wins over what ``config.json`` decided."""
    from mf_ext.config import apply_overrides, parse_overrides

    explicit = {k: v for k, v in parse_overrides(overrides).items() if k.startswith("model.model_config.")}
    apply_overrides(cfg, explicit)


def load_model(
    config,
    register_path=None,
    checkpoint=None,
    convert=None,
    *,
    device_target=None,
    mode=None,
    dtype=None,
    overrides=None,
    **model_overrides,
):
    """Build the YAML's model through MindFormers' ``build_model`` and load weights into it.

    Args:
        config: YAML path (or dict) in MindFormers' layout; ``auto_register`` entries are resolved against
            ``register_path``.
        register_path: plug-in folder(s): a path, a comma-separated string or a list; default ``$REGISTER_PATH``.
        checkpoint: a MindSpore ``.ckpt`` file or a folder of safetensors to load (default: YAML ``load_checkpoint``).
        convert: an HF folder: converted with the plug-in's ``convert_weight.py`` (cached) and loaded; the model's
            architecture is taken from that folder's ``config.json``.
        device_target / mode: override the YAML ``context`` (``CPU``/``Ascend``; 0 graph, 1 PyNative).
        dtype: output dtype of the conversion (default: the source dtype).
        overrides: dotted ``{"model.model_config.seq_length": 256}`` overrides.
        **model_overrides: bare keys go to ``model.model_config`` (``seq_length=256``).
    """
    ov = dict(overrides or {})
    ov.update(_model_overrides(model_overrides))
    cfg, _entries, checkpoint = prepare(
        config, register_path, convert=convert, checkpoint=checkpoint, overrides=ov, dtype=dtype, in_place=True
    )
    return build_model_from_config(
        cfg,
        checkpoint=checkpoint,
        device_target=device_target,
        mode=mode,
    )


def build_model_from_config(cfg, checkpoint=None, *, device_target=None, mode=None):
    """Build and (optionally) load a model from an already-loaded config."""
    set_context(cfg, device_target, mode)
    from mf_ext.foreign import build_model

    # MindFormers' build_model; a model that is not mf-ext's is built as run_mindformer.py builds it, in CPU forms on CPU
    if not checkpoint:
        model = build_model(cfg)
    else:  # the checkpoint replaces every value: skip the random initialisation (7 s for 1 GB of fp32 on 2 cores)
        with _no_init_parameters():
            model = build_model(cfg)
        load_checkpoint_into(model, checkpoint)
        for param in model.get_parameters():  # what the checkpoint did not set (non-strict loads) is initialised now
            if getattr(param, "has_init", False):
                param.init_data()
    model.set_train(False)
    return model


def _no_init_parameters():
    """MindSpore's ``no_init_parameters`` (parameters made by an initializer stay unmaterialised until loaded or
    ``init_data()``); a no-op context where this MindSpore lacks it."""
    import contextlib

    try:
        from mindspore.nn.utils import no_init_parameters
    except ImportError:
        return contextlib.nullcontext()
    return no_init_parameters()


def load_tokenizer(config, register_path=None, *, overrides=None, **tokenizer_overrides):
    """Build the YAML's ``processor.tokenizer`` through MindFormers' ``build_tokenizer``.

    Bare keyword overrides go to ``processor.tokenizer`` (e.g. ``vocab_file="tokenizer.model"``).
    """
    ov = dict(overrides or {})
    ov.update({(k if "." in k else f"processor.tokenizer.{k}"): v for k, v in tokenizer_overrides.items()})
    cfg, _ = load_config_ex(config, register_path, ov)
    return build_tokenizer_from_config(cfg)


def build_tokenizer_from_config(cfg):
    """The YAML's ``processor.tokenizer``, built through MindFormers' ``build_tokenizer``."""
    import copy

    tok_cfg = (cfg.get("processor") or {}).get("tokenizer")
    if not tok_cfg:
        raise ConfigError("the YAML has no processor.tokenizer section")
    vocab = tok_cfg.get("vocab_file")
    if vocab and not Path(vocab).exists():
        raise ConfigError(f"processor.tokenizer.vocab_file: {vocab!r} does not exist")
    from mindformers.models import build_tokenizer

    from mf_ext.registry import plugin_imports

    try:
        with plugin_imports():  # a plug-in tokenizer importing siblings while it is built gets its own folder's
            return build_tokenizer(copy.deepcopy(tok_cfg))
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the tokenizer's own constructor (a plug-in's, or MindFormers'): one line naming it
        if os.environ.get("MF_EXT_DEBUG"):
            raise
        raise ConfigError(
            f"processor.tokenizer {tok_cfg.get('type')!r}: building it failed: {type(exc).__name__}: {one_line(exc)}"
        ) from exc
