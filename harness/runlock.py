"""One writer per run directory.

A run holds an exclusive ``flock`` on ``<run_dir>/.lock`` for as long as it writes there. The kernel drops
the lock when the process ends, however it ends (SIGKILL included), so a killed run never leaves a stale
lock behind, and "``run.json`` says running but nobody holds the lock" means the run was killed
(:func:`is_live` tells the two apart). A second writer gets :class:`RunLockedError` naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from types import TracebackType

import orjson

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs are then not protected
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
_ATTEMPTS = 50  # a reader probing the lock (is_live) holds it for microseconds; retry past that


class RunLockedError(Exception):
    """Another process is writing this run directory."""


def _holder(fd: int) -> str:
    try:
        info = orjson.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"pid {int(info['pid'])} on {info['host']}, since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(float(info['since'])))}")
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError):
        return "another process"


class RunLock:
    """``with RunLock(run_dir):`` - exclusive, non-blocking; raises :class:`RunLockedError` when held."""

    def __init__(self, run_dir: Path | str) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            for attempt in range(_ATTEMPTS):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == _ATTEMPTS - 1:
                        who = _holder(fd)
                        os.close(fd)
                        raise RunLockedError(
                            f"{self.path.parent} is being written by {who}; two writers would lose each "
                            "other's episodes. Wait for it to finish or stop it, then rerun (with --resume "
                            "to continue from what it saved)") from None
                    time.sleep(0.01)
        info = orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def is_live(run_dir: Path | str) -> bool:
    """True while some process holds the run directory's lock (the run is really running)."""
    path = Path(run_dir) / LOCK_FILE
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also drops the probe's shared lock
    return False


__all__ = ["LOCK_FILE", "RunLock", "RunLockedError", "is_live"]
