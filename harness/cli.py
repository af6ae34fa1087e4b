"""The ``harness`` command line (typer + rich).

Plugins are loaded before the command line is parsed, so plugins can add commands through the
``harness_cli`` hook; ``--plugin module.path`` (repeatable) is therefore read from argv up front too.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.plugins import PluginError, PluginWarning, Registry, load_registry
from harness.runner import EvalConfig, RunExistsError, Runner, format_metric, run_dir_for
from harness.types import GenParams, MetricSpec

console = Console(stderr=True)
out = Console()

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  help="Evaluate and post-train models on generalisation tasks (GeneralPoints, V-IRL).")
models_app = typer.Typer(help="Model aliases (and tools plugins add, such as make-tiny).",
                         invoke_without_command=True, no_args_is_help=False)
runs_app = typer.Typer(help="Browse recorded runs.", no_args_is_help=True)
leaderboard_app = typer.Typer(help="Render, compare and publish leaderboards.", no_args_is_help=True)
plot_app = typer.Typer(help="Plot board columns and compute curves.", no_args_is_help=True)
GROUPS: dict[str, typer.Typer] = {"models": models_app, "runs": runs_app, "leaderboard": leaderboard_app,
                                  "plot": plot_app}
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)

_REGISTRY: Registry | None = None
_EXTRA_PLUGINS: list[str] = []


def registry() -> Registry:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry(_EXTRA_PLUGINS, strict=not _LENIENT)
        from harness.leaderboard import schema as board_schema

        board_schema.PLUGIN_BOARDS = dict(_REGISTRY.boards)
    return _REGISTRY


_LENIENT = False  # `harness plugins` and --help must work whatever a plugin does


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def parse_kv(text: str | None, what: str) -> dict[str, Any]:
    """``k=v,k2=v2`` with JSON-ish values: numbers, true/false/null, JSON lists/objects, else strings."""
    if not text:
        return {}
    if text.lstrip().startswith("{"):
        try:
            return dict(json.loads(text))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise fail(f"{what}: not a JSON object: {exc}") from None
    result: dict[str, Any] = {}
    for item in _split_top_level(text):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise fail(f"{what}: expected key=value, got {item!r}")
        result[key.strip()] = _coerce(value.strip())
    return result


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets or braces (JSON values may contain commas)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _coerce(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    label = "plugin warning" if issubclass(category, PluginWarning) else category.__name__
    console.print(f"[yellow]{label}:[/] {escape(str(message))}", highlight=False)


# ------------------------------------------------------------------------------------------ eval


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Alias, backend name, or local checkpoint dir.")],
    task: Annotated[str, typer.Option("--task", "-t", help="Task name (see `harness tasks`).")],
    split: Annotated[str, typer.Option("--split", "-s", help="Split name, several comma-separated, or 'all'.")]
    = "id",
    episodes: Annotated[int, typer.Option("--episodes", "--limit", "-n", min=1, help="Episodes per split.")]
    = 100,
    seed: Annotated[int, typer.Option(help="Episode seed: the same seed plays the same episodes.")] = 0,
    verify_iter: Annotated[int | None, typer.Option(
        "--verify-iter", min=1, help="Answers allowed per episode/step (default: the task's).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Runs root directory.")] = Path("runs"),
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run; retries failed episodes.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard an existing run with this configuration.")] = False,
    model_args: Annotated[str | None, typer.Option(help="Backend arguments: k=v,k=v or a JSON object.")] = None,
    gen_args: Annotated[str | None, typer.Option(
        help="Generation: temperature, max_tokens, top_p, seed (k=v,...).")] = None,
    task_args: Annotated[str | None, typer.Option(help="Task arguments, e.g. target=24,image_size=896.")]
    = None,
    data: Annotated[Path | None, typer.Option(help="A task data file (e.g. the paper's V-IRL routes).")]
    = None,
    temperature: Annotated[float | None, typer.Option(help="Shortcut for --gen-args temperature=.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Shortcut for --gen-args max_tokens=.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Live episodes per batched call (default: the backend's).")] = None,
    max_connections: Annotated[int, typer.Option(min=1, help="Concurrent episodes for API backends.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
) -> None:
    """Evaluate a model on a task split and record the run."""
    reg = registry()
    try:
        spec = reg.task(task)
        splits = [s.name for s in spec.splits] if split == "all" else [
            spec.split(s.strip()).name for s in split.split(",") if s.strip()]
        backend_spec, alias_args, how = reg.resolve_model(model)
    except (PluginError, KeyError) as exc:
        raise fail(str(exc).strip("'\"")) from None
    margs = {**alias_args, **parse_kv(model_args, "--model-args")}
    model_name = _display_name(model, how, margs)
    gen = {**parse_kv(gen_args, "--gen-args")}
    if temperature is not None:
        gen["temperature"] = temperature
    if max_tokens is not None:
        gen["max_tokens"] = max_tokens
    try:
        params = GenParams(**gen)
    except TypeError as exc:
        raise fail(f"--gen-args: {exc}; valid keys: temperature, max_tokens, top_p, seed") from None
    targs = parse_kv(task_args, "--task-args")
    if data is not None:
        targs["data"] = str(data)

    console.print(f"[dim]model {model!r} ({how}: backend {backend_spec.name})[/]", highlight=False)
    try:
        backend = backend_spec.factory(margs)
    except Exception as exc:
        hint = f" (install the extra: pip install 'harness[{backend_spec.extra}]')" if (
            backend_spec.extra and isinstance(exc, ImportError)) else ""
        raise fail(f"backend {backend_spec.name!r} could not start: {exc}{hint}") from None
    records = []
    try:
        for split_name in splits:
            cfg = EvalConfig(task=task, split=split_name, model=model_name, backend=backend_spec.name,
                             model_args=margs, gen=params, episodes=episodes, seed=seed, verify_iter=verify_iter,
                             task_args=targs, batch_size=batch_size or backend_spec.default_batch_size,
                             max_connections=max_connections, task_version=spec.version)
            try:
                result = _run_one(reg, spec, backend, cfg, output, resume, overwrite)
            except (typer.Exit, KeyboardInterrupt):
                raise
            except Exception as exc:  # a backend that cannot serve this task at all (e.g. text-only model)
                if os.environ.get("HARNESS_DEBUG"):
                    raise
                raise fail(f"{type(exc).__name__}: {exc}\n(the run so far is saved; fix the cause and "
                           "rerun with --resume; HARNESS_DEBUG=1 shows the traceback)") from None
            records.append(result.record)
            if not as_json:
                _print_result(spec.metrics, result.record, result.run_dir)
    finally:
        backend.close()
    if as_json:
        out.print_json(json.dumps(records if len(records) > 1 else records[0], default=str))


def _display_name(model: str, how: str, margs: Mapping[str, Any]) -> str:
    """A bare backend name says little (``openai``, ``hf``): name the run after what it serves."""
    served = margs.get("model") or margs.get("pretrained")
    return f"{model}:{served}" if how == "backend" and served else model


def _run_one(reg: Registry, spec: Any, backend: Any, cfg: EvalConfig, output: Path, resume: bool,
             overwrite: bool) -> Any:
    run_dir = run_dir_for(output, cfg)
    stats = {"ok": 0, "solved": 0}
    with Progress(TextColumn(f"[bold]{cfg.task}[/]/{cfg.split}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                  disable=os.environ.get("HARNESS_NO_PROGRESS") == "1") as bar:
        job = bar.add_task("eval", total=cfg.episodes, rate="")
        last = [0.0]

        def progress(done: int, total: int, rec: Mapping[str, Any] | None) -> None:
            if rec is not None and rec.get("status") == "ok":
                stats["ok"] += 1
                stats["solved"] += bool(rec.get("success"))
            now = time.perf_counter()
            if now - last[0] > 0.1 or done == total:  # redraw at most 10x/s: the bar must not cost time
                last[0] = now
                rate = f"success {100 * stats['solved'] / stats['ok']:.1f}%" if stats["ok"] else ""
                bar.update(job, completed=done, rate=rate)

        runner = Runner(spec, backend, cfg, run_dir, progress=progress)
        try:
            result = runner.run(resume=resume, overwrite=overwrite)
        except RunExistsError as exc:
            raise fail(str(exc)) from None
    reg.notify_run_finished(result.record, result.run_dir)
    return result


def _print_result(task_metrics: tuple[MetricSpec, ...], record: Mapping[str, Any], run_dir: str) -> None:
    from harness.metrics import CORE_METRICS
    from harness.types import MetricValue

    kinds = {m.name: m.kind for m in (*CORE_METRICS, *task_metrics)}
    table = Table(title=f"{record['task']} / {record['split']}  -  {record['model']['name']}",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value [95% CI]", justify="right")
    table.add_column("n", justify="right")
    for name, m in record["metrics"].items():
        mv = MetricValue(**m)
        table.add_row(name, format_metric(mv, kinds.get(name) in ("rate", "ratio")), str(mv.n))
    out.print(table)
    tail = f"{record['episodes_ok']}/{record['episodes']} episodes ok"
    if record["episodes_failed"]:
        tail += f", [red]{record['episodes_failed']} failed[/] (rerun with --resume to retry them)"
        for reason, n in list(record["failure_reasons"].items())[:5]:
            tail += f"\n  {n} x {reason}"
    out.print(f"{tail}; {record['wall_time_s']:.2f} s; run: {run_dir}", highlight=False)


# ----------------------------------------------------------------------------------------- train


@app.command("train")
def train_cmd(
    recipe: Annotated[str, typer.Option(help="Recipe name (sft, rl, ...).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Base model: alias or local checkpoint dir.")],
    task: Annotated[str, typer.Option("--task", "-t", help="Task to train on.")],
    split: Annotated[str, typer.Option(help="Training split.")] = "id",
    steps: Annotated[int | None, typer.Option(min=1, help="Optimiser steps (or use --budget).")] = None,
    budget: Annotated[float | None, typer.Option(help="Training compute budget in FLOPs, e.g. 1e15.")] = None,
    ckpt_dir: Annotated[Path | None, typer.Option("--out", help="Checkpoint directory (default runs/train/<...>).")]
    = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Runs root for checkpoint evals.")] = Path("runs"),
    recipe_args: Annotated[str | None, typer.Option(help="Recipe arguments k=v,... (see the recipe).")] = None,
    model_args: Annotated[str | None, typer.Option(help="Backend arguments k=v,... for loading/eval.")] = None,
    eval_splits: Annotated[str, typer.Option(help="Splits to evaluate each checkpoint on ('all' or list).")]
    = "all",
    eval_episodes: Annotated[int, typer.Option(min=1, help="Episodes per split per checkpoint.")] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    verify_iter: Annotated[int | None, typer.Option("--verify-iter", min=1)] = None,
    max_tokens: Annotated[int, typer.Option(help="Max new tokens when evaluating checkpoints.")] = 256,
    batch_size: Annotated[int, typer.Option(min=1, help="Eval batch size.")] = 16,
) -> None:
    """Post-train a local model with a recipe; evaluate every checkpoint on ID and OOD splits."""
    from harness.training import make_evaluator
    from harness.types import TrainJob

    reg = registry()
    try:
        spec = reg.task(task)
        recipe_spec = reg.recipe(recipe)
        backend_spec, alias_args, _ = reg.resolve_model(model)
        train_split = spec.split(split).name
        splits = [s.name for s in spec.splits] if eval_splits == "all" else [
            spec.split(s.strip()).name for s in eval_splits.split(",") if s.strip()]
    except (PluginError, KeyError) as exc:
        raise fail(str(exc).strip("'\"")) from None
    margs = {**alias_args, **parse_kv(model_args, "--model-args")}
    if "pretrained" not in margs:
        raise fail(f"{model!r} is not a local checkpoint (backend {backend_spec.name}); training needs one")
    out_dir = ckpt_dir or output / "train" / f"{recipe}_{task}_{Path(str(margs['pretrained'])).name}_s{seed}"

    def show(rec: Mapping[str, Any]) -> None:
        m = rec["metrics"]["success_rate"]
        step = (rec.get("training") or {}).get("step")
        console.print(f"[dim]checkpoint step {step}: {rec['task']}/{rec['split']} success "
                      f"{100 * m['value']:.1f}% [{100 * m['ci_low']:.1f}, {100 * m['ci_high']:.1f}][/]",
                      highlight=False)

    evaluate = make_evaluator(reg, task=spec, backend_name=backend_spec.name, model_args=margs,
                              runs_root=output, splits=splits, episodes=eval_episodes, seed=seed,
                              verify_iter=verify_iter, gen=GenParams(max_tokens=max_tokens),
                              batch_size=batch_size, on_result=show)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun / accelerate launch
    by_flops = steps is None and budget is not None  # neither: the recipe's own step count (e.g. a preset)
    with Progress(TextColumn(f"[bold]{recipe}[/] {task}/{train_split}"), BarColumn(), MofNCompleteColumn()
                  if not by_flops else TextColumn("{task.completed:.3g}/{task.total:.3g} FLOPs"),
                  TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=console,
                  disable=not main_process or os.environ.get("HARNESS_NO_PROGRESS") == "1") as bar:
        bar_id = bar.add_task("train", total=steps if steps is not None else budget, stats="")

        def on_step(s: Mapping[str, Any]) -> None:
            done = min(float(s["flops"]), float(budget or 0)) if by_flops else s["step"]
            shown = {k: v for k, v in s.items()  # whatever numbers the recipe reports for its step
                     if k not in ("step", "flops") and isinstance(v, int | float) and not isinstance(v, bool)}
            bar.update(bar_id, completed=done, stats=" ".join(f"{k} {v:.3g}" for k, v in shown.items()))

        job = TrainJob(recipe=recipe, model=model, model_args=margs, task=spec, split=train_split,
                       out_dir=str(out_dir), evaluate=evaluate, seed=seed, steps=steps, budget_flops=budget,
                       verify_iter=verify_iter, eval_episodes=eval_episodes,
                       recipe_args=parse_kv(recipe_args, "--recipe-args"), on_step=on_step)
        try:
            summary = recipe_spec.run(job)
        except (ValueError, FileNotFoundError, ImportError) as exc:
            raise fail(f"recipe {recipe!r}: {exc}") from None
    if main_process:
        out.print_json(json.dumps(summary, default=str))


# ------------------------------------------------------------------------------- listings


@app.command("tasks")
def tasks_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tasks with their splits."""
    reg = registry()
    rows = [{"task": t.name, "modality": t.modality, "verify_iter": t.default_verify_iter,
             "splits": [{"name": s.name, "distribution": s.distribution, "aliases": list(s.aliases),
                         "description": s.description} for s in t.splits],
             "metrics": [m.name for m in t.metrics], "description": t.description}
            for t in sorted(reg.tasks.values(), key=lambda t: t.name)]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="tasks")
    for col in ("task", "modality", "splits", "verify_iter", "description"):
        table.add_column(col)
    for r in rows:
        splits = "\n".join(f"{s['name']} ({s['distribution']})" + (f" = {', '.join(s['aliases'])}"
                           if s["aliases"] else "") for s in r["splits"])
        table.add_row(r["task"], r["modality"], splits, str(r["verify_iter"]), r["description"])
    out.print(table)


