"""Migration presets: the generic operations ``mf-ext migrate --config X --to NAME`` applies to a MindFormers YAML.

Presets belong to model families: a family declares them in its folder (``presets="presets:PRESETS"`` in
``family.py``, a dict name -> :class:`Preset`) and :func:`all_presets` collects them from every built-in or
installed family (or the family of ``--register_path``). Nothing here knows a family: a preset is data --

* ``model_config``: keys of ``model.model_config`` to set, or :data:`DELETE` to remove;
* the YAML's ``model.model_config`` / ``model.arch`` / ``processor.tokenizer`` are pointed at the family's
  ``classes`` (``type`` + ``auto_register``) when ``classes`` is True;
* ``tokenizer``: keys of ``processor.tokenizer`` to set (special tokens) or remove;
* ``clear_checkpoint_names``: built-in checkpoint names a ``checkpoint_name_or_path`` must not keep (MindFormers
  would download the old model's weights into the new network);
* ``model_name_prefixes``: ``trainer.model_name`` starting with one of these becomes the preset's name;
* ``notes``: YAML key path (dotted) -> note printed when that key is set, formatted with ``{value}``.

Importing this module is cheap (a family's ``presets.py`` imports it).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mf_ext.errors import MfExtError

__all__ = ["DELETE", "INSERT_AFTER", "Preset", "PresetError", "all_presets", "find_preset"]


class _Delete:
    """Marker: the key must not be present after migration."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()


class PresetError(MfExtError, ValueError):
    """An unknown preset or a preset name declared by two families; one line."""


@dataclass(frozen=True)
class Preset:
    """A migration target of a family: the values the migration owns, as generic operations (see module doc)."""

    name: str
    description: str
    model_config: Mapping[str, Any] = field(default_factory=dict)
    classes: bool = True
    tokenizer: Mapping[str, Any] = field(default_factory=dict)
    clear_checkpoint_names: frozenset[str] = frozenset()
    model_name_prefixes: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)


# Where a key that is missing from the user's model_config is inserted: after the first of these that exists
# (MindFormers' model_config key names; a key not listed goes last).
INSERT_AFTER: dict[str, tuple[str, ...]] = {
    "n_kv_heads": ("num_heads", "num_layers", "hidden_size"),
    "head_dim": ("n_kv_heads", "num_heads"),
    "intermediate_size": ("vocab_size", "n_kv_heads", "num_heads"),
    "max_position_embedding": ("seq_length",),
    "theta": ("rms_norm_eps", "ignore_token_id", "pad_token_id"),
    "rope_scaling": ("theta", "rms_norm_eps"),
    "vocab_size": ("n_kv_heads", "num_heads"),
    "auto_register": ("type",),
}


def all_presets(register_path: str | os.PathLike | None = None) -> dict[str, tuple[Any, Preset]]:
    """Preset name -> (family plug-in, preset): of the family folder ``register_path`` if given, else of every
    built-in and installed family. A name declared by two families is an error."""
    from mf_ext.registry import all_families, load_plugin

    plugins = [load_plugin(register_path)] if register_path is not None else all_families()
    out: dict[str, tuple[Any, Preset]] = {}
    for plugin in plugins:
        for name, preset in plugin.family.load_presets().items():
            if not isinstance(preset, Preset):
                raise PresetError(
                    f"family {plugin.family.name!r}: preset {name!r} is a {type(preset).__name__}, expected "
                    "mf_ext.migrate.presets.Preset"
                )
            if name in out and out[name][0] is not plugin:
                raise PresetError(
                    f"preset {name!r} is declared by families {out[name][0].family.name!r} and "
                    f"{plugin.family.name!r}; pass --register_path to choose"
                )
            out[name] = (plugin, preset)
    return out


def find_preset(name: str, register_path: str | os.PathLike | None = None) -> tuple[Any, Preset]:
    """(family plug-in, preset) for ``--to NAME``; a one-line error listing the known presets otherwise."""
    presets = all_presets(register_path)
    if name not in presets:
        close = difflib.get_close_matches(str(name), list(presets), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PresetError(f"unknown preset {name!r}{hint}; expected one of: {', '.join(presets) or '(none)'}")
    return presets[name]
