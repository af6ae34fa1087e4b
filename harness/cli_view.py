"""``harness view`` (a run's episodes as one HTML page) and ``harness show-obs`` (what a model is shown for
one episode), added to the app ``harness.cli`` creates."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness import store
from harness.console import console, fail, out
from harness.escaping import markup, printable

DEFAULT_RUNS = Path("runs")


def resolve_run(ref: str, runs_root: Path) -> Path:
    """A run directory from a path, or from a run id (any unique part of one) under ``runs_root``."""
    path = Path(ref)
    if (path / "run.json").is_file():
        return path
    if not runs_root.is_dir():
        raise fail(f"{ref!r} is not a run directory, and there is no runs root {runs_root} to look it up in "
                   "(pass --runs ROOT)")
    from harness.cli_boards import find_run

    return Path(find_run(runs_root, ref).run_dir)


def serve(page: bytes, port: int, ready: Callable[[str], None] | None = None) -> None:
    """Serve ``page`` at http://127.0.0.1:PORT/ (0: a free port) until interrupted; nothing else is served."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API
            if self.path.split("?", 1)[0] not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the page is all there is
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler) as httpd:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        (ready or (lambda u: None))(url)
        httpd.serve_forever()


def view_cmd(
    runs: Annotated[list[str], typer.Argument(help="Run directories or run ids (any unique part of one).")],
    runs_root: Annotated[Path, typer.Option("--runs", "--output", "-o", help="Runs root to look run ids up in.")]
    = DEFAULT_RUNS,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="The page to write (default: <run>/view.html, or ./harness-view.html for several runs).")]
    = None,
    limit: Annotated[int, typer.Option(min=1, help="Episodes shown per run (the first N by index).")] = 1000,
    max_image_side: Annotated[int, typer.Option(min=16, max=8192, help="Long side of images in the page, pixels.")]
    = 768,
    serve_page: Annotated[bool, typer.Option("--serve", help="Also serve the page on 127.0.0.1 until Ctrl-C.")]
    = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for --serve (0: a free one).")] = 0,
) -> None:
    """Write one self-contained HTML page of runs' episodes: each conversation turn by turn, as the model
    saw it (images inline), with rewards, verdicts and feedback; filters by outcome, split and reward."""
    from harness.cli import registry
    from harness.view import ViewError, build, load_run, task_resolver

    dirs = [resolve_run(r, runs_root) for r in runs]
    try:
        data = [load_run(d) for d in dirs]
    except ViewError as exc:
        raise fail(str(exc)) from None
    dest = out_file or (dirs[0] / "view.html" if len(dirs) == 1 else Path("harness-view.html"))
    with Progress(TextColumn("[bold]view[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True,
                  disable=os.environ.get("HARNESS_NO_PROGRESS") == "1") as bar:
        job = bar.add_task("view", total=sum(min(limit, len(d.samples)) for d in data))
        page = build(data, task_resolver(registry()), limit=limit, max_side=max_image_side,
                     progress=lambda done, total: bar.update(job, completed=done))
    try:
        store.write_text_atomic(dest, page)
    except OSError as exc:
        raise fail(f"cannot write {dest}: {exc.strerror or exc}") from None
    shown = sum(min(limit, len(d.samples)) for d in data)
    out.print(markup(f"wrote {dest} ({shown} episodes, {len(page.encode()) / 1e6:.1f} MB); open it in a browser"),
              highlight=False)
    if serve_page:
        def ready(url: str) -> None:
            out.print(markup(f"serving {url} (Ctrl-C to stop)"), highlight=False)
            sys.stdout.flush()

        with contextlib.suppress(KeyboardInterrupt):
            serve(page.encode("utf-8"), port, ready)


def show_obs_cmd(
    task: Annotated[str, typer.Option("--task", "-t", help="Task name (see `harness tasks`).")],
    split: Annotated[str, typer.Option("--split", "-s", help="Split name.")] = "id",
    index_: Annotated[int, typer.Option("--index", "-i", min=0, max=store.MAX_EPISODE_INDEX - 1,
                                        help="Episode number, as in a run (0-based).")] = 0,
    seed: Annotated[int, typer.Option(help="The run's --seed.")] = 0,
    task_args: Annotated[str | None, typer.Option(help="Task arguments, as for eval.")] = None,
    data: Annotated[Path | None, typer.Option(help="A task data file, as for eval.")] = None,
    verify_iter: Annotated[int | None, typer.Option("--verify-iter", min=1, help="As for eval.")] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Image file to write (default obs_<task>_<split>_<index>.png; -2, -3... for more).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print text, seed and image paths as JSON.")] = False,
) -> None:
    """Show what a model is shown first in one episode: prints the prompt and writes the observation image,
    through the same env and episode seed ``harness eval`` uses."""
    from harness.cli import parse_kv, registry
    from harness.plugins import PluginError
    from harness.runner import episode_seed

    reg = registry()
    try:
        spec = reg.task(task)
        split_name = spec.split(split).name
    except (PluginError, KeyError) as exc:
        raise fail(str(exc).strip("'\"")) from None
    targs = parse_kv(task_args, "--task-args")
    if data is not None:
        targs["data"] = str(data)
    ep_seed = episode_seed(spec.name, split_name, seed, index_)
    try:
        env = spec.new_env(split_name, verify_iter, **targs)
        obs, _ = env.reset(seed=ep_seed, options={"episode_index": index_})
    except Exception as exc:
        raise fail(f"task {task!r}: {type(exc).__name__}: {exc}") from None
    base = out_file or Path(f"obs_{spec.name}_{split_name}_{index_}.png")
    paths = [base if k == 0 else base.with_name(f"{base.stem}-{k + 1}{base.suffix}") for k in range(len(obs.images))]
    for im, path in zip(obs.images, paths, strict=True):
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
        try:
            with store.atomic_path(path) as tmp:
                (im.convert("RGB") if fmt == "JPEG" else im).save(tmp, format=fmt)
        except (OSError, ValueError) as exc:
            raise fail(f"cannot write {path}: {exc}") from None
    if as_json:
        out.print_json(json.dumps({"task": spec.name, "split": split_name, "index": index_, "episode_seed": ep_seed,
                                   "system": obs.system, "text": obs.text,
                                   "images": [{"path": str(p), "size": list(im.size), "mode": im.mode}
                                              for p, im in zip(paths, obs.images, strict=True)]}))
        return
    if obs.system:
        sys.stdout.write(f"[system]\n{printable(obs.system)}\n[user]\n")
    sys.stdout.write(printable(obs.text) + ("" if obs.text.endswith("\n") else "\n"))
    sys.stdout.flush()
    for im, path in zip(obs.images, paths, strict=True):
        console.print(markup(f"wrote {path} ({im.size[0]}x{im.size[1]} {im.mode})"), highlight=False)
    if not obs.images:
        console.print(markup(f"{spec.name} shows no image ({spec.modality} task)"), style="dim", highlight=False)
    console.print(markup(f"episode {index_} of {spec.name}/{split_name}, seed {seed}: episode seed {ep_seed}"),
                  style="dim", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("view")(view_cmd)
    app.command("show-obs")(show_obs_cmd)


__all__ = ["register", "resolve_run", "serve"]
