"""One registry for plug-in folders (``research/<model>/``): their classes, their converters, their model names.

A plug-in folder is imported as a uniquely named package (``mf_ext_plugins.<folder>_<hash>``) straight from where it
lies: nothing is copied, ``sys.path`` is untouched, two plug-ins may both hold ``convert_weight.py``, and files of one
plug-in import each other relatively (``from .llama3_1_config import Llama3Config``).

Folders written for MindFormers' ``run_mindformer.py`` import their files the way it lets them (it appends the register
path to ``sys.path`` and runs from the MindFormers root): ``from internlm2_config import X`` (a sibling file) and
``from research.telechat2.telechat_config import Y`` (from the root the folder sits in, ``ROOT/research/NAME``). An
import hook resolves both for code of a plug-in, to the plug-in's own package modules, so a class imported either
way is the very class ``auto_register`` registered, and neither our ``research/`` (the launcher's folder is
``sys.path[0]``) nor another plug-in's file of the same name can answer instead (see :class:`_PluginImportFinder`).

YAML ``auto_register: module.Class`` (MindFormers' spelling; ``module:Class`` also accepted) is resolved once, when the
config is loaded (:func:`resolve_auto_register`), and the class is registered into MindFormers' own
``MindFormerRegister`` under the module type of its YAML slot, so MindFormers' builders find it as well as ours.

Each family folder declares itself in ``family.py`` (``FAMILY = mf_ext.family.Family(...)``): model names, HF
architectures, weight specs, classes, YAMLs, presets, chat template, LoRA targets and its parity reference. Reading
it imports no MindSpore / MindFormers / torch, so listing families is cheap. A folder without ``family.py``
(MindFormers' own research folders) gets a *legacy* Family whose ``MODEL_NAMES`` is read from ``convert_weight.py``
with ``ast``. Built-in families ship with mf-ext; third-party ones installed with pip are found through the entry
point group ``mf_ext.families`` (each entry names an importable package that is a family folder). MindSpore /
MindFormers are imported only when a class is registered.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mf_ext.errors import MfExtError

REPO_ROOT = Path(__file__).resolve().parent.parent
# What research/ is installed as by a wheel (setup.py): never a top-level `research` package.
BUILTIN_PACKAGE = "mf_ext_families"


def _builtin_research() -> Path:
    """Where the built-in family folders are: this source tree's ``research/`` (a checkout or an editable install:
    ``mf_ext`` is imported from beside ``pyproject.toml``), else the ``mf_ext_families`` folder a wheel installed
    next to ``mf_ext`` (found without importing it)."""
    if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "research").is_dir():
        return REPO_ROOT / "research"
    installed = REPO_ROOT / BUILTIN_PACKAGE  # site-packages/mf_ext_families beside site-packages/mf_ext
    if installed.is_dir():
        return installed
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else REPO_ROOT / "research"


BUILTIN_RESEARCH = _builtin_research()
PLUGIN_NAMESPACE = "mf_ext_plugins"
CONVERT_FILE = "convert_weight.py"
REVERSE_FILE = "convert_reversed.py"
FAMILY_FILE = "family.py"
ENTRY_POINT_GROUP = "mf_ext.families"


class RegistryError(MfExtError, ValueError):
    """A bad register path or ``auto_register`` reference; the message is one line and names the culprit."""


# --------------------------------------------------------------------------------------------------------------------
# register paths


def parse_register_paths(
    value: str | os.PathLike | Iterable[str | os.PathLike] | None, *, use_env: bool = True
) -> list[Path]:
    """Turn ``--register_path`` values (comma-separated strings, repeated flags or a list) into existing folders.

    With no value, ``REGISTER_PATH`` from the environment is used (comma- or ``os.pathsep``-separated), as in
    MindFormers. Every folder must exist.
    """
    items: list[str] = []
    if value is None or value == "" or value == []:
        env = os.environ.get("REGISTER_PATH", "") if use_env else ""
        items = [p for p in re.split("[," + re.escape(os.pathsep) + "]", env) if p.strip()]
        source = "REGISTER_PATH"
    else:
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for v in values:
            items.extend(p for p in str(v).split(",") if p.strip())
        source = "--register_path"
    paths: list[Path] = []
    for item in items:
        p = Path(item.strip()).expanduser()
        if not p.exists():
            raise RegistryError(f"{source}: folder {item.strip()!r} does not exist")
        if not p.is_dir():
            raise RegistryError(
                f"{source}: {item.strip()!r} is not a folder (expected a plug-in folder such as research/llama3_1)"
            )
        rp = p.resolve()
        if rp not in paths:
            paths.append(rp)
    return paths


# --------------------------------------------------------------------------------------------------------------------
# plug-ins


def _literal_assignment(path: Path, name: str):
    """The literal value assigned to ``name`` at module level in ``path`` (no import), or None."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{str(path)!r}: cannot read {name} ({type(exc).__name__}: {exc})") from None
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                raise RegistryError(f"{str(path)!r}: {name} must be a literal tuple of strings") from None
    return None


