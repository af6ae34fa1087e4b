"""The plugin manager: loads built-in and third-party plugins the same way and builds the registry.

Loading order: the ``harness`` entry-point group (first-party plugins are registered there too), then
modules named with ``--plugin``/``HARNESS_PLUGINS``. A plugin that fails to import, raises, or returns
malformed specs is named in a warning and skipped; two plugins that register the same name is an error
naming both. ``HARNESS_TRACE_PLUGINS=1`` prints every hook call; ``HARNESS_DISABLE_ENTRYPOINTS=1`` loads
only explicitly named modules (tests).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from harness import hookspecs
from harness.types import BackendSpec, ModelAlias, RecipeSpec, TaskSpec

ENTRY_POINT_GROUP = "harness"
_KINDS: dict[str, tuple[str, type]] = {
    "tasks": ("harness_tasks", TaskSpec),
    "backends": ("harness_backends", BackendSpec),
    "models": ("harness_models", ModelAlias),
    "recipes": ("harness_recipes", RecipeSpec),
}


class PluginError(Exception):
    """A plugin problem that stops the command (duplicate names, unknown names)."""


class PluginWarning(UserWarning):
    """A plugin that was skipped; the rest keeps working."""


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Registry:
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    backends: dict[str, BackendSpec] = field(default_factory=dict)
    models: dict[str, ModelAlias] = field(default_factory=dict)
    recipes: dict[str, RecipeSpec] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None

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

    def resolve_model(self, name: str) -> tuple[BackendSpec, dict[str, Any], str]:
        """A model name is an alias, a backend name, or a local checkpoint directory (-> hf).
        Returns the backend, its default arguments, and a description of how the name was resolved."""
        if name in self.models:
            alias = self.models[name]
            return self.backend(alias.backend), dict(alias.model_args), f"alias -> {alias.backend}"
        if name in self.backends:
            return self.backends[name], {}, "backend"
        if Path(name).expanduser().is_dir() and "hf" in self.backends:
            return self.backends["hf"], {"pretrained": str(Path(name).expanduser())}, "local checkpoint -> hf"
        aliases = ", ".join(sorted(self.models)) or "(none)"
        backends = ", ".join(sorted(self.backends)) or "(none)"
        raise PluginError(f"unknown model {name!r}: not an alias, a backend or a local directory.\n"
                          f"  aliases: {aliases}\n  backends: {backends}")

    def notify_run_finished(self, run: Mapping[str, Any], run_dir: str) -> None:
        """Call every observer; one that raises is reported and the others still run."""
        if self.manager is None:
            return
        for impl in self.manager.hook.harness_run_finished.get_hookimpls():
            try:
                impl.function(run=run, run_dir=run_dir)
            except Exception as exc:  # an observer must never lose the run it observes
                warnings.warn(f"plugin {impl.plugin_name!r}: harness_run_finished failed: {exc!r}",
                              PluginWarning, stacklevel=2)


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        print(f"[harness plugins] call {hook_name}({kwargs}) -> {[i.plugin_name for i in hook_impls]}",
              file=sys.stderr)

    def after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        print(f"[harness plugins] done {hook_name}", file=sys.stderr)

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


def load_registry(extra_modules: Iterable[str] = (), *, entry_points: bool | None = None) -> Registry:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("HARNESS_TRACE_PLUGINS"):
        _trace(pm)
    reg = Registry(manager=pm)
    if entry_points is None:
        entry_points = not os.environ.get("HARNESS_DISABLE_ENTRYPOINTS")

    def register(name: str, module_name: str, loader: Any, dist: str | None, version: str | None) -> None:
        info = PluginInfo(name=name, module=module_name, distribution=dist, version=version)
        reg.plugins.append(info)
        try:
            obj = loader()
            pm.register(obj, name=name)
        except Exception as exc:
            info.error = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"plugin {name!r} ({module_name}) failed to load and was skipped: {info.error}",
                          PluginWarning, stacklevel=3)

    if entry_points:
        seen: set[str] = set()
        for ep in sorted(_entry_points(), key=lambda e: e.name):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            dist = ep.dist.name if ep.dist else None
            ver = ep.dist.version if ep.dist else None
            register(ep.name, ep.value, ep.load, dist, ver)
    env_mods = [m for m in os.environ.get("HARNESS_PLUGINS", "").split(",") if m.strip()]
    for mod in [*env_mods, *extra_modules]:
        if pm.has_plugin(mod) or any(p.module == mod for p in reg.plugins):
            continue
        register(mod, mod, lambda m=mod: importlib.import_module(m), None, None)

    by_name = {p.name: p for p in reg.plugins}
    owners: dict[tuple[str, str], str] = {}
    for kind, (hook_name, spec_type) in _KINDS.items():
        table: dict[str, Any] = getattr(reg, kind)
        for impl in getattr(pm.hook, hook_name).get_hookimpls():  # registration order
            info = by_name[impl.plugin_name]
            try:
                specs = list(impl.function() or ())
                bad = [s for s in specs if not isinstance(s, spec_type)]
                if bad:
                    raise TypeError(f"{hook_name} returned {type(bad[0]).__name__}, expected {spec_type.__name__}")
            except Exception as exc:
                info.error = f"{hook_name}: {type(exc).__name__}: {exc}"
                warnings.warn(f"plugin {info.name!r} returned malformed {kind} and they were skipped: {exc}",
                              PluginWarning, stacklevel=2)
                continue
            for spec in specs:
                key = (kind, spec.name)
                if key in owners:
                    raise PluginError(f"{kind[:-1]} {spec.name!r} is registered by two plugins: "
                                      f"{owners[key]!r} and {info.name!r}; uninstall or rename one")
                owners[key] = info.name
                table[spec.name] = spec
                info.registered.setdefault(kind, []).append(spec.name)

    cfg = user_config_path()
    if cfg.is_file():
        for alias in _user_aliases(cfg):
            reg.models[alias.name] = alias  # a user's alias deliberately overrides a plugin's
    return reg
