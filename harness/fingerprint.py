"""What a model is, for the run identity: the content hash of a local checkpoint directory.

A run's identity must change when its results can change. A model named by a path can change under the
same path (``harness train --out D`` twice writes new weights into D), so a run of a local checkpoint is
identified by a SHA-256 over every file in it (name, size and content; hidden files and the harness's
own ``harness-training.json``, which is rewritten by every evaluation, left out). Hashing a 15 GB
checkpoint takes seconds, so per-file digests are cached under ``$XDG_CACHE_HOME/harness/fingerprints``,
keyed by each file's (size, mtime, ctime, inode, device) as git's index is: a file written again gets a
new ctime and is hashed again.

Backends whose models are not plain directories say what their model is with ``BackendSpec.identify``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from harness import store
from harness.runner import TRAINING_INFO_FILE
from harness.types import BackendSpec

MAX_FILES = 100_000
_CHUNK = 1 << 20


class FingerprintError(ValueError):
    """A checkpoint directory that cannot be fingerprinted (unreadable, or absurdly many files)."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "fingerprints"


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or (name == TRAINING_INFO_FILE and Path(dirpath) == root):
                continue
            out.append(Path(dirpath) / name)
            if len(out) > MAX_FILES:
                raise FingerprintError(f"{root} holds more than {MAX_FILES} files; is it really a checkpoint?")
    return out


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_fingerprint(root: Path | str) -> str:
    """SHA-256 (hex) over the relative name, size and content digest of every file under ``root``."""
    root = Path(root).resolve()
    cache_file = _cache_dir() / (hashlib.sha256(str(root).encode()).hexdigest()[:32] + ".json")
    cached: dict[str, Any] = {}
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        data = orjson.loads(cache_file.read_bytes())
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            cached = data["files"]
    fresh: dict[str, list[Any]] = {}
    total = hashlib.sha256()
    try:
        for path in _files(root):
            rel = path.relative_to(root).as_posix()
            st = path.stat()
            key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
            hit = cached.get(rel)
            if isinstance(hit, list) and len(hit) == 6 and hit[:5] == key and isinstance(hit[5], str):
                digest = hit[5]
            else:
                digest = _digest(path)
            fresh[rel] = [*key, digest]
            total.update(store.dumps([rel, st.st_size, digest]))
    except OSError as exc:
        raise FingerprintError(f"cannot read checkpoint {root}: {exc.strerror or exc}") from None
    if fresh != cached:
        with contextlib.suppress(OSError):  # the cache is an optimisation: an unwritable one costs only time
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            store.write_json_atomic(cache_file, {"root": str(root), "files": fresh})
    return total.hexdigest()


def local_checkpoint_identity(model_args: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identity of a model given as a local directory in ``pretrained`` or ``model``: its content hash."""
    for key in ("pretrained", "model"):
        value = model_args.get(key)
        if isinstance(value, str) and value and Path(value).expanduser().is_dir():
            return {"checkpoint_sha256": checkpoint_fingerprint(Path(value).expanduser())}
    return None


def identify_model(spec: BackendSpec, model_args: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the backend's model is, for :attr:`harness.runner.EvalConfig.model_identity`: the backend's own
    ``identify`` hook when it has one, else the content hash of a local checkpoint directory, else None
    (a remote model is known by its name only)."""
    if spec.identify is not None:
        ident = spec.identify(model_args)
        return dict(ident) if ident else None
    return local_checkpoint_identity(model_args)


__all__ = ["FingerprintError", "checkpoint_fingerprint", "identify_model", "local_checkpoint_identity"]