@dataclass(eq=False)
class Plugin:
    """A plug-in folder, imported as its own package."""

    root: Path
    package: str = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        slug = re.sub(r"\W", "_", self.root.name) or "plugin"
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:8]
        self.package = f"{PLUGIN_NAMESPACE}.{slug}_{digest}"

    def __repr__(self) -> str:
        return f"Plugin({str(self.root)!r})"

    @property
    def name(self) -> str:
        return self.root.name

    # -- modules -----------------------------------------------------------------------------------------------------
    def _ensure_package(self) -> types.ModuleType:
        _install_import_hook(self)
        if PLUGIN_NAMESPACE not in sys.modules:
            ns = types.ModuleType(PLUGIN_NAMESPACE, "Namespace of imported mf-ext plug-in folders.")
            ns.__path__ = []  # a package with no files of its own
            sys.modules[PLUGIN_NAMESPACE] = ns
        pkg = sys.modules.get(self.package)
        if pkg is None:
            init = self.root / "__init__.py"
            if init.is_file():
                spec = importlib.util.spec_from_file_location(
                    self.package, init, submodule_search_locations=[str(self.root)]
                )
            else:  # a plain folder of files: a package with no code of its own
                spec = importlib.machinery.ModuleSpec(self.package, None, is_package=True)
                spec.submodule_search_locations = [str(self.root)]
            pkg = importlib.util.module_from_spec(spec)
            sys.modules[self.package] = pkg
            if init.is_file():
                try:
                    spec.loader.exec_module(pkg)
                except BaseException:
                    del sys.modules[self.package]
                    raise
            setattr(sys.modules[PLUGIN_NAMESPACE], self.package.rsplit(".", 1)[1], pkg)
        return pkg

    def module_file(self, module: str) -> Path | None:
        """The file that ``module`` (dotted, relative to the folder) names, if it exists inside the folder."""
        rel = Path(*module.split("."))
        for cand in (self.root / rel.with_suffix(".py"), self.root / rel / "__init__.py"):
            if cand.is_file():
                real = cand.resolve()
                if not real.is_relative_to(self.root):
                    raise RegistryError(
                        f"module {module!r} of {str(self.root)!r} resolves outside its folder ({str(real)!r})"
                    )
                return real
        return None

    @property
    def siblings(self) -> set[str]:
        """Top-level names its files and folders answer to under ``run_mindformer.py`` (register path on sys.path)."""
        cached = self.__dict__.get("_siblings")
        if cached is None:
            cached = self.__dict__["_siblings"] = _folder_names(self.root)
        return cached

    def modules(self) -> list[str]:
        """Importable module names directly in the folder (for "did you mean")."""
        return sorted(p.stem for p in self.root.glob("*.py") if p.stem != "__init__")

    def import_module(self, module: str) -> types.ModuleType:
        """Import ``module`` (``llama3_1_model`` or ``sub.mod``) of this plug-in and return it."""
        _check_module_name(module, where=f"plug-in {str(self.root)!r}")
        if self.module_file(module) is None:
            raise RegistryError(
                f"plug-in {str(self.root)!r} has no module {module!r}{_did_you_mean(module, self.modules())}"
            )
        self._ensure_package()
        with plugin_imports():
            return importlib.import_module(f"{self.package}.{module}")

    # -- family ------------------------------------------------------------------------------------------------------
    @property
    def is_family(self) -> bool:
        """Whether the folder declares a Family (``family.py``) or may be used as a legacy one (converters)."""
        return (self.root / FAMILY_FILE).is_file() or (self.root / CONVERT_FILE).is_file()

    @property
    def family(self):
        """The folder's :class:`~mf_ext.family.Family` (from ``family.py``; a legacy one from ``convert_weight.py``)."""
        cached = self.__dict__.get("_family")
        if cached is not None:
            return cached
        from mf_ext.family import Family, FamilyError

        if (self.root / FAMILY_FILE).is_file():
            try:
                mod = self.import_module(FAMILY_FILE[:-3])
            except (RegistryError, FamilyError):
                raise
            except Exception as exc:
                raise RegistryError(
                    f"{str(self.root / FAMILY_FILE)!r}: import failed: {type(exc).__name__}: {_first_line(exc)}"
                ) from exc
            fam = getattr(mod, "FAMILY", None)
            if not isinstance(fam, Family):
                raise RegistryError(
                    f"{str(self.root / FAMILY_FILE)!r} must assign FAMILY = mf_ext.family.Family(...), got {type(fam).__name__}"
                )
            fam = fam.bound(self.root)
        else:
            slug = re.sub(r"\W", "_", self.root.name) or "plugin"
            fam = Family(
                name=slug if slug.isidentifier() else f"f_{slug}", model_names=self._legacy_model_names(), legacy=True
            ).bound(self.root)
        self.__dict__["_family"] = fam
        return fam

    @property
    def model_names(self) -> tuple[str, ...]:
        """Model names this plug-in serves (its Family's ``model_names``)."""
        return self.family.model_names

    # -- converters --------------------------------------------------------------------------------------------------
    def _legacy_model_names(self) -> tuple[str, ...]:
        """``MODEL_NAMES`` in convert_weight.py of a folder without family.py, read without import."""
        f = self.root / CONVERT_FILE
        if not f.is_file():
            return ()
        names = _literal_assignment(f, "MODEL_NAMES")
        if names is None:
            return ()
        if isinstance(names, str):
            names = (names,)
        if not all(isinstance(n, str) for n in names):
            raise RegistryError(f"{str(f)!r}: MODEL_NAMES must be a tuple of strings, got {names!r}")
        return tuple(names)

    def _converter(self, file: str, func: str):
        if not (self.root / file).is_file():
            raise RegistryError(
                f"plug-in {str(self.root)!r} has no {file} (expected a function {func}(input_path, output_path, dtype=None, **kw))"
            )
        mod = self.import_module(file[:-3])
        fn = getattr(mod, func, None)
        if not callable(fn):
            raise RegistryError(
                f"{str(self.root / file)!r} defines no function {func}(input_path, output_path, dtype=None, **kw)"
            )
        return fn

    @property
    def convert_pt_to_ms(self):
        """HF → MindSpore converter of this plug-in (``convert_weight.py: convert_pt_to_ms``)."""
        return self._converter(CONVERT_FILE, "convert_pt_to_ms")

    @property
    def convert_ms_to_pt(self):
        """MindSpore → HF converter of this plug-in (``convert_reversed.py: convert_ms_to_pt``)."""
        return self._converter(REVERSE_FILE, "convert_ms_to_pt")


