"""The plugin manager: loads built-in and third-party plugins the same way and builds the registry.

Loading order: first-party entry points (the ``harness`` distribution), then third-party entry points of the
``harness`` group, then modules named with ``HARNESS_PLUGINS`` and ``--plugin``. As in pytest:

* a plugin module that fails to import (any exception, ``sys.exit`` included) is named in a warning and
  skipped; one named explicitly (``--plugin``, ``HARNESS_PLUGINS``) is an error;
* a ``harness_*`` hook the spec does not define (``harness_task``) is an error naming the plugin;
* every spec a hook returns is validated where it enters the core; a malformed one is named and skipped;
* a name registered twice disables the later plugin with a warning naming both plugins and distributions, and
  everything else keeps working.

``harness plugins`` loads leniently (``strict=False``) so it always works and shows what was disabled and why.
A plugin that prints while importing writes to stderr, so ``--json`` output stays clean; one that takes long
to import is named while it does. ``HARNESS_TRACE_PLUGINS=1`` prints every hook call (pluggy's monitoring);
``HARNESS_DISABLE_ENTRYPOINTS=1`` skips third-party entry points (first-party plugins still load).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata as md
import os
import re
import sys
import threading
import tomllib
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from harness import hookspecs
from harness.types import BackendSpec, MetricSpec, ModelAlias, RecipeSpec, SplitSpec, TaskSpec

ENTRY_POINT_GROUP = "harness"
FIRST_PARTY = "harness"  # the distribution whose entry points are the built-in plugins
SLOW_IMPORT_S = 10.0
_KINDS: dict[str, tuple[str, type]] = {
    "tasks": ("harness_tasks", TaskSpec),
    "backends": ("harness_backends", BackendSpec),
    "models": ("harness_models", ModelAlias),
    "recipes": ("harness_recipes", RecipeSpec),
}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")  # names become file and directory names
CORE_METRICS = ("success_rate", "mean_reward", "mean_turns")


class PluginError(Exception):
    """A plugin problem that stops the command (an explicitly named plugin that fails, an unknown hook)."""


class PluginWarning(UserWarning):
    """A plugin (or one of its specs) that was skipped; the rest keeps working."""


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None  # why it (or some of its specs) could not be used
    disabled: bool = False  # true when nothing of it is used
    explicit: bool = False  # named with --plugin / HARNESS_PLUGINS
    hooks: list[str] = field(default_factory=list)  # the hooks it implements

    @property
    def label(self) -> str:
        dist = f"distribution {self.distribution} {self.version}" if self.distribution else "not installed"
        return f"{self.name!r} ({self.module}; {dist})"

    def provenance(self) -> dict[str, Any]:
        """What code this plugin is: distribution and version, and for editable installs and modules named
        with --plugin a hash of its source (so an edited task never resumes into runs of the old code).
        ``id`` is the one-line form that goes into run identities."""
        if self._provenance is None:
            editable = self.distribution is None or _is_editable(self.module)
            source = _source_hash(self.module) if editable else None
            base = f"{self.distribution} {self.version}" if self.distribution else self.module
            self._provenance = {"plugin": self.name, "module": self.module, "distribution": self.distribution,
                                "version": self.version, "editable": editable, "source_sha256": source,
                                "id": base + (f"+src.{source[:12]}" if source else "")}
        return dict(self._provenance)

    _provenance: dict[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass
class Registry:
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    backends: dict[str, BackendSpec] = field(default_factory=dict)
    models: dict[str, ModelAlias] = field(default_factory=dict)
    recipes: dict[str, RecipeSpec] = field(default_factory=dict)
    boards: dict[str, Path] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None
    owners: dict[tuple[str, str], PluginInfo] = field(default_factory=dict)  # (kind, name) -> plugin

    def _get(self, kind: str, name: str) -> Any:
        table: dict[str, Any] = getattr(self, kind)
        if name in table:
            return table[name]
        valid = ", ".join(sorted(table)) or "(none registered)"
        raise PluginError(f"unknown {kind[:-1]} {name!r}; valid {kind}: {valid}")

    def task(self, name: str) -> TaskSpec:
        return self._get("tasks", name)

    def backend(self, name: str) -> BackendSpec:
        return self._get("backends", name)

    def recipe(self, name: str) -> RecipeSpec:
        return self._get("recipes", name)

    def plugin_of(self, kind: str, name: str) -> PluginInfo | None:
        """The plugin that registered a task, backend, model alias or recipe."""
        return self.owners.get((kind, name))

    def provenance(self, task: str | None = None, backend: str | None = None) -> dict[str, Any]:
        """``{"task": ..., "backend": ...}``: the provenance of the plugins behind a run (see
        :meth:`PluginInfo.provenance`); names without a plugin (user aliases, ...) are left out."""
        out = {}
        for role, kind, name in (("task", "tasks", task), ("backend", "backends", backend)):
            info = self.plugin_of(kind, name) if name else None
            if info is not None:
                out[role] = info.provenance()
        return out

    def resolve_model(self, name: str) -> tuple[BackendSpec, dict[str, Any], str]:
        """A model name is an alias, a backend name, or a local checkpoint directory (-> hf).
        Returns the backend, its default arguments, and a description of how the name was resolved."""
        if name in self.models:
            alias = self.models[name]
            return self.backend(alias.backend), dict(alias.model_args), f"alias -> {alias.backend}"
        if name in self.backends:
            return self.backends[name], {}, "backend"
        if Path(name).expanduser().is_dir() and "hf" in self.backends:  # absolute and normalised: run ids never
            return self.backends["hf"], {"pretrained": local_path(name)}, "local checkpoint -> hf"  # hold "../"
        aliases = ", ".join(sorted(self.models)) or "(none)"
        backends = ", ".join(sorted(self.backends)) or "(none)"
        raise PluginError(f"unknown model {name!r}: not an alias, a backend or a local directory.\n"
                          f"  aliases: {aliases}\n  backends: {backends}")

    def _caller(self, hook_name: str, plugin: str) -> Any:
        """One plugin's implementation of a hook, called through pluggy (so tracing sees it)."""
        assert self.manager is not None
        others = [p for n, p in self.manager.list_name_plugin() if n != plugin]
        return self.manager.subset_hook_caller(hook_name, remove_plugins=others)

    def notify_run_finished(self, run: Mapping[str, Any], run_dir: str) -> None:
        """Call every observer; one that raises is reported and the others still run."""
        if self.manager is None:
            return
        for impl in self.manager.hook.harness_run_finished.get_hookimpls():
            try:
                self._caller("harness_run_finished", impl.plugin_name)(run=run, run_dir=run_dir)
            except Exception as exc:  # an observer must never lose the run it observes
                warnings.warn(f"plugin {impl.plugin_name!r}: harness_run_finished failed: {exc!r}",
                              PluginWarning, stacklevel=2)


