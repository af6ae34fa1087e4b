"""The ``harness`` command line (typer + rich).

Plugins are loaded before the command line is parsed, so plugins can add commands through the
``harness_cli`` hook; ``--plugin module.path`` (repeatable) is therefore read from argv up front too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.checks import ConfigError
from harness.console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, console, fail, out, quiet_libraries
from harness.escaping import markup
from harness.plugins import PluginError, PluginWarning, Registry, load_registry
from harness.runlock import RunLockedError
from harness.runner import (
    EvalConfig,
    RunExistsError,
    RunFailed,
    RunInterrupted,
    Runner,
    format_metric,
    run_dir_for,
)
from harness.store import redact
from harness.types import GenParams, MetricSpec, RunResult

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


def merge_kv(values: list[str] | None, what: str) -> dict[str, Any]:
    """Repeated ``k=v`` options as one mapping; a key given twice with different values is refused (one of
    them would otherwise be dropped without a word)."""
    merged: dict[str, Any] = {}
    for value in values or ():
        for key, v in parse_kv(value, what).items():
            if key in merged and merged[key] != v:
                raise fail(f"{what}: {key!r} is given twice ({merged[key]!r} and {v!r}); give it once")
            merged[key] = v
    return merged


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
    console.print(f"[yellow]{markup(label)}:[/] {markup(str(message))}", highlight=False)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a job scheduler, ``kill``) ends a run like Ctrl-C: recorded as interrupted, not lost."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------------------ eval

VERBOSE_HELP = "Show the libraries' own progress bars and warnings (transformers, datasets, the hub)."


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Alias, backend name, or local checkpoint dir.")],
    task: Annotated[list[str] | None, typer.Option(
        "--task", "-t", help="Task name; several comma-separated or repeated (see `harness tasks`).")] = None,
    split: Annotated[list[str] | None, typer.Option(
        "--split", "-s", help="Split name; several comma-separated or repeated, or 'all' (default: id).")] = None,
    board: Annotated[str | None, typer.Option(
        help="Run every task/split a leaderboard's columns need (instead of --task/--split).")] = None,
    episodes: Annotated[int, typer.Option("--episodes", "--limit", "-n", min=1, help="Episodes per run.")]
    = 100,
    seed: Annotated[int, typer.Option(help="Episode seed: the same seed plays the same episodes.")] = 0,
    verify_iter: Annotated[int | None, typer.Option(
        "--verify-iter", min=1, help="Answers allowed per episode/step (default: the task's).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Runs root directory.")] = Path("runs"),
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run; retries failed episodes.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Discard an existing run with this configuration.")] = False,
    model_args: Annotated[list[str] | None, typer.Option(
        help="Backend arguments: k=v,k=v or a JSON object (repeatable).")] = None,
    gen_args: Annotated[list[str] | None, typer.Option(
        help="Generation: temperature, max_tokens, top_p, seed (k=v,...; repeatable).")] = None,
    task_args: Annotated[list[str] | None, typer.Option(
        help="Task arguments, e.g. target=24,image_size=896; TASK:k=v for one task only (repeatable).")] = None,
    data: Annotated[Path | None, typer.Option(help="A task data file (e.g. the paper's V-IRL routes).")]
    = None,
    temperature: Annotated[float | None, typer.Option(help="Shortcut for --gen-args temperature=.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Shortcut for --gen-args max_tokens=.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help="Live episodes per batched call (default: the backend's).")] = None,
    max_connections: Annotated[int, typer.Option(min=1, help="Concurrent episodes for API backends.")] = 16,
    save_images: Annotated[bool, typer.Option(
        "--save-images", help="Store each distinct image shown, once, as a PNG under <run>/images/.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record (several: a list) as JSON.")]
    = False,
    verbose: Annotated[bool, typer.Option("--verbose", help=VERBOSE_HELP)] = False,
) -> None:
    """Evaluate a model on task splits and record one run per task and split, loading the model once.

    Exit status: 0 every run complete; 1 a run failed (episodes failed, or an error stopped it); 2 bad
    arguments or a run that may not be continued; 130 interrupted. With several runs, the worst of theirs
    (130 over 2 over 1 over 0)."""
    from harness import distributed
    from harness.fingerprint import FingerprintError
    from harness.plan import PlanError, board_cells, cells, names, worst_exit
    from harness.plan import task_args as scoped_task_args

    reg = registry()
    try:
        backend_spec, alias_args, how = reg.resolve_model(model)
        if board is not None:
            if task or split:
                raise PlanError("--board picks the tasks and splits itself; leave out --task and --split")
            from harness import leaderboard as lb

            board_spec = lb.load_board(lb.find_board(board))
            plan = board_cells(reg.task, board_spec.columns)
        else:
            plan = cells(reg.task, names(task), names(split) or ["id"])
    except (PluginError, KeyError, PlanError) as exc:
        raise fail(str(exc).strip("'\"")) from None
    except ValueError as exc:  # a board file that is not a board
        raise fail(str(exc)) from None
    margs = _normalised({**alias_args, **merge_kv(model_args, "--model-args")})
    model_name = _display_name(model, how, margs)
    gen = merge_kv(gen_args, "--gen-args")
    if temperature is not None:
        gen["temperature"] = temperature
    if max_tokens is not None:
        gen["max_tokens"] = max_tokens
    try:
        params = GenParams(**gen)
    except TypeError as exc:
        raise fail(f"--gen-args: {exc}; valid keys: temperature, max_tokens, top_p, seed") from None
    except ValueError as exc:
        raise fail(f"--gen-args: {exc}") from None
    task_names = list(dict.fromkeys(c.task.name for c in plan))
    try:
        targs = scoped_task_args(task_args, task_names, parse_kv)
    except PlanError as exc:
        raise fail(str(exc)) from None
    if data is not None:
        for t in task_names:
            targs[t].setdefault("data", str(data))
    # Everything is checked before a backend starts or a run directory exists.
    try:
        identity = _identify(backend_spec, margs)
        cfgs = [(c.task, EvalConfig(
            task=c.task.name, split=c.split, model=model_name, backend=backend_spec.name, model_args=margs,
            gen=params, episodes=episodes, seed=seed, verify_iter=verify_iter, task_args=targs[c.task.name],
            batch_size=batch_size or backend_spec.default_batch_size, max_connections=max_connections,
            model_identity=identity, task_version=c.task.version, plugins=reg.provenance(c.task.name,
                                                                                          backend_spec.name),
            save_images=save_images)) for c in plan]
    except (ConfigError, FingerprintError) as exc:
        raise fail(str(exc)) from None
    for spec, cfg in cfgs:
        try:
            spec.new_env(cfg.split, verify_iter, **cfg.task_args)
        except Exception as exc:  # the task's own check of its arguments and data files
            scope = f" (with several tasks, give it to one task: --task-args {spec.name}:k=v)" if len(
                task_names) > 1 else ""
            raise fail(f"task {spec.name!r} rejected its arguments (--task-args/--data): "
                       f"{type(exc).__name__}: {exc}{scope}") from None

    try:
        group = distributed.from_env()
    except Exception as exc:  # torch missing, or the launcher's rendezvous failed
        raise fail(f"WORLD_SIZE={distributed.world_size()} but the process group could not start: "
                   f"{type(exc).__name__}: {exc}") from None
    if group is not None and not group.main:  # one voice: the main process prints, the others only work
        console.quiet = out.quiet = True
    how_shown = f"backend {backend_spec.name}" if how == "backend" else f"{how}: backend {backend_spec.name}"
    console.print(f"[dim]model {markup(repr(model))} ({markup(how_shown)})"
                  + (f", {group.world} processes" if group else "") + "[/]", highlight=False)
    try:
        backend = backend_spec.factory(margs)
        group = group.for_backend(backend) if group else None
    except KeyboardInterrupt:
        raise fail("interrupted while the backend was starting; nothing was recorded", EXIT_INTERRUPTED) from None
    except ImportError as exc:
        hint = f" (install the extra: pip install 'harness[{backend_spec.extra}]')" if backend_spec.extra else ""
        raise fail(f"backend {backend_spec.name!r} could not start: {exc}{hint}") from None
    except Exception as exc:
        raise fail(f"backend {backend_spec.name!r} could not start: {exc}") from None
    results: list[tuple[Any, EvalConfig, RunResult | None, int]] = []
    try:
        with _sigterm_interrupts():
            for spec, cfg in cfgs:
                result, code = _run_one(reg, spec, backend, cfg, output, resume, overwrite, group)
                results.append((spec, cfg, result, code))
                if code == EXIT_INTERRUPTED:
                    break  # the user asked to stop: the runs not started yet are left alone
                if result is not None and not as_json and len(cfgs) == 1:
                    _print_result(spec.metrics, result.record, result.run_dir)
    finally:
        backend.close()
    records = [r.record for _, _, r, _ in results if r is not None]
    if as_json and records:
        out.print_json(json.dumps(records if len(cfgs) > 1 else records[0], default=str))
    elif len(cfgs) > 1:
        _print_combined(model_name, results, len(cfgs))
    if board is not None and records:
        _board_note(board_spec, output, records)
    code = worst_exit(c for _, _, _, c in results)
    if code:
        raise typer.Exit(code)


def install_hint(what: str, exc: ImportError, extra: str | None) -> str:
    """One line for a missing optional package: what needs it, which module, which extra brings it."""
    module = exc.name or str(exc)
    return f"{what} needs {module}, which is not installed" + (f": pip install 'harness[{extra}]'" if extra else "")


def _identify(backend_spec: Any, margs: Mapping[str, Any]) -> Any:
    from harness.fingerprint import identify_model

    try:
        return identify_model(backend_spec, margs)
    except ImportError as exc:  # the backend's identify hook needs its extra (the hub cache lookup)
        raise fail(install_hint(f"backend {backend_spec.name!r}", exc, backend_spec.extra)) from None


def _normalised(margs: dict[str, Any]) -> dict[str, Any]:
    """``pretrained`` naming a local directory, made absolute and normalised (``../ckpt`` and ``/abs/ckpt``
    are one model, and run ids never hold ``..``)."""
    from harness.plugins import local_path

    value = margs.get("pretrained")
    if isinstance(value, str) and value and Path(value).expanduser().is_dir():
        margs["pretrained"] = local_path(value)
    return margs


def _display_name(model: str, how: str, margs: Mapping[str, Any]) -> str:
    """A bare backend name says little (``openai``, ``hf``): name the run after what it serves. A local
    checkpoint is named by its absolute, normalised path."""
    served = margs.get("model") or margs.get("pretrained")
    if how.startswith("local checkpoint"):
        return str(margs["pretrained"])
    return f"{model}:{served}" if how == "backend" and served else model


def _run_one(reg: Registry, spec: Any, backend: Any, cfg: EvalConfig, output: Path, resume: bool,
             overwrite: bool, group: Any = None) -> tuple[RunResult | None, int]:
    """One run, its progress bar and its observers: (result, exit code). An error is printed here and
    ends only this run; the caller goes on with the next one (or stops, after an interrupt)."""
    run_dir = run_dir_for(output, cfg)
    stats = {"done": 0, "failed": 0, "solved": 0}
    label = f"[bold]{markup(cfg.task)}[/]/{markup(cfg.split)}" + (
        f" (process 0 of {group.world})" if group is not None else "")

    def notify(record: Mapping[str, Any], where: str) -> None:
        if group is None or group.main:  # observers hear of a run once, from the process that wrote it
            reg.notify_run_finished(record, where)

    # the bar is closed (its last state drawn) before any error is printed: nothing is drawn after an error
    try:
        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                      disable=os.environ.get("HARNESS_NO_PROGRESS") == "1" or console.quiet) as bar:
            job = bar.add_task("eval", total=cfg.episodes, rate="")
            last = [0.0]

            def progress(done: int, total: int, rec: Mapping[str, Any] | None) -> None:
                if rec is not None:  # failed episodes count as unsolved, as in the record's success_rate
                    stats["done"] += 1
                    stats["failed"] += rec.get("status") != "ok"
                    stats["solved"] += bool(rec.get("success"))
                now = time.perf_counter()
                if now - last[0] > 0.1 or done == total:  # redraw at most 10x/s: the bar must not cost time
                    last[0] = now
                    rate = f"success {100 * stats['solved'] / stats['done']:.1f}%" if stats["done"] else ""
                    if stats["failed"]:
                        rate += f" [red]{stats['failed']} failed[/]"
                    bar.update(job, completed=done, total=total, rate=rate)

            runner = Runner(spec, backend, cfg, run_dir, progress=progress)
            result = runner.run(resume=resume, overwrite=overwrite, group=group)
    except (RunExistsError, RunLockedError, ConfigError) as exc:
        return None, fail(str(exc)).exit_code
    except RunInterrupted as exc:
        notify(exc.result.record, exc.result.run_dir)
        return exc.result, fail(f"{exc.result.record['advice']} (run: {run_dir})", EXIT_INTERRUPTED).exit_code
    except RunFailed as exc:
        notify(exc.result.record, exc.result.run_dir)
        if os.environ.get("HARNESS_DEBUG"):
            raise exc.error from None
        return exc.result, fail(f"{exc}\n{exc.result.record['advice']} (run: {run_dir}; HARNESS_DEBUG=1 shows "
                                "the traceback)", EXIT_FAILED).exit_code
    except KeyboardInterrupt:  # before the run started writing: nothing recorded
        return None, fail("interrupted; nothing was recorded", EXIT_INTERRUPTED).exit_code
    except Exception as exc:  # the task rejected its arguments when the runner built its env
        if os.environ.get("HARNESS_DEBUG"):
            raise
        return None, fail(f"{type(exc).__name__}: {exc}").exit_code
    notify(result.record, result.run_dir)
    return result, 0 if result.record.get("status") == "complete" else EXIT_FAILED

def _print_combined(model_name: str, results: list[tuple[Any, EvalConfig, RunResult | None, int]],
                    planned: int) -> None:
    """One table for every run of the command: its success rate, other metrics, episodes and status."""
    from harness.metrics import CORE_METRICS
    from harness.types import MetricValue

    table = Table(title=markup(f"{model_name}: {len(results)} of {planned} runs"), title_justify="left")
    table.add_column("task/split", no_wrap=True)
    table.add_column("success [95% CI]", justify="right", no_wrap=True)
    table.add_column("episodes", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("task metrics (intervals: --json or runs show)")
    for spec, cfg, result, code in results:
        if result is None:
            table.add_row(markup(f"{cfg.task}/{cfg.split}"), "-", "-", "[red]not run[/]" if code else "-", "")
            continue
        rec = result.record
        kinds = {m.name: m.kind for m in (*CORE_METRICS, *spec.metrics)}
        metrics = {k: MetricValue(**v) for k, v in rec["metrics"].items()}
        sr = metrics.get("success_rate")
        others = ", ".join(f"{m.name} {_point(metrics[m.name], kinds[m.name] in ('rate', 'ratio'))}"
                           for m in spec.metrics if m.name in metrics)
        ok = f"{rec['episodes_ok']}/{rec['episodes']}" + (
            f" ([red]{rec['episodes_failed']} failed[/])" if rec["episodes_failed"] else "")
        status = rec["status"] if rec["status"] == "complete" else f"[red]{markup(rec['status'])}[/]"
        table.add_row(markup(f"{cfg.task}/{cfg.split}"), format_metric(sr, True) if sr else "-", ok, status,
                      markup(others))
    out.print(table)
    for _, _, result, _ in results:
        if result is not None:
            out.print(f"[dim]run: {markup(result.run_dir)}[/]", highlight=False)


def _point(m: Any, pct: bool) -> str:
    return format_metric(m, pct).split(" [")[0]


def _board_note(board: Any, output: Path, records: list[Mapping[str, Any]]) -> None:
    """Say where the runs land on the board, or that no row of it will show them."""
    from harness import index

    runs = [r for rec in records for r in index.query(output, run_id=str(rec.get("run_id")), do_sync=False)]
    rows = {row.label for run in runs for row in board.rows if row.matches(run)}
    if runs and not rows:
        console.print(markup(f"note: no row of board {board.name!r} matches model {runs[0].model!r}: the runs are "
                             f"recorded, but `harness leaderboard show {board.name}` will not list them"),
                      style="yellow", highlight=False)
    elif rows:
        console.print(markup(f"board {board.name!r}: these runs fill row(s) {', '.join(sorted(rows))}; see "
                             f"`harness leaderboard show {board.name} --runs {output}`"), style="dim", highlight=False)



def _print_result(task_metrics: tuple[MetricSpec, ...], record: Mapping[str, Any], run_dir: str) -> None:
    from harness.metrics import CORE_METRICS
    from harness.types import MetricValue

    kinds = {m.name: m.kind for m in (*CORE_METRICS, *task_metrics)}
    table = Table(title=markup(f"{record['task']} / {record['split']}  -  {record['model']['name']}"),
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value [95% CI]", justify="right")
    table.add_column("n", justify="right")
    for name, m in record["metrics"].items():
        mv = MetricValue(**m)
        table.add_row(markup(name), format_metric(mv, kinds.get(name) in ("rate", "ratio")), str(mv.n))
    out.print(table)
    tail = f"{record['episodes_ok']}/{record['episodes']} episodes ok"
    if record["episodes_failed"]:
        tail += (f", [red]{record['episodes_failed']} failed[/] (counted as unsolved in success_rate; rerun with "
                 "--resume to retry them)")
        for reason, n in list(record["failure_reasons"].items())[:5]:
            tail += f"\n  {n} x {markup(reason)}"
    out.print(f"{tail}; {record['wall_time_s']:.2f} s; run: {markup(run_dir)}", highlight=False)


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
    report_to: Annotated[str, typer.Option(
        "--report-to", help="Training curves: tensorboard (under the training folder), wandb, both "
        "(comma-separated) or none.")] = "tensorboard",
    verbose: Annotated[bool, typer.Option("--verbose", help=VERBOSE_HELP)] = False,
) -> None:
    """Post-train a local model with a recipe; evaluate every checkpoint on ID and OOD splits."""
    from harness import tracking
    from harness.fingerprint import FingerprintError
    from harness.training import default_out_dir, make_evaluator
    from harness.types import MetricValue, TrainJob

    try:
        trackers_wanted = tracking.parse_report_to(report_to)
    except tracking.TrackingError as exc:
        raise fail(str(exc)) from None

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
    margs = _normalised({**alias_args, **parse_kv(model_args, "--model-args")})
    if "pretrained" not in margs:
        raise fail(f"{model!r} is not a local checkpoint (backend {backend_spec.name}); training needs one")
    rargs = parse_kv(recipe_args, "--recipe-args")
    try:
        base_identity = _identify(backend_spec, margs)
    except (FingerprintError, ConfigError) as exc:
        raise fail(str(exc)) from None
    out_dir = ckpt_dir or default_out_dir(output, recipe=recipe, task=task, split=train_split, model_args=margs,
                                          model_identity=base_identity, seed=seed, steps=steps, budget=budget,
                                          recipe_args=rargs, verify_iter=verify_iter)

    def show(rec: Mapping[str, Any]) -> None:
        m = rec["metrics"]["success_rate"]
        step = (rec.get("training") or {}).get("step")
        console.print(markup(f"checkpoint step {step}: {rec['task']}/{rec['split']} success "
                             f"{format_metric(MetricValue(**m), True)} ({rec['status']})"), style="dim",
                      highlight=False)

    evaluate = make_evaluator(reg, task=spec, backend_name=backend_spec.name, model_args=margs,
                              runs_root=output, splits=splits, episodes=eval_episodes, seed=seed,
                              verify_iter=verify_iter, gen=GenParams(max_tokens=max_tokens),
                              batch_size=batch_size, on_result=show)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun / accelerate launch
    by_flops = steps is None and budget is not None  # neither: the recipe's own step count (e.g. a preset)
    try:  # before the model loads: a missing package is a one-line error, not a lost training
        tracking.check_installed(trackers_wanted)
    except tracking.TrackingError as exc:
        raise fail(str(exc)) from None
    trackers = tracking.Trackers(trackers_wanted if main_process else [], out_dir, name=Path(out_dir).name, config={
        "recipe": recipe, "model": model, "task": task, "split": train_split, "steps": steps, "budget": budget,
        "seed": seed, **rargs})
    if main_process and trackers.tensorboard_dir is not None:
        console.print(f"[dim]training curves: tensorboard --logdir {markup(trackers.tensorboard_dir)}[/]",
                      highlight=False)

    def on_step(s: Mapping[str, Any]) -> None:
        trackers.log(s)
        done = min(float(s["flops"]), float(budget or 0)) if by_flops else s["step"]
        numbers = tracking.scalars_of(s)  # whatever the recipe reports; the bar shows the headline ones
        shown = [k for k in _BAR_STATS if k in numbers] or [k for k in numbers if k not in (
            "flops", "lr", "tokens_per_s", "step_s")][:3]
        bar.update(bar_id, completed=done, stats=markup(" ".join(f"{k} {numbers[k]:.3g}" for k in shown)))

    job = TrainJob(recipe=recipe, model=model, model_args=margs, task=spec, split=train_split,
                   out_dir=str(out_dir), evaluate=evaluate, seed=seed, steps=steps, budget_flops=budget,
                   verify_iter=verify_iter, eval_episodes=eval_episodes, recipe_args=rargs, on_step=on_step)
    try:  # the bar is closed before any error is printed
        with Progress(TextColumn(f"[bold]{markup(recipe)}[/] {markup(task)}/{markup(train_split)}"), BarColumn(),
                      MofNCompleteColumn()
                      if not by_flops else TextColumn("{task.completed:.3g}/{task.total:.3g} FLOPs"),
                      TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=console,
                      disable=not main_process or os.environ.get("HARNESS_NO_PROGRESS") == "1") as bar, \
                _sigterm_interrupts():
            bar_id = bar.add_task("train", total=steps if steps is not None else budget, stats="")
            summary = recipe_spec.run(job)
    except RunInterrupted as exc:
        raise fail(f"interrupted during a checkpoint evaluation: {exc.result.record['advice']}",
                   EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        raise fail(f"training interrupted; checkpoints saved so far are in {out_dir}", EXIT_INTERRUPTED) from None
    except RunFailed as exc:
        raise fail(f"a checkpoint evaluation failed: {exc}\n{exc.result.record['advice']}", EXIT_FAILED) from None
    except ImportError as exc:
        raise fail(install_hint(f"recipe {recipe!r}", exc, recipe_spec.extra)) from None
    except (ValueError, FileNotFoundError) as exc:
        raise fail(f"recipe {recipe!r}: {exc}") from None
    finally:
        trackers.close()
    if main_process:
        out.print_json(json.dumps(summary, default=str))


_BAR_STATS = ("loss", "reward", "success")  # shown in the training bar when a recipe reports them


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
        table.add_row(*map(markup, (r["task"], r["modality"], splits, str(r["verify_iter"]), r["description"])))
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
        status = markup(r["status"] + (f": {r['error']}" if r["error"] else ""))
        dist = f"{r['distribution']} {r['version']}" if r["distribution"] else "(--plugin)"
        table.add_row(markup(r["plugin"]), markup(r["module"]), markup(dist), markup("; ".join(what)) or "-",
                      f"[red]{status}[/]" if r["error"] else status)
    out.print(table)


@models_app.callback()
def models_cmd(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List model aliases and backends (subcommands: see --help)."""
    if ctx.invoked_subcommand is not None:
        return
    reg = registry()
    aliases = [{"name": a.name, "backend": a.backend, "args": redact(a.model_args), "description": a.description}
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
        args = ", ".join(f"{k}={v}" for k, v in a["args"].items())
        table.add_row(markup(a["name"]), markup(a["backend"]), markup(args), markup(a["description"]))
    out.print(table)
    table = Table(title="backends (usable as --model NAME --model-args ...)")
    for col in ("backend", "extra", "description"):
        table.add_column(col)
    for b in backends:
        table.add_row(markup(b["name"]), markup(b["extra"] or "-"), markup(b["description"]))
    out.print(table)


_INSTALLED: set[str] = set()  # plugins whose commands are on the app already (main() may run many times)


def _print_version(value: bool) -> None:
    if value:
        from harness import __version__

        out.print(f"harness {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", help="Load a plugin module that is not installed (repeatable; any position).")] = None,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the harness version and exit.")] = False,
) -> None:
    """Evaluate and post-train models on generalisation tasks (GeneralPoints, V-IRL)."""


