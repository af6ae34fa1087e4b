"""Run records on disk.

A run directory holds ``samples.jsonl`` (one line per finished episode, appended and flushed the moment
the episode ends) and ``run.json`` (config, versions, metrics; written atomically at the end). A kill at
any moment loses at most the episodes in flight: a torn last line is dropped on resume, and the last
record per episode index wins, so a resumed run has exactly one record per episode.

Everything written goes through :func:`dumps`, which accepts any string a model or server can produce
(lone surrogates included), and every file a user could lose is replaced atomically (write a temporary
file beside it, fsync, rename), so a full disk or a kill leaves the previous version in place. Lines read
back from ``samples.jsonl`` are validated field by field (:func:`sample_problem`, each turn's ``shown``
included; records written before it existed stay valid); a line that is not a well-formed episode record is
never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import platform
import re
import subprocess
import sys
import threading
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from harness.escaping import short_repr

SCHEMA_VERSION = 1
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|authorization|auth|credential|cookie)", re.I)
REDACTED = "***"
INT64 = 2**63
MAX_EPISODE_INDEX = 10**9

_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^/?#@\s]+@", re.I)
_QUERY_SECRET = re.compile(
    r"([?&;](?:[^=&#\s]*(?:api[_-]?key|key|token|secret|password|passwd|signature|sig|auth|credential)"
    r"[^=&#\s]*)=)[^&#\s]*", re.I)
_BEARER = re.compile(r"\b((?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.I)
_SK = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")


def scrub_secrets(text: str) -> str:
    """``text`` with credential-shaped parts masked: URL userinfo (``https://user:pw@host``), secret query
    parameters (``?api_key=...``), bearer/basic tokens and ``sk-...`` keys."""
    text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _SK.sub(f"sk-{REDACTED}", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) else _redact_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    if isinstance(value, str):
        return scrub_secrets(value)
    return value


def redact(args: Mapping[str, Any]) -> dict[str, Any]:
    """Model arguments as they may be written down: at any depth, values under credential-like names are
    masked, and credentials inside strings (URL userinfo, secret query parameters, tokens) too."""
    return _redact_value(dict(args))


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(dumps(config, sort_keys=True)).hexdigest()[:10]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "-", text).strip("-")[-60:] or "model"


# ------------------------------------------------------------------------------------------- encoding


def _fix_str(s: str) -> str:
    """Lone surrogates (which UTF-8 cannot hold) become U+FFFD; valid surrogate pairs are joined."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _encodable(obj: Any) -> Any:
    """A copy of ``obj`` that orjson can always encode: strings fixed, integers beyond 64 bits as text,
    unknown objects as their ``str``."""
    if isinstance(obj, str):
        return _fix_str(obj)
    if isinstance(obj, bool) or obj is None or isinstance(obj, float):
        return obj
    if isinstance(obj, int):
        return obj if -INT64 <= obj < 2**64 else str(obj)
    if isinstance(obj, Mapping):
        return {_fix_str(str(k)): _encodable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encodable(v) for v in obj]
    try:
        return orjson.loads(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY))
    except (orjson.JSONEncodeError, TypeError):
        return _fix_str(str(obj))


def dumps(obj: Any, *, indent: bool = False, sort_keys: bool = False) -> bytes:
    """JSON bytes for any record: never fails on a string a model or a server produced."""
    option = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0) | (
        orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(obj, option=option, default=str)
    except (orjson.JSONEncodeError, TypeError):  # a lone surrogate, a >64-bit integer, a non-str key
        return orjson.dumps(_encodable(obj), option=option)


# -------------------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path`` (after an fsync),
    on any error it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path | str, text: str) -> None:
    write_bytes_atomic(path, _fix_str(text).encode("utf-8"))


def write_json_atomic(path: Path | str, obj: Any) -> None:
    write_bytes_atomic(path, dumps(obj, indent=True, sort_keys=True))


# --------------------------------------------------------------------------------------- samples


def _is_int(v: Any, low: int = -INT64, high: int = INT64) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v < high


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def metric_value_problem(v: Any) -> str | None:
    """What is wrong with one episode's task-metric value (bool, finite number, [hits, total] or null)."""
    if v is None or isinstance(v, bool) or _is_num(v):
        return None
    if isinstance(v, list) and len(v) == 2 and all(_is_num(x) and x >= 0 for x in v):
        return None
    return "must be true/false, a finite number, [hits, total] or null"