# --------------------------------------------------------------------------------------------------------------------
# imports written for run_mindformer.py: sibling files and ``research.<name>`` from a MindFormers root

RESEARCH_PACKAGE = "research"
_BY_PACKAGE: dict[str, Plugin] = {}  # plug-in package name -> plug-in, for the plug-ins whose package exists
_SIBLING_NAMES: set[str] = set()  # top-level names some plug-in folder holds (a cheap first filter)
_ALIASES: dict[str, str] = {}  # alias in sys.modules (``internlm2_config``) -> module it stands for
_IMPORT_DEPTH = [0]


def _folder_names(root: Path) -> set[str]:
    names = set()
    for entry in root.iterdir():
        name = entry.stem if entry.suffix == ".py" else entry.name if entry.is_dir() else ""
        if name.isidentifier() and name != "__init__":
            names.add(name)
    return names


def _importing_plugin() -> Plugin | None:
    """The plug-in whose code runs the import under way (the innermost plug-in module on the call stack)."""
    frame = sys._getframe(2)
    prefix = PLUGIN_NAMESPACE + "."
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name.startswith(prefix):
            plugin = _BY_PACKAGE.get(".".join(name.split(".")[:2]))
            if plugin is not None:
                return plugin
        frame = frame.f_back
    return None


def mindformers_root(plugin: Plugin, name: str) -> Path | None:
    """The MindFormers-like root whose ``research/<name>`` a plug-in's ``import research.<name>`` means.

    ``run_mindformer.py`` runs from the MindFormers root, so ``research`` is ``ROOT/research``: the root the folder
    itself sits in (``ROOT/research/<folder>``), else the working directory if it holds ``research/<name>``.
    """
    parent = plugin.root.parent
    if parent.name == RESEARCH_PACKAGE and (parent / name).is_dir():
        return parent.parent
    cwd = Path.cwd().resolve()
    if (cwd / RESEARCH_PACKAGE / name).is_dir():
        return cwd
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an alias name as an already importable module: both names are then the same module object."""

    def __init__(self, target: str):
        self.target = target
        self._spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # the import system stamps the alias spec on the module; the module keeps its own
        module.__spec__ = self._spec


class _PluginImportFinder(importlib.abc.MetaPathFinder):
    """Resolves, for code of a plug-in, the imports ``run_mindformer.py`` allows MindFormers' research folders.

    * ``import sibling`` (a file or folder of the plug-in): ``run_mindformer.py`` appends the register path to
      ``sys.path``, so a module found on the ordinary path still wins; ours answers only when nothing else would,
      or when what answers is a namespace package or lives in mf-ext's own checkout (the launcher's folder).
    * ``import research.<name>[.x]``: ``research`` is ``ROOT/research`` of the folder's MindFormers root; mf-ext's own
      ``research/`` never answers for it.
    Either name is an alias of the plug-in's package module (``mf_ext_plugins.<folder>_<hash>.x``), never a second
    copy. Aliases are dropped from ``sys.modules`` when the outermost plug-in import ends, so two plug-ins that both
    hold ``convert_weight.py`` never see each other's.
    """

    def find_spec(self, fullname, path=None, target=None):
        top, _, rest = fullname.partition(".")
        aliased = top != RESEARCH_PACKAGE and top in _ALIASES and top in sys.modules
        if rest and aliased and sys.modules[top].__name__ == _ALIASES[top]:
            # a submodule of an aliased package: the same module as under the package's real name
            return self._alias(fullname, f"{_ALIASES[top]}.{rest}")
        if top != RESEARCH_PACKAGE and (rest or top not in _SIBLING_NAMES):
            return None
        plugin = _importing_plugin()
        if plugin is None:
            return None
        if top == RESEARCH_PACKAGE:
            return self._research(plugin, fullname)
        if top not in plugin.siblings:
            return None
        found = importlib.machinery.PathFinder.find_spec(fullname)
        if found is not None and found.origin is not None:
            origin = Path(found.origin).resolve()
            if not origin.is_relative_to(REPO_ROOT) and not origin.is_relative_to(plugin.root):
                return None  # a real module elsewhere on sys.path wins, as with run_mindformer.py's sys.path.append
        return self._alias(fullname, f"{plugin.package}.{fullname}", package=(plugin.root / fullname).is_dir())

    def _research(self, plugin: Plugin, fullname: str):
        parts = fullname.split(".")
        if len(parts) == 1:
            # `research` itself: whatever package answers will do (every `research.<name>` comes back here); where
            # none does (mf-ext installed, run from elsewhere), a namespace package over the folder's root
            found = importlib.machinery.PathFinder.find_spec(fullname)
            if found is not None or plugin.root.parent.name != RESEARCH_PACKAGE:
                return None
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [str(plugin.root.parent)]
            _ALIASES[fullname] = fullname
            return spec
        root = mindformers_root(plugin, parts[1])
        if root is None:
            raise ModuleNotFoundError(
                f"{fullname!r}: plug-in {str(plugin.root)!r} imports {'.'.join(parts[:2])!r}, but it does not sit in a "
                f"MindFormers root (ROOT/research/{parts[1]}) and the working directory holds no research/{parts[1]}",
                name=fullname,
            )
        other = load_plugin(root / RESEARCH_PACKAGE / parts[1])
        other._ensure_package()
        target = ".".join([other.package, *parts[2:]])
        return self._alias(fullname, target, package=len(parts) == 2 or (other.root.joinpath(*parts[2:])).is_dir())

    @staticmethod
    def _alias(fullname: str, target: str, package: bool = False):
        if importlib.util.find_spec(target) is None:
            return None
        _ALIASES[fullname] = target
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(target), is_package=package)
        return spec


_FINDER = _PluginImportFinder()


def _install_import_hook(plugin: Plugin) -> None:
    if _BY_PACKAGE.get(plugin.package) is not plugin:
        _BY_PACKAGE[plugin.package] = plugin
        _SIBLING_NAMES.update(plugin.siblings)
    if not sys.meta_path or sys.meta_path[0] is not _FINDER:
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        # first, so our checkout's research/ (sys.path[0] for the launcher) cannot answer `research.<name>`
        sys.meta_path.insert(0, _FINDER)


def _drop_aliases() -> None:
    for alias, target in list(_ALIASES.items()):
        module = sys.modules.get(alias)
        if module is not None and getattr(module, "__name__", None) == target:
            del sys.modules[alias]
        del _ALIASES[alias]


class plugin_imports:  # noqa: N801 -- a context manager, named like one
    """Scope of plug-in code that may import siblings: aliases made meanwhile live until the outermost scope ends.

    Plug-in imports (:meth:`Plugin.import_module`), converter calls and model builds run inside one, so a module a
    plug-in's function imports later (``def f(): import helpers``) is its own, never another plug-in's ``helpers``.
    """

    def __enter__(self):
        if _IMPORT_DEPTH[0] == 0:
            _drop_aliases()  # left over from plug-in code that ran outside any scope
        _IMPORT_DEPTH[0] += 1
        return self

    def __exit__(self, *exc):
        _IMPORT_DEPTH[0] -= 1
        if _IMPORT_DEPTH[0] == 0:
            _drop_aliases()
        return False


_PLUGINS: dict[Path, Plugin] = {}


def load_plugin(path: str | os.PathLike) -> Plugin:
    """The plug-in for folder ``path`` (which must exist); one object per real path."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise RegistryError(
            f"plug-in folder {str(path)!r} does not exist" if not p.exists() else f"{str(path)!r} is not a folder"
        )
    real = p.resolve()
    if real not in _PLUGINS:
        _PLUGINS[real] = Plugin(real)
    return _PLUGINS[real]


