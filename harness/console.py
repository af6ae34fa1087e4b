"""The CLI's two consoles and its one way to fail: ``out`` (stdout) for results, ``console`` (stderr) for
messages and progress. Every untrusted string printed through them goes through :mod:`harness.escaping`."""

from __future__ import annotations

import logging
import os
import sys

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


# Libraries' own progress bars and chatter (transformers' "Loading weights", hub downloads, datasets' map
# bars), off in normal output; `--verbose` leaves them as the libraries set them.
_QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error", "DATASETS_VERBOSITY": "error",
              "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def quiet_libraries() -> None:
    """Silence library noise: environment defaults for libraries not imported yet (a variable the user set
    wins), and the same settings applied to those already imported."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    bars_off = os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    if bars_off and sys.modules.get("huggingface_hub") is not None:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    for name, env in (("transformers", "TRANSFORMERS_VERBOSITY"), ("datasets", "DATASETS_VERBOSITY")):
        lib_logging = sys.modules.get(f"{name}.utils.logging")  # only libraries already imported
        if lib_logging is None:
            continue
        if bars_off:
            lib_logging.disable_progress_bar()
        if os.environ[env] == "error":
            lib_logging.set_verbosity(logging.ERROR)


__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "console", "fail", "out", "quiet_libraries"]