def sample_problem(rec: Any) -> str | None:
    """Why ``rec`` (one parsed samples.jsonl line) is not a well-formed episode record, or None. Written
    with exact type checks (``type(x) is int`` also refuses bools): it runs once per line on every resume."""
    if type(rec) is not dict:
        return f"a record must be a JSON object, not {type(rec).__name__}"
    get = rec.get
    idx = get("index")
    if type(idx) is not int or not 0 <= idx < MAX_EPISODE_INDEX:
        return f"'index' must be an integer 0..{MAX_EPISODE_INDEX - 1}, got {short_repr(idx)}"
    if get("status") not in ("ok", "error"):
        return f"'status' must be \"ok\" or \"error\", got {short_repr(get('status'))}"
    seed = get("episode_seed")
    if type(seed) is not int or not -INT64 <= seed < INT64:
        return f"'episode_seed' must be an integer, got {short_repr(seed)}"
    if type(get("success")) is not bool:
        return f"'success' must be true or false, got {short_repr(get('success'))}"
    reward = get("reward")
    if not (type(reward) is int or (type(reward) is float and math.isfinite(reward))):
        return f"'reward' must be a finite number, got {short_repr(reward)}"
    error = get("error")
    if error is not None and type(error) is not str:
        return "'error' must be text or null"
    turns = get("turns")
    if type(turns) is not list:
        return "'turns' must be a list of objects"
    for k, t in enumerate(turns):
        why = turn_problem(t, k)
        if why:
            return f"'turns[{k}]' {why}"
    metrics, details = get("metrics"), get("details")
    if type(metrics) is not dict or type(details) is not dict:
        return f"'{'metrics' if type(metrics) is not dict else 'details'}' must be an object"
    for name, v in metrics.items():
        if type(v) is bool or v is None or type(v) is int or (type(v) is float and math.isfinite(v)):
            continue
        why = metric_value_problem(v)
        if why:
            return f"'metrics.{name}' {why}, got {short_repr(v)}"
    tokens = get("tokens")
    if type(tokens) is not dict or not all(type(n := tokens.get(k)) is int and 0 <= n < INT64
                                           for k in ("prompt", "completion")):
        return "'tokens' must be an object with integer 'prompt' and 'completion' counts"
    return None


MAX_IMAGES_PER_TURN = 1000
MAX_IMAGE_SIDE = 1_000_000


def turn_problem(t: Any, k: int) -> str | None:
    """Why one turn of a record is malformed, or None. Turns of older records (no ``shown``) are valid."""
    if type(t) is not dict:
        return "must be an object"
    get = t.get
    for name in ("answer", "feedback"):
        if name in t and type(get(name)) is not str:
            return f"'{name}' must be text, got {short_repr(get(name))}"
    reward = get("reward", 0)
    if not (type(reward) is int or (type(reward) is float and math.isfinite(reward))):
        return f"'reward' must be a finite number, got {short_repr(reward)}"
    cut = get("answer_truncated_from", 0)
    if type(cut) is not int or not 0 <= cut < INT64:
        return f"'answer_truncated_from' must be a count, got {short_repr(cut)}"
    shown = get("shown")
    return None if shown is None else _shown_problem(shown, k)


def _shown_problem(shown: Any, k: int) -> str | None:
    """``shown`` as harness.transcript writes it: what the model received that turn."""
    if type(shown) is not dict:
        return "'shown' must be an object"
    get = shown.get
    ref = get("from")
    if ref == "feedback":
        if k == 0:
            return "'shown.from' is \"feedback\" on the first turn"
    elif ref is not None and not (type(ref) is list and len(ref) == 3 and all(type(x) is int for x in ref)
                                  and 0 <= ref[0] < k and 0 <= ref[1] < INT64 and 0 <= ref[2] < INT64):
        return f"'shown.from' must be \"feedback\" or [earlier turn, prefix, suffix], got {short_repr(ref)}"
    if ref != "feedback" and type(get("text")) is not str:
        return f"'shown.text' must be text, got {short_repr(get('text'))}"
    if get("new_context", False) is not True and get("new_context", False) is not False:
        return f"'shown.new_context' must be true or false, got {short_repr(get('new_context'))}"
    if "system" in shown and type(get("system")) is not str:
        return f"'shown.system' must be text, got {short_repr(get('system'))}"
    images = get("images")
    if images is None:
        return None
    if type(images) is not list or len(images) > MAX_IMAGES_PER_TURN:
        return f"'shown.images' must be a list of at most {MAX_IMAGES_PER_TURN} references"
    for i, ref in enumerate(images):
        size = ref.get("size") if type(ref) is dict else None
        if not (type(size) is list and len(size) == 2 and all(type(n) is int and 0 < n <= MAX_IMAGE_SIDE
                                                              for n in size)):
            return f"'shown.images[{i}].size' must be [width, height] in pixels, got {short_repr(size)}"
        mode = ref.get("mode")
        if type(mode) is not str or not 0 < len(mode) <= 16:
            return f"'shown.images[{i}].mode' must be a short text (an image mode), got {short_repr(mode)}"
        sha = ref.get("sha256")
        if sha is not None and not is_digest(sha):
            return f"'shown.images[{i}].sha256' must be 64 lowercase hex digits, got {short_repr(sha)}"
    return None