def builtin_plugins(research_dir: str | os.PathLike | None = None) -> list[Plugin]:
    """Family folders shipped with mf-ext (``research/<family>/`` holding ``family.py`` or ``convert_weight.py``)."""
    base = Path(research_dir) if research_dir is not None else BUILTIN_RESEARCH
    if not base.is_dir():
        return []
    return [load_plugin(d) for d in sorted(base.iterdir()) if d.is_dir() and load_plugin(d).is_family]


def installed_plugins() -> list[Plugin]:
    """Family folders of other installed packages, declared in the entry point group ``mf_ext.families``.

    An entry ``mistral = my_pkg.mistral`` names an importable package whose folder is a family folder; the folder
    is loaded like any register path (its ``__init__`` runs, nothing else is imported until used).
    """
    from importlib.metadata import entry_points

    out: list[Plugin] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.partition(":")[0].strip()
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:
            raise RegistryError(
                f"entry point {ENTRY_POINT_GROUP}:{ep.name} = {ep.value!r}: cannot find {module!r} ({_first_line(exc)})"
            ) from None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            raise RegistryError(
                f"entry point {ENTRY_POINT_GROUP}:{ep.name} = {ep.value!r} must name a package (a family folder)"
            )
        plugin = load_plugin(locations[0])
        if plugin not in out:
            out.append(plugin)
    return out


