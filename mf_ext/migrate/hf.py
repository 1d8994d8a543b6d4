"""HF ``config.json`` <-> a YAML's ``model.model_config``, through the model family's declared mapping.

The mapping lives once, in the family folder: ``Family.hf_config`` names a module with ``to_model_config(hf)`` and
``to_hf_config(mc)`` (pure functions, no MindSpore), and ``Family.arch_keys`` lists the ``model_config`` keys that
describe the architecture. YAML -> HF goes through the family's config class (``Family.classes["config"]``, its
``to_hf_config``) when it has one, so the defaults the model really uses apply. Nothing here guesses classes from
file names.
"""

from __future__ import annotations

import os
from typing import Any

from mf_ext.errors import MfExtError

_TOKEN_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id")
_NOT_CONFIG_KWARGS = ("type", "auto_register")


class HFConfigError(MfExtError, ValueError):
    """An HF config.json or a family this module cannot use (one line, names the file)."""


def family_plugin(register_path: str | os.PathLike | None, hf: dict[str, Any] | None = None):
    """The family folder: ``register_path`` if given, else the family that reads ``hf`` (``architectures``)."""
    from mf_ext.registry import RegistryError, family_for_hf_config, load_plugin

    try:
        if register_path is not None:
            plugin = load_plugin(register_path)
        elif hf is not None:
            plugin = family_for_hf_config(hf)
        else:
            raise HFConfigError("no family: pass --register_path DIR")
        fam = plugin.family
    except RegistryError as exc:
        raise HFConfigError(str(exc)) from None
    if fam.hf_config is None:
        raise HFConfigError(
            f"family {fam.name!r} ({str(plugin.root)!r}) declares no hf_config mapping (family.py: hf_config=...)"
        )
    return plugin


def hf_to_model_config(hf: dict[str, Any], family, source: str = "config.json") -> dict[str, Any]:
    """``model_config`` architecture fields for an HF ``config.json`` dict, by the family's ``to_model_config``;
    in ``arch_keys`` order, unset values (None) left out."""
    to_mc, _ = family.hf_mapping()
    try:
        mc = to_mc(hf)
    except (ValueError, TypeError, KeyError) as exc:
        msg = str(exc)
        raise HFConfigError(
            msg if msg.startswith(source) else f"{source}: {msg.removeprefix('config.json: ')}"
        ) from None
    order = list(family.arch_keys) + [k for k in mc if k not in family.arch_keys]
    return {k: mc[k] for k in order if mc.get(k) is not None}


def model_config_to_hf(model_config: dict[str, Any], family) -> dict[str, Any]:
    """HF ``config.json`` dict for a YAML's ``model.model_config``: the family config class's ``to_hf_config``
    (its defaults fill what the YAML leaves out), else the family mapping's ``to_hf_config``."""
    kwargs = {k: v for k, v in model_config.items() if k not in _NOT_CONFIG_KWARGS}
    try:
        cls = family.load_class("config") if family.class_ref("config") else None
        if cls is not None and callable(getattr(cls, "to_hf_config", None)):
            return cls(**kwargs).to_hf_config()
        return family.hf_mapping()[1](kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        raise HFConfigError(f"model.model_config: {exc}") from None


def compare_arch(model_config: dict[str, Any], hf: dict[str, Any], family) -> list[str]:
    """Architecture fields where a YAML's ``model_config`` and an HF ``config.json`` disagree, one line each
    (what ``--convert`` checks before loading weights converted from that config.json). The fields compared are
    those the family's mapping writes back to HF (token ids aside: a run may override them on purpose)."""
    to_mc, to_hf = family.hf_mapping()
    ours = model_config_to_hf(model_config, family)
    try:
        theirs = to_hf(to_mc(hf))
    except (ValueError, TypeError, KeyError) as exc:
        raise HFConfigError(f"config.json: {exc}") from None
    return [
        f"model.model_config: {name} is {ours.get(name)!r} in the YAML but {theirs.get(name)!r} in config.json"
        for name in theirs
        if name not in _TOKEN_FIELDS and ours.get(name) != theirs.get(name)
    ]
