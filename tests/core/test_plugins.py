from __future__ import annotations

import dataclasses
import sys
import textwrap
import types
import warnings

import pytest

from harness.plugins import PluginError, PluginWarning, load_registry, validate_spec
from harness.types import SplitSpec


def _module(name: str, source: str) -> str:
    mod = types.ModuleType(name)
    exec(compile(textwrap.dedent(source), name, "exec"), mod.__dict__)
    sys.modules[name] = mod
    return name


def test_builtins_load_through_entry_points() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        reg = load_registry()
    names = {p.name: p for p in reg.plugins}
    assert names["baselines"].distribution == "harness"
    assert {"oracle", "random"} <= set(reg.backends)
    assert names["baselines"].registered["backends"] == ["oracle", "random"]


def test_extra_module_registers_a_task() -> None:
    reg = load_registry(["harness_toy.plugin"], entry_points=False)
    assert reg.task("toy-add").split("big").name == "ood"
    assert reg.plugins[0].registered == {"tasks": ["toy-add"]}


def test_a_named_plugin_that_fails_to_import_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"plugin 'no_such_plugin_mod'.*failed to import: ModuleNotFoundError"):
        load_registry(["no_such_plugin_mod", "harness_toy.plugin"], entry_points=False)
    reg = load_registry(["no_such_plugin_mod", "harness_toy.plugin"], entry_points=False, strict=False)
    assert "toy-add" in reg.tasks  # lenient loading (`harness plugins`) shows it and keeps the rest
    bad = next(p for p in reg.plugins if p.name == "no_such_plugin_mod")
    assert bad.disabled and "ModuleNotFoundError" in (bad.error or "")


def test_plugin_raising_at_import_is_isolated() -> None:
    sys.modules.pop("raises_at_import", None)
    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
            if name == "raises_at_import":
                return importlib.machinery.ModuleSpec(name, self)
            return None

        def create_module(self, spec):  # type: ignore[no-untyped-def]
            return None

        def exec_module(self, module):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom in plugin")

    finder = Finder()
    sys.meta_path.insert(0, finder)
    try:
        with pytest.raises(PluginError, match=r"raises_at_import.*boom in plugin"):
            load_registry(["raises_at_import", "harness_toy.plugin"], entry_points=False)
        reg = load_registry(["raises_at_import", "harness_toy.plugin"], entry_points=False, strict=False)
    finally:
        sys.meta_path.remove(finder)
    assert "toy-add" in reg.tasks


def test_a_duplicate_name_disables_the_later_plugin_naming_both() -> None:
    _module("dup_task_plugin", """
        from harness import hookimpl
        from harness_toy.plugin import harness_tasks as _t
        @hookimpl
        def harness_tasks():
            return _t()
    """)
    with pytest.warns(PluginWarning, match=r"'dup_task_plugin'.*disabled.*toy-add.*'harness_toy\.plugin'"):
        reg = load_registry(["harness_toy.plugin", "dup_task_plugin"], entry_points=False)
    assert reg.plugin_of("tasks", "toy-add").name == "harness_toy.plugin"  # the first keeps it; all else works
    dup = next(p for p in reg.plugins if p.name == "dup_task_plugin")
    assert dup.disabled and dup.registered == {}


def test_malformed_specs_are_skipped_with_a_warning() -> None:
    _module("malformed_plugin", """
        from harness import hookimpl
        @hookimpl
        def harness_tasks():
            return [{"name": "not-a-spec"}]
        @hookimpl
        def harness_backends():
            raise ValueError("cannot build")
    """)
    with pytest.warns(PluginWarning, match="malformed_plugin"):
        reg = load_registry(["malformed_plugin", "harness_toy.plugin"], entry_points=False)
    assert set(reg.tasks) == {"toy-add"}
    info = next(p for p in reg.plugins if p.name == "malformed_plugin")
    assert info.error


def test_unknown_names_list_the_valid_ones() -> None:
    reg = load_registry(["harness_toy.plugin", "tests.core.helpers"], entry_points=False)
    with pytest.raises(PluginError, match="valid tasks: toy-add"):
        reg.task("nope")
    with pytest.raises(PluginError, match="slow-oracle"):
        reg.resolve_model("nope")