def all_families(research_dir: str | os.PathLike | None = None) -> list[Plugin]:
    """Built-in family folders, then those installed through the ``mf_ext.families`` entry point group."""
    out = builtin_plugins(research_dir)
    if research_dir is None:
        out += [p for p in installed_plugins() if p not in out]
    return out


def available_models(research_dir: str | os.PathLike | None = None) -> dict[str, Plugin]:
    """Model name → plug-in, for every built-in or installed family; a name claimed twice is an error."""
    table: dict[str, Plugin] = {}
    for plugin in all_families(research_dir):
        for name in plugin.model_names:
            other = table.get(name.lower())
            if other is not None and other is not plugin:
                raise RegistryError(
                    f"model name {name!r} is claimed by both {str(other.root)!r} and {str(plugin.root)!r}"
                )
            table[name.lower()] = plugin
    return table


def plugin_for_model(name: str, research_dir: str | os.PathLike | None = None) -> Plugin:
    """The built-in plug-in whose ``convert_weight.py`` lists ``name`` in ``MODEL_NAMES``."""
    table = available_models(research_dir)
    plugin = table.get(str(name).lower())
    if plugin is None:
        known = sorted(table)
        raise RegistryError(
            f"unknown model {name!r}{_did_you_mean(str(name).lower(), known)}; known models: {', '.join(known) or '(none)'}"
        )
    return plugin