@app.command("plugins")
def plugins_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List plugins: module, distribution, version, the hooks each implements, what it registered (tasks,
    backends, models, recipes, boards; observers and CLI commands as hooks), and what was disabled and why."""
    reg = registry()
    rows = [{"plugin": p.name, "module": p.module, "distribution": p.distribution, "version": p.version,
             "hooks": p.hooks, "registered": p.registered, "status": "disabled" if p.disabled else "ok",
             "error": p.error} for p in reg.plugins]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title="plugins")
    for col in ("plugin", "module", "distribution", "registered", "status"):
        table.add_column(col)
    for r in rows:
        what = [f"{k}: {', '.join(v)}" for k, v in r["registered"].items()]
        what += [{"harness_run_finished": "run observer", "harness_cli": "CLI commands"}[h] for h in r["hooks"]
                 if h in ("harness_run_finished", "harness_cli")]
        status = escape(r["status"] + (f": {r['error']}" if r["error"] else ""))
        dist = f"{r['distribution']} {r['version']}" if r["distribution"] else "(--plugin)"
        table.add_row(escape(r["plugin"]), escape(r["module"]), escape(dist), escape("; ".join(what)) or "-",
                      f"[red]{status}[/]" if r["error"] else status)
    out.print(table)


@models_app.callback()
def models_cmd(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List model aliases and backends (subcommands: see --help)."""
    if ctx.invoked_subcommand is not None:
        return
    reg = registry()
    aliases = [{"name": a.name, "backend": a.backend, "args": dict(a.model_args), "description": a.description}
               for a in sorted(reg.models.values(), key=lambda a: a.name)]
    backends = [{"name": b.name, "description": b.description, "extra": b.extra}
                for b in sorted(reg.backends.values(), key=lambda b: b.name)]
    if as_json:
        out.print_json(json.dumps({"aliases": aliases, "backends": backends}, default=str))
        return
    table = Table(title="model aliases")
    for col in ("alias", "backend", "arguments", "description"):
        table.add_column(col)
    for a in aliases:
        table.add_row(a["name"], a["backend"], ", ".join(f"{k}={v}" for k, v in a["args"].items()),
                      a["description"])
    out.print(table)
    table = Table(title="backends (usable as --model NAME --model-args ...)")
    for col in ("backend", "extra", "description"):
        table.add_column(col)
    for b in backends:
        table.add_row(b["name"], b["extra"] or "-", b["description"])
    out.print(table)