def test_user_config_aliases(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[models.fast]\nbackend = "slow-oracle"\ndelay = 0.0\ndescription = "mine"\n')
    monkeypatch.setenv("HARNESS_CONFIG", str(cfg))
    reg = load_registry(["tests.core.helpers"], entry_points=False)
    spec, args, how = reg.resolve_model("fast")
    assert spec.name == "slow-oracle" and args == {"delay": 0.0} and how.startswith("alias")


def test_observer_failure_does_not_stop_others(monkeypatch) -> None:
    seen: list[str] = []
    _module("obs_ok", """
        from harness import hookimpl
        SEEN = []
        @hookimpl
        def harness_run_finished(run, run_dir):
            SEEN.append(run_dir)
    """)
    _module("obs_bad", """
        from harness import hookimpl
        @hookimpl
        def harness_run_finished(run, run_dir):
            raise OSError("disk full")
    """)
    reg = load_registry(["obs_bad", "obs_ok"], entry_points=False)
    with pytest.warns(PluginWarning, match="disk full"):
        reg.notify_run_finished({"x": 1}, "/tmp/run")
    seen = sys.modules["obs_ok"].SEEN
    assert seen == ["/tmp/run"]


def test_a_misspelt_hook_is_an_error_naming_the_plugin() -> None:
    _module("typo_hook_plugin", """
        from harness import hookimpl
        @hookimpl
        def harness_task():
            return []
    """)
    with pytest.raises(PluginError, match=r"'typo_hook_plugin'.*unknown hook\(s\) harness_task \(did you mean "
                                          r"harness_tasks\?\)"):
        load_registry(["typo_hook_plugin"], entry_points=False)


def test_sys_exit_and_prints_at_import_are_isolated(capsys: pytest.CaptureFixture[str]) -> None:
    _module("prints_plugin", "")
    sys.modules.pop("exits_at_import", None)
    src = "print('hello from a plugin')\nimport sys\nsys.exit(3)\n"
    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
            return importlib.machinery.ModuleSpec(name, self) if name == "exits_at_import" else None

        def create_module(self, spec):  # type: ignore[no-untyped-def]
            return None

        def exec_module(self, module):  # type: ignore[no-untyped-def]
            exec(src, module.__dict__)

    finder = Finder()
    sys.meta_path.insert(0, finder)
    try:
        reg = load_registry(["exits_at_import", "harness_toy.plugin"], entry_points=False, strict=False)
    finally:
        sys.meta_path.remove(finder)
    bad = next(p for p in reg.plugins if p.name == "exits_at_import")
    assert "SystemExit: 3" in (bad.error or "") and "toy-add" in reg.tasks
    captured = capsys.readouterr()
    assert "hello from a plugin" in captured.err and "hello" not in captured.out  # stdout stays clean


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("modality", "image", "modality 'image'"),
    ("splits", (SplitSpec("id", "a"), SplitSpec("id", "b")), "used twice"),
    ("splits", (SplitSpec("id", "a", "OOD"),), "distribution 'OOD'"),
    ("name", "../../x", "name '../../x'"),
    ("default_verify_iter", 0, "default_verify_iter"),
])
def test_specs_are_validated_where_they_enter(field: str, value: object, problem: str) -> None:
    good = load_registry(["harness_toy.plugin"], entry_points=False).task("toy-add")
    with pytest.raises(ValueError, match=problem):
        validate_spec(dataclasses.replace(good, **{field: value}))


def test_hook_tracing_sees_every_call(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HARNESS_TRACE_PLUGINS", "1")
    reg = load_registry(["harness_toy.plugin"], entry_points=False)
    reg.notify_run_finished({"x": 1}, "/tmp/r")
    err = capsys.readouterr().err
    assert "call harness_tasks" in err and "['harness_toy.plugin']" in err and "done harness_tasks" in err


def test_disabling_entry_points_keeps_the_first_party_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        reg = load_registry()
    assert {"gp-l", "gp-vl", "virl-l", "virl-vl"} <= set(reg.tasks)
    assert all(p.distribution == "harness" for p in reg.plugins)


def test_plugins_can_ship_boards(tmp_path) -> None:
    board = tmp_path / "my-board.toml"
    board.write_text('name = "my-board"\ntitle = "t"\n[[columns]]\ntask = "toy-add"\nsplit = "id"\n')
    _module("board_plugin", f"""
        from harness import hookimpl
        @hookimpl
        def harness_boards():
            return [{str(board)!r}]
    """)
    reg = load_registry(["board_plugin"], entry_points=False)
    assert reg.boards == {"my-board": board}
    assert next(p for p in reg.plugins if p.name == "board_plugin").registered == {"boards": ["my-board"]}


@pytest.mark.parametrize(("text", "needle"), [
    ("models = 5", "'models' must be a table"),
    ("[models]\nx = 5", "models.x must be a table"),
    ("[models.x]\nbackend = 3", "needs a 'backend' key"),
    ("[models.x\n", "cannot be read as TOML"),
])
def test_bad_user_config_names_the_file_and_field(tmp_path, monkeypatch, text, needle) -> None:
    from harness.plugins import PluginError, load_registry

    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    monkeypatch.setenv("HARNESS_CONFIG", str(cfg))
    with pytest.raises(PluginError, match=needle) as info:
        load_registry(entry_points=False)
    assert str(cfg) in str(info.value)