def family_for_hf_config(hf_config: dict, research_dir: str | os.PathLike | None = None) -> Plugin:
    """The built-in or installed family that reads an HF ``config.json`` (by ``architectures``, else
    ``model_type``); a one-line error listing what is known when none does."""
    matches = [p for p in all_families(research_dir) if not p.family.legacy and p.family.reads(hf_config)]
    if len(matches) == 1:
        return matches[0]
    what = hf_config.get("architectures") or hf_config.get("model_type")
    if not matches:
        known = sorted({a for p in all_families(research_dir) for a in p.family.hf_architectures})
        raise RegistryError(f"no family reads architectures {what!r}; known: {', '.join(known) or '(none)'}")
    names = ", ".join(p.family.name for p in matches)
    raise RegistryError(f"several families read {what!r} ({names}); pass --model NAME or --register_path DIR")


def family_of(cls: type):
    """The :class:`~mf_ext.family.Family` of the loaded plug-in folder that defines ``cls`` (a model, config or
    tokenizer class), or None for a class from elsewhere (MindFormers' built-ins)."""
    module = getattr(cls, "__module__", "") or ""
    for plugin in list(_PLUGINS.values()):
        if module.startswith(plugin.package + "."):
            return plugin.family
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if path:
        real = Path(path).resolve()
        for plugin in list(_PLUGINS.values()):
            if real.is_relative_to(plugin.root):
                return plugin.family
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------------------------
# auto_register


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    by_lower = {c.lower(): c for c in choices}
    close = [by_lower[c] for c in difflib.get_close_matches(word.lower(), list(by_lower), n=3, cutoff=0.6)]
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _check_module_name(module: str, where: str) -> None:
    if not _MODULE_RE.match(module):
        raise RegistryError(
            f"{where}: module {module!r} must be a file of the register path given as 'file' or 'pkg.file' "
            "(no paths, no '..', no leading dot)"
        )


def split_reference(ref, key: str) -> tuple[str, str]:
    """``'llama3_1_model.Llama3ForCausalLM'`` or ``'llama3_1_model:Llama3ForCausalLM'`` → (module, class)."""
    if not isinstance(ref, str) or not ref.strip():
        raise RegistryError(
            f"{key}: expected 'module.Class' (a file of the register path and a class in it), got {ref!r}"
        )
    text = ref.strip()
    if "/" in text or "\\" in text or text.startswith(".") or ".." in text or os.path.isabs(text):
        raise RegistryError(
            f"{key}: {ref!r} escapes the register path; expected 'module.Class' naming a file inside a --register_path folder"
        )
    if ":" in text:
        module, _, cls = text.partition(":")
    else:
        module, _, cls = text.rpartition(".")
    if not module or not cls or not cls.isidentifier():
        raise RegistryError(f"{key}: expected 'module.Class' (e.g. 'llama3_1_model.Llama3ForCausalLM'), got {ref!r}")
    _check_module_name(module, where=key)
    return module, cls