def local_path(path: str) -> str:
    """A local path as runs record it: ``~`` expanded, absolute, ``..`` and ``.`` removed (symlinks kept)."""
    return os.path.abspath(os.path.expanduser(path))


def _is_editable(module: str) -> bool:
    """The plugin's code is a working tree (an editable install, or a checkout on sys.path), not an installed copy
    in site-packages: its files can change under the same version number."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return True
    origin = spec.origin if spec else None
    if not origin or origin in ("built-in", "frozen"):
        return False
    return not any(part in ("site-packages", "dist-packages") for part in Path(origin).parts)


_HASHES: dict[str, str | None] = {}


def _source_hash(module: str) -> str | None:
    """SHA-256 over the plugin's source: the package directory of a ``pkg.plugin`` module or a package, else the
    module's own file. Cached per process; None when the module has no files (built in, a namespace)."""
    if module in _HASHES:
        return _HASHES[module]
    import hashlib
    import importlib.util

    digest = None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    origin = Path(spec.origin) if spec and spec.origin and spec.origin not in ("built-in", "frozen") else None
    if origin is not None and origin.is_file():
        whole_dir = origin.name == "__init__.py" or module.endswith(".plugin")
        files = sorted(p for p in origin.parent.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and not p.name.startswith(".")) if whole_dir else [origin]
        h = hashlib.sha256()
        for f in files:
            with contextlib.suppress(OSError):
                h.update(str(f.relative_to(origin.parent)).encode() + b"\0" + f.read_bytes() + b"\0")
        digest = h.hexdigest()
    _HASHES[module] = digest
    return digest


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        shown = {k: (type(v).__name__ if k in ("app", "groups", "run") else v) for k, v in kwargs.items()}
        print(f"[harness plugins] call {hook_name}({shown}) -> {[i.plugin_name for i in hook_impls]}",
              file=sys.stderr)

    def after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        exc = outcome.exception
        print(f"[harness plugins] done {hook_name}" + (f": raised {exc!r}" if exc else ""), file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def _entry_points() -> Iterable[md.EntryPoint]:
    return md.entry_points(group=ENTRY_POINT_GROUP)


def _user_aliases(path: Path) -> list[ModelAlias]:
    """Aliases from the user's config file: ``[models.NAME] backend = "hf"`` plus any model args."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PluginError(f"{path}: cannot be read as TOML: {exc}") from None
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise PluginError(f"{path}: 'models' must be a table of [models.NAME] sections")
    out = []
    for name, body in models.items():
        if not isinstance(body, dict):
            raise PluginError(f"{path}: models.{name} must be a table (backend = \"...\" and its arguments)")
        body = dict(body)
        backend = body.pop("backend", None)
        if not backend or not isinstance(backend, str):
            raise PluginError(f"{path}: model alias {name!r} needs a 'backend' key naming a backend")
        desc = str(body.pop("description", "from " + str(path)))
        out.append(ModelAlias(name=name, backend=backend, model_args=body, description=desc))
    return out


def user_config_path() -> Path:
    env = os.environ.get("HARNESS_CONFIG")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "harness" / "config.toml"


# ----------------------------------------------------------------------------------------------- validation


def validate_spec(spec: Any) -> None:
    """Raise ValueError saying what is wrong with a spec a plugin returned."""
    name = getattr(spec, "name", None)
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"name {name!r} must be 1-100 letters, digits, '.', '_', '+' or '-' (it names files)")
    if isinstance(spec, TaskSpec):
        if spec.modality not in ("text", "vision"):
            raise ValueError(f"task {name!r}: modality {spec.modality!r} must be 'text' or 'vision'")
        if not spec.splits or not all(isinstance(s, SplitSpec) for s in spec.splits):
            raise ValueError(f"task {name!r}: splits must be a non-empty tuple of SplitSpec")
        seen: set[str] = set()
        for s in spec.splits:
            if not isinstance(s.name, str) or not NAME.match(s.name):
                raise ValueError(f"task {name!r}: split name {s.name!r} must be a plain name")
            if s.distribution not in ("id", "ood"):
                raise ValueError(f"task {name!r}: split {s.name!r} distribution {s.distribution!r} must be 'id' or "
                                 "'ood'")
            if not isinstance(s.options, Mapping):
                raise ValueError(f"task {name!r}: split {s.name!r} options must be a mapping")
            for n in (s.name, *s.aliases):
                if n in seen:
                    raise ValueError(f"task {name!r}: split name or alias {n!r} is used twice")
                seen.add(n)
        if not callable(spec.make_env):
            raise ValueError(f"task {name!r}: make_env must be callable")
        vi = spec.default_verify_iter
        if not isinstance(vi, int) or isinstance(vi, bool) or vi < 1:
            raise ValueError(f"task {name!r}: default_verify_iter must be an integer >= 1, got {vi!r}")
        names: set[str] = set()
        for m in spec.metrics:
            if not isinstance(m, MetricSpec) or m.kind not in ("rate", "mean", "ratio"):
                raise ValueError(f"task {name!r}: metric {m!r} must be a MetricSpec of kind rate, mean or ratio")
            if m.name in names or m.name in CORE_METRICS:
                raise ValueError(f"task {name!r}: metric name {m.name!r} is used twice or is a core metric")
            names.add(m.name)
        if not isinstance(spec.version, str):
            raise ValueError(f"task {name!r}: version must be a string")
    elif isinstance(spec, BackendSpec):
        if not callable(spec.factory):
            raise ValueError(f"backend {name!r}: factory must be callable")
    elif isinstance(spec, RecipeSpec):
        if not callable(spec.run):
            raise ValueError(f"recipe {name!r}: run must be callable")
        if spec.extra is not None and not isinstance(spec.extra, str):
            raise ValueError(f"recipe {name!r}: extra must be a pip extra's name or None")
    elif isinstance(spec, ModelAlias) and (not isinstance(spec.backend, str)
                                           or not isinstance(spec.model_args, Mapping)):
        raise ValueError(f"model alias {name!r}: backend must be a name and model_args a mapping")


def _unknown_hooks(obj: Any) -> list[str]:
    """Functions marked as harness hooks whose names the spec does not define."""
    known = {n for n in dir(hookspecs) if n.startswith("harness_")}
    out = []
    for attr in dir(obj):
        try:
            value = getattr(obj, attr)
        except Exception:
            continue
        if getattr(value, f"{hookspecs.PROJECT}_impl", None) is None or attr in known:
            continue
        close = difflib.get_close_matches(attr, sorted(known), n=1, cutoff=0.8)
        if attr.startswith("harness") or close:  # not a private alias such as `from x import harness_tasks as _t`
            out.append(attr + (f" (did you mean {close[0]}?)" if close else ""))
    return out


@contextlib.contextmanager
def _importing(label: str):  # type: ignore[no-untyped-def]
    """Plugin prints go to stderr; a slow import is named while it runs."""
    def slow() -> None:
        print(f"harness: still importing plugin {label} after {SLOW_IMPORT_S:.0f} s ...", file=sys.stderr, flush=True)

    timer = threading.Timer(SLOW_IMPORT_S, slow)
    timer.daemon = True
    timer.start()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        timer.cancel()


# -------------------------------------------------------------------------------------------------- loading


def load_registry(extra_modules: Iterable[str] = (), *, entry_points: bool | None = None,
                  strict: bool = True) -> Registry:
    """Load every plugin and build the registry. ``entry_points=False`` loads only the named modules (tests);
    ``strict=False`` records fatal problems on the plugins instead of raising (``harness plugins``)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("HARNESS_TRACE_PLUGINS"):
        _trace(pm)
    reg = Registry(manager=pm)
    fatal: list[str] = []
    third_party = entry_points if entry_points is not None else not os.environ.get("HARNESS_DISABLE_ENTRYPOINTS")
    first_party = entry_points is not False

    def register(name: str, module_name: str, loader: Callable[[], Any], dist: str | None, version: str | None,
                 explicit: bool) -> None:
        info = PluginInfo(name=name, module=module_name, distribution=dist, version=version, explicit=explicit)
        reg.plugins.append(info)
        try:
            with _importing(info.label):
                obj = loader()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit and the like in a plugin must not end harness
            info.error = f"failed to import: {type(exc).__name__}: {exc}"
            info.disabled = True
            if explicit:
                fatal.append(f"plugin {info.label} {info.error}")
            else:
                warnings.warn(f"plugin {info.label} {info.error}; it was skipped", PluginWarning, stacklevel=3)
            return
        unknown = _unknown_hooks(obj)
        if unknown:
            info.error = f"defines unknown hook(s) {', '.join(unknown)}; valid hooks: " + ", ".join(
                sorted(n for n in dir(hookspecs) if n.startswith("harness_")))
            info.disabled = True
            fatal.append(f"plugin {info.label} {info.error}")
            return
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            info.error = f"could not be registered: {type(exc).__name__}: {exc}"
            info.disabled = True
            fatal.append(f"plugin {info.label} {info.error}")
            return
        info.hooks = _hooks_of(pm, name)

    if first_party or third_party:
        eps = sorted(_entry_points(), key=lambda e: (e.dist.name != FIRST_PARTY if e.dist else True,
                                                     e.dist.name if e.dist else "", e.name))
        seen: set[str] = set()
        for ep in eps:
            dist = ep.dist.name if ep.dist else None
            mine = dist == FIRST_PARTY
            if (mine and not first_party) or (not mine and not third_party) or ep.name in seen:
                continue  # the same distribution visible twice on sys.path, or switched off
            seen.add(ep.name)
            register(ep.name, ep.value, ep.load, dist, ep.dist.version if ep.dist else None, explicit=False)
    env_mods = [m.strip() for m in os.environ.get("HARNESS_PLUGINS", "").split(",") if m.strip()]
    for mod in [*env_mods, *extra_modules]:
        if pm.has_plugin(mod) or any(p.module == mod for p in reg.plugins):
            continue
        register(mod, mod, lambda m=mod: importlib.import_module(m), None, None, explicit=True)

    _collect_specs(reg)
    _collect_boards(reg)
    cfg = user_config_path()
    if cfg.is_file():
        for alias in _user_aliases(cfg):
            reg.models[alias.name] = alias  # a user's alias deliberately overrides a plugin's
    if fatal and strict:
        raise PluginError("\n".join(fatal) + "\n(`harness plugins` lists every plugin and what was disabled)")
    return reg


def _hooks_of(pm: pluggy.PluginManager, plugin: str) -> list[str]:
    out = []
    for hook_name in dir(pm.hook):
        caller = getattr(pm.hook, hook_name, None)
        if isinstance(caller, pluggy.HookCaller) and any(i.plugin_name == plugin for i in caller.get_hookimpls()):
            out.append(hook_name)
    return sorted(out)


def _collect_specs(reg: Registry) -> None:
    by_name = {p.name: p for p in reg.plugins}
    for kind, (hook_name, spec_type) in _KINDS.items():
        table: dict[str, Any] = getattr(reg, kind)
        assert reg.manager is not None
        for impl in getattr(reg.manager.hook, hook_name).get_hookimpls():  # registration order
            info = by_name[impl.plugin_name]
            if info.disabled:
                continue
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    results = reg._caller(hook_name, impl.plugin_name)()
                specs = [s for part in results for s in (part or ())]
            except Exception as exc:
                _note(info, f"{hook_name} raised {type(exc).__name__}: {exc}")
                continue
            for spec in specs:
                if not isinstance(spec, spec_type):
                    _note(info, f"{hook_name} returned {type(spec).__name__}, expected {spec_type.__name__}")
                    continue
                try:
                    validate_spec(spec)
                except ValueError as exc:
                    _note(info, f"{hook_name}: {exc}")
                    continue
                key = (kind, spec.name)
                first = reg.owners.get(key)
                if first is not None and first is not info:
                    _disable(reg, info, f"registers {kind[:-1]} {spec.name!r}, which plugin {first.label} "
                                        "registered first")
                    break
                reg.owners[key] = info
                table[spec.name] = spec
                info.registered.setdefault(kind, []).append(spec.name)


def _collect_boards(reg: Registry) -> None:
    """Board TOML files shipped by plugins (``harness_boards``), by file name."""
    assert reg.manager is not None
    for impl in reg.manager.hook.harness_boards.get_hookimpls():
        info = next(p for p in reg.plugins if p.name == impl.plugin_name)
        if info.disabled:
            continue
        try:
            paths = [Path(p) for part in reg._caller("harness_boards", impl.plugin_name)() for p in (part or ())]
        except Exception as exc:
            _note(info, f"harness_boards raised {type(exc).__name__}: {exc}")
            continue
        for p in paths:
            if p.suffix != ".toml" or not p.is_file():
                _note(info, f"harness_boards: {p} is not a .toml file")
            elif p.stem in reg.boards:
                _note(info, f"harness_boards: a board named {p.stem!r} is already shipped by another plugin")
            else:
                reg.boards[p.stem] = p
                info.registered.setdefault("boards", []).append(p.stem)


def _note(info: PluginInfo, problem: str) -> None:
    info.error = problem if not info.error else f"{info.error}; {problem}"
    warnings.warn(f"plugin {info.label}: {problem}; that part was skipped", PluginWarning, stacklevel=3)


def _disable(reg: Registry, info: PluginInfo, why: str) -> None:
    """Take back everything a plugin registered: the later of two plugins claiming one name loses."""
    for kind, names in info.registered.items():
        table: dict[str, Any] = getattr(reg, kind)
        for n in names:
            table.pop(n, None)
            reg.owners.pop((kind, n), None)
    info.registered = {}
    info.disabled = True
    info.error = f"disabled: it {why}"
    warnings.warn(f"plugin {info.label} is disabled: it {why}; uninstall or rename one of them", PluginWarning,
                  stacklevel=3)