_INSTALLED: set[str] = set()  # plugins whose commands are on the app already (main() may run many times)


@app.callback()
def _root(
    plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", help="Load a plugin module that is not installed (repeatable; any position).")] = None,
) -> None:
    """Evaluate and post-train models on generalisation tasks (GeneralPoints, V-IRL)."""


def _install_plugin_commands(reg: Registry) -> None:
    """Let plugins add their commands; each plugin once per process, since typer apps are module-level."""
    if "harness.cli_boards" not in _INSTALLED:
        _INSTALLED.add("harness.cli_boards")
        from harness.cli_boards import register as register_boards

        register_boards(app, GROUPS)
    if reg.manager is None:
        return
    for impl in reg.manager.hook.harness_cli.get_hookimpls():
        if impl.plugin_name in _INSTALLED:
            continue
        _INSTALLED.add(impl.plugin_name)
        try:
            impl.function(app=app, groups=GROUPS)
        except Exception as exc:
            warnings.warn(f"plugin {impl.plugin_name!r}: harness_cli failed: {exc!r}", PluginWarning,
                          stacklevel=1)


def _plugins_from_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Take every ``--plugin X``/``--plugin=X`` out of argv (they are global, valid anywhere)."""
    mods, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--plugin" and i + 1 < len(argv):
            mods.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--plugin="):
            mods.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return mods, rest


def main(argv: list[str] | None = None) -> None:
    global _REGISTRY, _LENIENT
    warnings.showwarning = _show_warning
    args = list(sys.argv[1:] if argv is None else argv)
    mods, args = _plugins_from_argv(args)
    _EXTRA_PLUGINS[:] = mods
    _REGISTRY = None
    _LENIENT = not args or args[0] in ("plugins", "--help", "-h", "--version") or "--help" in args
    try:
        reg = registry()
    except PluginError as exc:
        raise SystemExit(_exit_with(str(exc))) from None
    _install_plugin_commands(reg)
    try:
        app(args=args, prog_name="harness", standalone_mode=True)
    except PluginError as exc:
        raise SystemExit(_exit_with(str(exc))) from None


def _exit_with(message: str) -> int:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return 2


if __name__ == "__main__":
    main()
