"""Run records on disk.

A run directory holds ``samples.jsonl`` (one line per finished episode, appended and flushed the moment
the episode ends) and ``run.json`` (config, versions, metrics; written atomically at the end). A kill at
any moment loses at most the episodes in flight: a torn last line is dropped on resume, and the last
record per episode index wins, so a resumed run has exactly one record per episode.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import orjson

SCHEMA_VERSION = 1
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization|auth|credential)", re.I)
REDACTED = "***"


def redact(args: Mapping[str, Any]) -> dict[str, Any]:
    """Model arguments as they may be written down: anything that looks like a credential is masked."""
    return {k: (REDACTED if SECRET_KEY.search(str(k)) else v) for k, v in args.items()}


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:10]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[-60:] or "model"


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY, default=str)


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))
    os.replace(tmp, path)


def read_samples(path: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """Last record per episode index, and the number of unreadable lines skipped (a torn tail)."""
    records: dict[int, dict[str, Any]] = {}
    bad = 0
    if not path.exists():
        return records, 0
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                records[int(rec["index"])] = rec
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                bad += 1
    return records, bad


class SampleWriter:
    """Appends one JSON line per finished episode and flushes it to the OS at once (SIGKILL-safe)."""

    def __init__(self, path: Path, keep: Iterable[Mapping[str, Any]] | None = None) -> None:
        self.path = path
        if keep is not None:  # compact on resume: drop torn lines, superseded and failed records
            tmp = path.with_name(f".{path.name}.tmp")
            with tmp.open("wb") as f:
                for rec in keep:
                    f.write(dumps(rec) + b"\n")
            os.replace(tmp, path)
        self._f: BinaryIO = path.open("ab")

    def write(self, record: Mapping[str, Any]) -> None:
        self._f.write(dumps(record) + b"\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions(distributions: Iterable[str | None]) -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": sys.platform}
    for dist in {"harness", *[d for d in distributions if d]}:
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out
