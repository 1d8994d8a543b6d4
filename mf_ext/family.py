"""A model family's declaration: everything mf-ext knows about a plug-in folder, in one object.

Each family folder (``research/<family>/``) holds a ``family.py`` that assigns ``FAMILY = Family(...)``. The registry
reads it without importing MindSpore, MindFormers or torch (``family.py`` may import only this module and other light
modules), and every consumer asks the Family instead of guessing from file names: the convert CLI and ``--convert``
(``specs``), ``mf-ext models`` (``model_names``, ``hf_architectures``), verify / data / train (``yamls``,
``chat_template``, ``lora_targets``), export (``specs``), migrate / validate (``classes``, ``hf_config``, ``presets``)
and the parity tests (``reference``). Nothing in ``mf_ext/`` names a family: adding one is adding a folder.

References to the folder's own code are strings, resolved on first use (vLLM's registry holds only strings too):

* classes use ``auto_register``'s spelling, ``"llama3_1_model.Llama3ForCausalLM"`` (file of the folder + class);
* other objects use ``"module:attribute"`` (``"weight_map:SPEC"``), also relative to the folder;
* the parity reference names importable objects of other packages (``"transformers:LlamaForCausalLM"``).

A folder without ``family.py`` (MindFormers' own research folders, written for ``run_mindformer.py``) still works:
the registry builds a *legacy* Family from its ``convert_weight.py`` (``MODEL_NAMES``) so its converters are found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mf_ext.errors import MfExtError

__all__ = ["Family", "Reference", "FamilyError", "ROLES", "YAML_ROLES"]

# Class roles a family may declare (``classes=``) and the MindFormers module type each is registered under.
ROLES: dict[str, str] = {
    "config": "config",
    "model": "models",
    "tokenizer": "tokenizer",
    "tokenizer_fast": "tokenizer",
}
# YAML roles: what each shipped YAML is for.
YAML_ROLES = ("predict", "finetune", "demo")


class FamilyError(MfExtError, ValueError):
    """A family declaration that cannot be used; one line naming the family folder and the field."""


@dataclass(frozen=True)
class Reference:
    """The independent reference a family's parity test compares against.

    ``model`` / ``config`` name an HF transformers model class and its config class (``"transformers:Qwen2ForCausalLM"``).
    ``tiny`` holds named tiny configurations (HF config kwargs) the parity test builds with random weights; each
    must exercise the family's variants (GQA, tied/untied embeddings, biases, rope scaling ...).

    For a format that only exists as remote code (InternLM2, Baichuan2, ChatGLM), ``to_format`` names a function of
    the family folder, ``"reference:to_internlm2"``, that turns the *native twin*'s state dict and config (the HF
    transformers model named by ``model``, e.g. ``LlamaForCausalLM`` for InternLM2) into the remote-code checkpoint
    layout: ``to_format(state_dict: dict[str, np.ndarray], hf_config: dict) -> (state_dict, config_json)``. It must
    be written from the remote code's documented layout (cite it in its docstring), never from our own spec.
    ``format`` is the spec format that checkpoint is read with (``"hf"`` unless the family declares another).
    ``prepare`` names a function of the folder, ``prepare(model) -> None``, applied to the native twin (the torch
    model, in place, after its random initialisation) when the remote-code model computes something the twin can
    only hold in its weights -- e.g. Baichuan2's NormHead (rows of ``lm_head`` L2-normalised in the forward pass):
    the twin gets normalised rows. Cite the source as for ``to_format``.
    """

    model: str
    config: str
    tiny: Mapping[str, Mapping[str, Any]]
    to_format: str | None = None
    format: str = "hf"
    atol: float = 1e-4
    prepare: str | None = None


@dataclass(frozen=True)
class Family:
    """One model family, declared once in ``research/<family>/family.py`` as ``FAMILY = Family(...)``.

    Args:
        name: the family's id (usually the folder name).
        model_names: names ``--model NAME`` accepts (``mf-ext convert``, ``mf-ext verify``), lower case.
        hf_architectures: HF ``architectures`` entries of the checkpoints it reads (``"LlamaForCausalLM"``).
        hf_model_types: HF ``model_type`` values it reads (used when ``architectures`` is absent).
        specs: source format -> ``"module:ATTR"`` of its weight :class:`~mf_ext.convert.spec.Spec` (``"hf"`` first;
            e.g. ``"meta"`` for Meta's ``consolidated.*.pth``).
        classes: role (``config``, ``model``, ``tokenizer``, ``tokenizer_fast``) -> ``"file.Class"``.
        hf_config: ``"module"`` of the folder holding two pure functions, ``to_model_config(hf: dict) -> dict``
            (HF ``config.json`` -> MindFormers ``model_config`` architecture keys) and ``to_hf_config(mc: dict) ->
            dict`` (the way back). The config class and the weight spec both use them: the mapping exists once.
            Optionally ``check_model_config(mc: dict) -> list[(key, message)]`` for ``mf-ext validate``.
        arch_keys: the ``model_config`` keys that describe the architecture (taken from ``config.json`` by
            ``--convert``; the YAML keeps every other key).
        yamls: role (``predict``, ``finetune``, ``demo``) -> YAML file of the folder.
        presets: ``"module:ATTR"`` of a dict name -> :class:`mf_ext.migrate.presets.Preset` (``mf-ext migrate --config
            X --to NAME``), or None.
        chat_template: Jinja chat template for tokenizers that carry none (``mf-ext data``), or None.
        lora_targets: default LoRA target cells (regex on cell names, MindFormers' ``target_modules`` syntax).
        reference: the independent parity reference (:class:`Reference`); None only for legacy folders.
        options: conversion options the family's specs accept (e.g. ``("qkv_concat",)``), for help texts.
        mindformers_config: ``"module:Class"`` of a MindFormers config class whose keys a YAML of this family may
            carry over without effect (``mf-ext validate`` warns instead of failing), or None.
        legacy: True for a folder without ``family.py`` (built by the registry from ``convert_weight.py``).
        root: the folder (set by the registry when it loads the declaration).
    """

    name: str
    model_names: tuple[str, ...] = ()
    hf_architectures: tuple[str, ...] = ()
    hf_model_types: tuple[str, ...] = ()
    specs: Mapping[str, str] = field(default_factory=dict)
    classes: Mapping[str, str] = field(default_factory=dict)
    hf_config: str | None = None
    arch_keys: tuple[str, ...] = ()
    yamls: Mapping[str, str] = field(default_factory=dict)
    presets: str | None = None
    chat_template: str | None = None
    lora_targets: str | None = None
    reference: Reference | None = None
    options: tuple[str, ...] = ()
    mindformers_config: str | None = None
    legacy: bool = False
    root: Path | None = None

    def __post_init__(self) -> None:
        where = f"family {self.name!r}" + (f" ({str(self.root)!r})" if self.root else "")
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise FamilyError(f"{where}: name must be an identifier, got {self.name!r}")
        for attr in ("model_names", "hf_architectures", "hf_model_types", "arch_keys", "options"):
            value = getattr(self, attr)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise FamilyError(f"{where}: {attr} must be a tuple of strings, got {value!r}")
            object.__setattr__(self, attr, tuple(value))
        object.__setattr__(self, "model_names", tuple(n.lower() for n in self.model_names))
        unknown = sorted(set(self.classes) - set(ROLES))
        if unknown:
            raise FamilyError(f"{where}: classes has unknown role(s) {unknown}; expected some of {sorted(ROLES)}")
        unknown = sorted(set(self.yamls) - set(YAML_ROLES))
        if unknown:
            raise FamilyError(f"{where}: yamls has unknown role(s) {unknown}; expected some of {list(YAML_ROLES)}")
        if self.specs and "hf" not in self.specs:
            raise FamilyError(f"{where}: specs must declare the 'hf' format, got {sorted(self.specs)}")
        if not self.legacy and self.reference is None:
            raise FamilyError(f"{where}: reference (the independent parity reference) is required")

    # -- binding -----------------------------------------------------------------------------------------------------
    def bound(self, root: Path) -> Family:
        """This declaration attached to its folder (the registry calls this once)."""
        return replace(self, root=Path(root).resolve())

    def _plugin(self):
        if self.root is None:
            raise FamilyError(f"family {self.name!r} is not attached to a folder (load it through mf_ext.registry)")
        from mf_ext.registry import load_plugin

        return load_plugin(self.root)

    def _attr(self, ref: str, what: str):
        module, sep, attr = ref.partition(":")
        if not sep or not module or not attr:
            raise FamilyError(f"family {self.name!r}: {what} {ref!r} must be 'module:ATTR'")
        mod = self._plugin().import_module(module)
        try:
            return getattr(mod, attr)
        except AttributeError:
            raise FamilyError(f"family {self.name!r}: {what} {ref!r}: {module}.py defines no {attr!r}") from None

    # -- what consumers ask ------------------------------------------------------------------------------------------
    def spec(self, fmt: str = "hf"):
        """The weight spec for source format ``fmt`` (imports the folder's spec module; numpy only)."""
        ref = self.specs.get(fmt)
        if ref is None:
            raise FamilyError(
                f"family {self.name!r} declares no weight spec for format {fmt!r} (it has: {', '.join(self.specs) or 'none'})"
            )
        return self._attr(ref, f"specs[{fmt!r}]")

    def class_ref(self, role: str) -> str | None:
        """The ``auto_register`` reference (``file.Class``) of a role, or None."""
        return self.classes.get(role)

    def load_class(self, role: str) -> type:
        """Import the class of ``role`` (this imports MindSpore / MindFormers)."""
        ref = self.classes.get(role)
        if ref is None:
            raise FamilyError(f"family {self.name!r} declares no {role} class")
        from mf_ext.registry import resolve_class

        cls, _ = resolve_class(ref, [self._plugin()], key=f"family {self.name!r} classes[{role!r}]")
        return cls

    def yaml(self, role: str) -> Path | None:
        """The folder's YAML for ``role`` (``predict``, ``finetune``, ``demo``), or None if not declared."""
        name = self.yamls.get(role)
        if name is None or self.root is None:
            return None
        return self.root / name

    def hf_mapping(self) -> tuple[Callable[[dict], dict], Callable[[dict], dict]]:
        """``(to_model_config, to_hf_config)`` of the family's HF config mapping module."""
        if self.hf_config is None:
            raise FamilyError(f"family {self.name!r} declares no hf_config mapping module")
        mod = self._plugin().import_module(self.hf_config)
        try:
            return mod.to_model_config, mod.to_hf_config
        except AttributeError:
            raise FamilyError(
                f"family {self.name!r}: {self.hf_config}.py must define to_model_config(hf) and to_hf_config(mc)"
            ) from None

    def check_model_config(self, model_config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Family-specific problems of a YAML ``model_config`` (YAML values over the config class's defaults) for
        ``mf-ext validate``: the ``check_model_config(mc)`` of the ``hf_config`` module when it defines one, else
        whatever ``to_hf_config(mc)`` refuses. Each is ``(key path below model_config, message)``."""
        if self.hf_config is None:
            return []
        mod = self._plugin().import_module(self.hf_config)
        check = getattr(mod, "check_model_config", None)
        if callable(check):
            return [(str(k), str(m)) for k, m in check(dict(model_config))]
        try:
            self.hf_mapping()[1](dict(model_config))
        except (ValueError, TypeError, KeyError) as exc:
            return [("", str(exc))]
        return []

    def load_mindformers_config(self) -> type | None:
        """The MindFormers config class named by ``mindformers_config`` (imports MindFormers), or None."""
        if not self.mindformers_config:
            return None
        import importlib

        module, sep, attr = self.mindformers_config.partition(":")
        try:
            return getattr(importlib.import_module(module), attr) if sep else None
        except (ImportError, AttributeError):  # another MindFormers version: nothing to compare against
            return None

    def reference_to_format(self) -> Callable | None:
        """The ``reference.to_format`` function of the folder (remote-code layouts), or None."""
        if self.reference is None or self.reference.to_format is None:
            return None
        return self._attr(self.reference.to_format, "reference.to_format")

    def reference_prepare(self) -> Callable | None:
        """The ``reference.prepare`` function of the folder (applied to the native twin), or None."""
        if self.reference is None or self.reference.prepare is None:
            return None
        return self._attr(self.reference.prepare, "reference.prepare")

    def load_presets(self) -> dict:
        """Migration presets (name -> preset), or {}."""
        return dict(self._attr(self.presets, "presets")) if self.presets else {}

    def reads(self, hf_config: Mapping[str, Any]) -> bool:
        """Whether an HF ``config.json`` (dict) is one this family reads (by ``architectures``, else ``model_type``)."""
        archs = hf_config.get("architectures") or ()
        if isinstance(archs, str):
            archs = (archs,)
        if archs:
            return any(a in self.hf_architectures for a in archs)
        return hf_config.get("model_type") in self.hf_model_types
