"""The CLI's two consoles and its one way to fail: ``out`` (stdout) for results, ``console`` (stderr) for
messages and progress. Every untrusted string printed through them goes through :mod:`harness.escaping`."""

from __future__ import annotations

import typer
from rich.console import Console

from harness.escaping import markup

console = Console(stderr=True)
out = Console()

# Exit codes of every command (README: "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1  # a run ended with failed episodes, or an error stopped it (status "failed")
EXIT_USAGE = 2  # bad arguments or names, a run that may not be continued, a busy run directory
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (status "interrupted")


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` (escaped) to stderr; ``raise fail(...)`` ends the command with ``code``."""
    console.print(f"[bold red]error:[/] {markup(message)}", highlight=False)
    return typer.Exit(code)


__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "console", "fail", "out"]