_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_digest(value: Any) -> bool:
    """A well-formed sha256 hex digest (64 lowercase hex digits): safe to join into a file name."""
    return type(value) is str and len(value) == 64 and _HEX64.fullmatch(value) is not None


@dataclass
class SampleScan:
    """What :func:`scan_samples` read: the last valid record per episode index, the number of torn
    (unparseable) lines, and the lines that parsed but are not valid records, with the reason."""

    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    torn: int = 0
    invalid: list[tuple[int, str, bytes]] = field(default_factory=list)  # (line number, reason, raw line)

    @property
    def bad(self) -> int:
        return self.torn + len(self.invalid)


def _read_lines(path: Path, *, validate: bool = True
                ) -> Iterator[tuple[int, int, bytes, dict[str, Any] | None, str | None]]:
    """Each non-blank line of samples.jsonl as (line number, byte offset, raw line, record or None, why):
    ``why`` is "torn" for a line that is not JSON, the reason for one that is not a valid record."""
    if not path.exists():
        return
    offset = 0
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            raw = line.rstrip(b"\n")
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                yield n, start, raw, None, "torn"
                continue
            why = sample_problem(rec) if validate else None
            yield n, start, raw, (None if why else rec), why


def scan_samples(path: Path, *, validate: bool = True) -> SampleScan:
    """Read samples.jsonl whole (for readers of finished runs; a run being resumed uses
    :func:`index_samples`, which keeps no record in memory). ``validate=False`` skips the per-line field
    checks, for a file this process wrote itself."""
    scan = SampleScan()
    for n, _, raw, rec, why in _read_lines(path, validate=validate):
        if rec is not None:
            scan.records[rec["index"]] = rec
        elif why == "torn":
            scan.torn += 1
        else:
            scan.invalid.append((n, why or "", raw))
    return scan


def read_samples(path: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """Last valid record per episode index, and the number of lines skipped (torn or not a valid record)."""
    scan = scan_samples(path)
    return scan.records, scan.bad


@dataclass
class SampleIndex:
    """Where in samples.jsonl the last valid record of each episode index below ``limit`` is: byte offsets
    and lengths in two flat arrays (16 bytes per episode, whatever the records hold), so a run of any size
    resumes without holding its records. Also the largest index recorded (any size), torn lines and the
    lines that parsed but are not valid records."""

    path: Path
    limit: int
    offsets: array = field(default_factory=lambda: array("q"))
    lengths: array = field(default_factory=lambda: array("q"))
    count: int = 0  # episodes below ``limit`` with a record
    max_index: int = -1
    torn: int = 0
    invalid: list[tuple[int, str, bytes]] = field(default_factory=list)

    @property
    def has_results(self) -> bool:
        return self.max_index >= 0 or bool(self.invalid)

    def records(self) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        """(index, raw line, record) of each indexed episode, in index order, read one at a time."""
        if not self.count:
            return
        with self.path.open("rb") as f:
            for i, (off, length) in enumerate(zip(self.offsets, self.lengths, strict=True)):
                if off < 0:
                    continue
                f.seek(off)
                raw = f.read(length)
                yield i, raw, orjson.loads(raw)


def index_samples(path: Path, limit: int) -> SampleIndex:
    """Index samples.jsonl for a resume: every line is validated, the last valid record per index wins."""
    idx = SampleIndex(path=path, limit=limit)
    for n, off, raw, rec, why in _read_lines(path):
        if rec is None:
            if why == "torn":
                idx.torn += 1
            else:
                idx.invalid.append((n, why or "", raw))
            continue
        i = rec["index"]
        idx.max_index = max(idx.max_index, i)
        if i >= limit:
            continue
        if len(idx.offsets) <= i:  # grown to the largest index seen, never beyond ``limit``
            grow = i + 1 - len(idx.offsets)
            idx.offsets.extend([-1] * grow)
            idx.lengths.extend([0] * grow)
        idx.count += idx.offsets[i] < 0
        idx.offsets[i], idx.lengths[i] = off, len(raw)
    return idx


def write_lines_atomic(path: Path, lines: Iterable[bytes]) -> None:
    """Replace ``path`` with these lines (each newline-terminated), atomically, streaming."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        for line in lines:
            f.write(line + b"\n")


class SampleWriter:
    """Appends one JSON line per finished episode and flushes it to the OS at once (SIGKILL-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: BinaryIO = path.open("ab")

    def write(self, record: Mapping[str, Any]) -> None:
        self._f.write(dumps(record) + b"\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class NullWriter:
    """A writer that keeps nothing: a process whose episodes another process records."""

    def write(self, record: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


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