def _install_plugin_commands(reg: Registry) -> None:
    """Let plugins add their commands; each plugin once per process, since typer apps are module-level."""
    if "harness.cli_boards" not in _INSTALLED:
        _INSTALLED.add("harness.cli_boards")
        from harness.cli_boards import register as register_boards

        register_boards(app, GROUPS)
        from harness.cli_view import register as register_view

        register_view(app)
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


def _repeated_option(args: list[str]) -> str | None:
    """Why ``args`` give a single-valued option twice with different values (click would silently keep the
    last), or None. Options that take several values (``--task``, ``--split``, ...) are declared so."""
    command: Any = typer.main.get_command(app)
    seen: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            break
        if hasattr(command, "get_command") and not tok.startswith("-"):  # a group: the next word is a command
            sub = command.get_command(None, tok)
            if sub is None:
                return None  # click reports the unknown command
            command, seen, i = sub, {}, i + 1
            continue
        name, eq, inline = tok.partition("=") if tok.startswith("--") else (tok[:2], "", tok[2:])
        param = next((p for p in command.params if p.param_type_name == "option"
                      and name in (*p.opts, *p.secondary_opts)), None) if tok.startswith("-") else None
        if param is None:
            i += 1
            continue
        takes_value = not param.is_flag and not param.count
        value = tok if not takes_value else (inline if (eq or inline) else (args[i + 1] if i + 1 < len(args) else ""))
        i += 1 if (not takes_value or eq or inline) else 2
        if param.multiple or param.count:
            continue
        values = seen.setdefault(param.opts[0], [])
        values.append(value)
        if len(set(values)) > 1:
            shown = ", ".join(repr(v) for v in values)
            return (f"{param.opts[0]} was given {len(values)} times ({shown}) but takes one value; give it once"
                    + (" (several tasks or splits: comma-separate them or repeat --task/--split)"
                       if param.opts[0] == "--model" else ""))
    return None


def main(argv: list[str] | None = None) -> None:
    global _REGISTRY, _LENIENT
    warnings.showwarning = _show_warning
    args = list(sys.argv[1:] if argv is None else argv)
    mods, args = _plugins_from_argv(args)
    _EXTRA_PLUGINS[:] = mods
    _REGISTRY = None
    _LENIENT = not args or args[0] in ("plugins", "--help", "-h", "--version") or "--help" in args
    if "--verbose" not in args:
        quiet_libraries()
    try:
        reg = registry()
    except PluginError as exc:
        raise SystemExit(_exit_with(str(exc))) from None
    _install_plugin_commands(reg)
    if not _LENIENT and (why := _repeated_option(args)):
        raise SystemExit(_exit_with(why))
    try:
        app(args=args, prog_name="harness", standalone_mode=True)
    except PluginError as exc:
        raise SystemExit(_exit_with(str(exc))) from None


def _exit_with(message: str) -> int:
    fail(message)
    return EXIT_USAGE


if __name__ == "__main__":
    main()
