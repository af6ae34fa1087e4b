"""Registers the ``hf`` backend and the ``harness models make-tiny`` command.

Nothing heavy is imported here: torch and transformers load only when the backend is created or a tiny
model is built, so ``harness plugins`` stays fast and works without the ``hf`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.hookspecs import hookimpl
from harness.types import Backend, BackendSpec

TINY_ARCHS = ("llama", "qwen2", "qwen2-vl", "qwen2.5-vl", "llava", "mllama")  # = harness_plugins.hf.tiny.ARCHS


def _factory(args: Mapping[str, Any]) -> Backend:
    from harness_plugins.hf.backend import create

    return create(args)


def _identify(args: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's content hash (a local directory, or a hub id's snapshot in the local cache)."""
    from harness.fingerprint import checkpoint_fingerprint
    from harness_plugins.hf.backend import CheckpointNotFoundError, resolve_checkpoint

    pretrained = args.get("pretrained") or args.get("model")
    if not isinstance(pretrained, str) or not pretrained:
        return None
    try:
        path = resolve_checkpoint(pretrained, revision=args.get("revision"), cache_dir=args.get("cache_dir"))
    except CheckpointNotFoundError:  # the backend's own start reports where it looked
        return None
    return {"checkpoint_sha256": checkpoint_fingerprint(path)}


@hookimpl
def harness_backends() -> list[BackendSpec]:
    return [BackendSpec(
        "hf",
        "a local transformers checkpoint (directory or cached hub id), batched generate; "
        "args: pretrained, dtype, device, max_batch_size, max_image_size, trust_remote_code",
        _factory, default_batch_size=16, extra="hf", identify=_identify)]


@hookimpl
def harness_cli(app: Any, groups: Mapping[str, Any]) -> None:
    models = groups.get("models")
    if models is None:
        return

    @models.command("make-tiny")
    def make_tiny_cmd(
        arch: Annotated[str, typer.Argument(help=f"Architecture: {', '.join(TINY_ARCHS)}.")],
        out_dir: Annotated[Path, typer.Argument(help="Directory to write the checkpoint to.")],
        seed: Annotated[int, typer.Option(help="Seed for the random weights and tokenizer corpus.")] = 0,
    ) -> None:
        """Build a tiny randomly initialised model of a real architecture (offline), for tests and demos."""
        if arch not in TINY_ARCHS:
            typer.echo(f"error: unknown architecture {arch!r}; choose one of: {', '.join(TINY_ARCHS)}", err=True)
            raise typer.Exit(2)
        try:
            from harness_plugins.hf.tiny import make_tiny

            path = make_tiny(arch, out_dir, seed=seed)
        except ImportError as exc:
            typer.echo(f"error: make-tiny needs {exc.name or exc}, which is not installed: "
                       "pip install 'harness[hf]'", err=True)
            raise typer.Exit(2) from None
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        typer.echo(f"wrote tiny {arch} ({size / 1e6:.1f} MB, random weights) to {path}\n"
                   f"use it: harness eval --model {path} --task ...")