# YAML slot (the key holding the dict with auto_register) → MindFormerModuleType value.
SLOT_TYPES: dict[str, str] = {
    "model_config": "config",
    "text_config": "config",
    "vision_config": "config",
    "arch": "models",
    "model": "models",
    "tokenizer": "tokenizer",
    "processor": "processor",
    "image_processor": "processor",
    "audio_processor": "processor",
    "feature_extractor": "feature_extractor",
    "optimizer": "optimizer",
    "lr_schedule": "lr",
    "callbacks": "callback",
    "train_dataset_task": "dataset",
    "eval_dataset_task": "dataset",
    "data_loader": "dataset_loader",
    "sampler": "dataset_sampler",
    "handler": "data_handler",
    "data_handler": "data_handler",
    "transforms": "transforms",
    "text_transforms": "transforms",
    "runner_wrapper": "wrapper",
    "wrapper": "wrapper",
    "metric": "metric",
    "metrics": "metric",
    "trainer": "trainer",
    "loss": "loss",
    "pipeline": "pipeline",
    "encoder": "encoder",
    "mask_policy": "mask_policy",
    "context": "context",
}


def _slot_of(path: tuple) -> str | None:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return None


def _format_path(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "<top level>"


def iter_auto_register(cfg, path: tuple = ()) -> Iterator[tuple[tuple, dict]]:
    """Every dict holding ``auto_register`` in a nested YAML structure, with its key path (each dict once)."""
    seen: set[int] = set()

    def walk(node, p):
        if isinstance(node, dict):
            if id(node) in seen:  # YAML anchors/aliases share one dict
                return
            seen.add(id(node))
            if "auto_register" in node:
                yield p, node
            for k, v in node.items():
                yield from walk(v, p + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, p + (i,))

    yield from walk(cfg, path)


def _expected_base(module_type: str):
    """(base classes, human name) a class registered as ``module_type`` must derive from, or None to skip."""
    if module_type == "config":
        from mindformers.models.configuration_utils import PretrainedConfig

        return (PretrainedConfig,), "a MindFormers PretrainedConfig"
    if module_type == "models":
        from mindspore import nn

        return (nn.Cell,), "a MindSpore nn.Cell model (e.g. a MindFormers PreTrainedModel)"
    if module_type == "tokenizer":
        from mindformers.models.tokenization_utils_base import PreTrainedTokenizerBase

        return (PreTrainedTokenizerBase,), "a MindFormers tokenizer (PreTrainedTokenizerBase)"
    if module_type == "callback":
        from mindspore.train import Callback

        return (Callback,), "a MindSpore Callback"
    if module_type == "lr":
        from mindspore.nn.learning_rate_schedule import LearningRateSchedule

        return (LearningRateSchedule,), "a MindSpore LearningRateSchedule"
    return None


def _is_model_factory(cls: type, module_type: str) -> bool:
    """A plain class whose ``__new__`` returns the model (MindFormers builds ``cls(config)`` and accepts it; deepseek3
    ships one choosing its training or inference network). A config or tokenizer class is never one."""
    if module_type != "models" or cls.__new__ is object.__new__:
        return False
    for other in ("config", "tokenizer"):
        base = _expected_base(other)
        if base is not None and issubclass(cls, base[0]):
            return False
    return True


@dataclass
class Registered:
    """One resolved ``auto_register``: where it was, what it named, what it registered."""

    key: str
    reference: str
    module_type: str
    cls: type
    plugin: Plugin


def resolve_class(reference: str, plugins: list[Plugin], key: str) -> tuple[type, Plugin]:
    """Find and import the class ``reference`` names in exactly one of ``plugins``."""
    module, cls_name = split_reference(reference, key)
    if not plugins:
        raise RegistryError(
            f"{key}: {reference!r} needs a plug-in folder; pass --register_path DIR (or set REGISTER_PATH)"
        )
    owners = [p for p in plugins if p.module_file(module) is not None]
    if not owners:
        candidates = sorted({m for p in plugins for m in p.modules()})
        wanted = module.replace(".", os.sep) + ".py"
        roots = ", ".join(repr(str(p.root)) for p in plugins)
        raise RegistryError(
            f"{key}: {reference!r}: no file {wanted!r} in register path {roots}{_did_you_mean(module, candidates)}"
        )
    if len(owners) > 1:
        roots = ", ".join(repr(str(p.root)) for p in owners)
        raise RegistryError(f"{key}: {reference!r} is ambiguous: {module!r} exists in several register paths ({roots})")
    plugin = owners[0]
    try:
        mod = plugin.import_module(module)
    except RegistryError:
        raise
    except Exception as exc:  # the plug-in's own import error, in one line
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise RegistryError(
            f"{key}: importing {str(plugin.module_file(module))!r} failed: {type(exc).__name__}: {detail}"
        ) from exc
    obj = getattr(mod, cls_name, None)
    if not isinstance(obj, type):
        classes = [n for n, v in vars(mod).items() if isinstance(v, type) and not n.startswith("_")]
        # suggest the classes the file defines (not the base classes it imports), when it defines any
        classes = [n for n in classes if getattr(mod, n).__module__ == mod.__name__] or classes
        what = "has no class" if obj is None else "has no class (it is not a class:"
        tail = ")" if obj is not None else ""
        raise RegistryError(
            f"{key}: {str(plugin.module_file(module))!r} {what} {cls_name!r}{tail}{_did_you_mean(cls_name, classes)}"
        )
    return obj, plugin


def resolve_auto_register(cfg: dict, register_path=None, *, register: bool = True) -> tuple[dict, list[Registered]]:
    """Resolve every ``auto_register`` in ``cfg`` against the register path(s).

    Returns a deep copy of ``cfg`` without the ``auto_register`` keys (with ``type`` filled in from the class name
    where absent), and the list of what was resolved. With ``register=True`` each class is also registered into
    MindFormers' ``MindFormerRegister`` under the module type of its slot. ``cfg`` itself is not modified.
    """
    import copy

    plugins = [load_plugin(p) for p in parse_register_paths(register_path)]
    out = copy.deepcopy(cfg)
    found: list[Registered] = []
    for path, node in list(iter_auto_register(out)):
        key = _format_path(path + ("auto_register",))
        slot = _slot_of(path)
        module_type = SLOT_TYPES.get(slot or "")
        if module_type is None:
            raise RegistryError(
                f"{key}: cannot tell what kind of class belongs under {_format_path(path)!r}; "
                f"auto_register is supported under: {', '.join(sorted(SLOT_TYPES))}"
            )
        reference = node.pop("auto_register")
        cls, plugin = resolve_class(reference, plugins, key)
        expected = _expected_base(module_type)
        if expected is not None and not issubclass(cls, expected[0]) and not _is_model_factory(cls, module_type):
            raise RegistryError(
                f"{key}: {reference!r} is a {cls.__mro__[1].__name__} subclass, but {_format_path(path)!r} expects {expected[1]}"
            )
        declared = node.get("type")
        if declared is None:
            node["type"] = cls.__name__
        elif declared != cls.__name__:
            raise RegistryError(
                f"{_format_path(path + ('type',))}: {declared!r} does not match the auto_register class {cls.__name__!r} "
                f"({reference!r}); make them equal or drop 'type'"
            )
        found.append(Registered(key=key, reference=str(reference), module_type=module_type, cls=cls, plugin=plugin))
    if register and found:
        register_classes(found)
    return out, found


def register_classes(entries: Iterable[Registered]) -> None:
    """Register resolved classes into MindFormers' ``MindFormerRegister`` (legacy naming, as MindFormers does)."""
    from mindformers.core.context import is_legacy_model
    from mindformers.tools.register import MindFormerRegister

    legacy = is_legacy_model()
    for entry in entries:
        MindFormerRegister.register_cls(entry.cls, module_type=entry.module_type, legacy=legacy)
