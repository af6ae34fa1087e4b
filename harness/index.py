"""The SQLite index over run records: what boards, plots and ``harness runs`` query.

One index per runs root, at ``<root>/index.sqlite``; a run directory ``<root>/<name>/`` is indexed into its
parent's index. The index is a cache: every row can be rebuilt from the ``run.json`` files, so a schema
change simply rebuilds it. Writers use WAL mode, a busy timeout and ``INSERT OR REPLACE`` keyed by
(run_id, run_dir), each upsert in its own short ``BEGIN IMMEDIATE`` transaction, so several processes can
index at once without losing a row. A record that cannot be read (torn, not JSON, a field of the wrong
type) is reported with the file and the field and skipped, never fatal. An index file that is corrupt or
not a harness index is moved aside (``index.sqlite.corrupt-<time>``) and rebuilt from the records.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness import store
from harness.escaping import short_repr
from harness.runlock import is_live

INDEX_FILE = "index.sqlite"
RECORD_FILE = "run.json"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 60_000

_COLUMNS = ("run_id", "run_dir", "task", "split", "distribution", "model", "backend", "recipe", "flops",
            "seed", "episodes", "episodes_ok", "status", "created", "finished", "mtime_ns", "record")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT NOT NULL, run_dir TEXT NOT NULL, task TEXT NOT NULL, split TEXT NOT NULL,
    distribution TEXT, model TEXT NOT NULL, backend TEXT, recipe TEXT, flops REAL, seed INTEGER,
    episodes INTEGER, episodes_ok INTEGER, status TEXT, created REAL, finished REAL, mtime_ns INTEGER,
    record BLOB NOT NULL, indexed_at REAL NOT NULL,
    PRIMARY KEY (run_id, run_dir)
);
CREATE INDEX IF NOT EXISTS runs_cell ON runs (task, split, model, status);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
"""


class IndexSchemaError(Exception):
    """The index cannot be used (written by a newer harness)."""


class RecordError(ValueError):
    """A run record that cannot be indexed; the message says why."""


class IndexWarning(UserWarning):
    """The index file was unusable and has been moved aside and rebuilt."""


class _CorruptIndex(Exception):
    pass


@dataclass(frozen=True)
class IndexedRun:
    """One row of the index: the fields boards select on, plus the full record."""

    run_id: str
    run_dir: Path
    task: str
    split: str
    distribution: str | None
    model: str
    backend: str | None
    recipe: str | None
    flops: float | None
    seed: int | None
    episodes: int | None
    episodes_ok: int | None
    status: str | None
    created: float | None
    finished: float | None
    record: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def metrics(self) -> Mapping[str, Mapping[str, Any]]:
        return self.record.get("metrics") or {}

    def get(self, dotted: str, default: Any = None) -> Any:
        """A record field by dotted path (``training.flops``, ``gen.temperature``)."""
        return dotted_get(self.record, dotted, default)

    @property
    def args_digest(self) -> str:
        """Six hex digits over what the run's identity holds beyond task, split, model and seed (generation
        and task arguments, answer budget, model arguments and content, task version): two runs that look
        alike in a listing but differ here get different digests."""
        ident = self.record.get("identity")
        if not isinstance(ident, Mapping):
            return "-"
        rest = {k: v for k, v in ident.items() if k not in ("task", "split", "model", "seed")}
        return store.config_hash(rest)[:6]


@dataclass
class ScanReport:
    """What a rebuild or sync did: rows written, rows removed, and records skipped with the reason."""

    indexed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def dotted_get(obj: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return default
        obj = obj[part]
    return obj


def index_path(root: Path | str) -> Path:
    return Path(root) / INDEX_FILE


# ------------------------------------------------------------------------------------------ connection


_FOREIGN = ("no such column", "has no column", "already exists", "malformed", "not a database")


def _is_corrupt(exc: BaseException) -> bool:
    """A damaged file, or a database that is not a harness index (someone else's tables under its name)."""
    if isinstance(exc, _CorruptIndex):
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    return (getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
            or any(m in str(exc) for m in _FOREIGN))


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
        _retry(lambda: _ensure_schema(conn))
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        if not {*_COLUMNS, "indexed_at"} <= columns:
            raise _CorruptIndex("its 'runs' table is not the harness's")
    except BaseException:
        conn.close()
        raise
    return conn


def _quarantine(path: Path, why: BaseException) -> None:
    """Move an unusable index (and its WAL files) aside; it is a cache, rebuilt from the run records."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):  # another process moved it first
        os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")
    warnings.warn(f"{path} was unusable ({why}); moved to {aside.name} and rebuilt from the run records",
                  IndexWarning, stacklevel=4)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open(path)
    except (sqlite3.DatabaseError, _CorruptIndex) as exc:
        if not _is_corrupt(exc):
            raise
        _quarantine(path, exc)
    return _open(path)


def _retry(fn: Any, attempts: int = 50) -> Any:
    """Switching to WAL and creating the schema can report 'locked' without waiting on the busy handler
    while another process does the same; retry those briefly."""
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or i == attempts - 1:
                raise
            time.sleep(0.02 * (i + 1))
    return None


def _version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        raise _CorruptIndex(f"not a harness index: {exc}") from None
    if not row:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise _CorruptIndex(f"its schema version {row[0]!r} is not a number") from None


def _ensure_schema(conn: sqlite3.Connection) -> None:
    if _version(conn) == SCHEMA_VERSION:  # the common case: no write lock taken
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)
        if version is not None:
            if version > SCHEMA_VERSION:
                raise IndexSchemaError(f"the index was written by a newer harness (schema {version} > "
                                       f"{SCHEMA_VERSION}); upgrade, or delete it and run `harness runs reindex`")
            if version < SCHEMA_VERSION:  # a cache: drop and let the caller's sync refill it
                conn.execute("DROP TABLE IF EXISTS runs")
                conn.execute("DELETE FROM meta WHERE key = 'schema_version'")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@contextmanager
def connect(root: Path | str) -> Iterator[sqlite3.Connection]:
    """An open connection to ``<root>/index.sqlite`` (created on first use)."""
    conn = _connect(index_path(root))
    try:
        yield conn
    finally:
        conn.close()


def journal_mode(root: Path | str) -> str:
    with connect(root) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


# ------------------------------------------------------------------------------------------- records


def read_record(run_dir: Path) -> dict[str, Any]:
    """The run record of ``run_dir``, validated enough to index; raises :class:`RecordError`."""
    path = run_dir / RECORD_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"{path} is not valid JSON (torn or half-written?): {exc}") from None
    validate(record, path)
    return record


_INT64 = 2**63


def _type_problem(value: Any, kind: str) -> str | None:
    """None when ``value`` is of ``kind`` (str, int, num, obj; each also admits null), else what it is."""
    if value is None:
        return None
    if kind == "str" and isinstance(value, str):
        return None
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64:
        return None
    if kind == "num" and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return None
    if kind == "obj" and isinstance(value, Mapping):
        return None
    noun = {"str": "text", "int": "an integer (64-bit)", "num": "a finite number", "obj": "an object"}[kind]
    return f"must be {noun} or null, got {short_repr(value)}"


_RECORD_FIELDS = {
    "distribution": "str", "status": "str", "advice": "str", "error": "str", "git_commit": "str",
    "seed": "int", "episodes": "int", "episodes_ok": "int", "episodes_failed": "int", "verify_iter": "int",
    "batch_size": "int", "schema_version": "int", "created": "num", "finished": "num", "wall_time_s": "num",
    "identity": "obj", "gen": "obj", "task_args": "obj", "tokens": "obj", "versions": "obj",
    "failure_reasons": "obj", "metrics": "obj", "training": "obj"}
_MODEL_FIELDS = {"backend": "str", "args": "obj", "identity": "obj"}
_TRAINING_FIELDS = {"recipe": "str", "base_model": "str", "root_model": "str", "base_recipe": "str",
                    "base_checkpoint": "str", "task": "str", "split": "str", "flops": "num", "base_flops": "num",
                    "step": "int", "seed": "int", "created": "num"}
_METRIC_FIELDS = {"value": "num", "ci_low": "num", "ci_high": "num", "n": "int"}


def training_problem(info: Any) -> str | None:
    """What is wrong with a training-information object (a record's ``training``, or the file a recipe
    writes beside a checkpoint), or None."""
    if not isinstance(info, Mapping):
        return f"training information must be a JSON object, got {type(info).__name__}"
    for key, kind in _TRAINING_FIELDS.items():
        why = _type_problem(info.get(key), kind)
        if why:
            return f"field '{key}' {why}"
    for key in ("flops", "base_flops"):
        if isinstance(info.get(key), int | float) and info[key] < 0:
            return f"field '{key}' must not be negative, got {info[key]}"
    return None


def validate(record: Any, where: Path | str = "record") -> None:
    """Check every field the harness reads from a run record; :class:`RecordError` names file and field."""
    if not isinstance(record, Mapping):
        raise RecordError(f"{where}: a run record must be a JSON object, got {type(record).__name__}")
    missing = [k for k in ("run_id", "task", "split") if not isinstance(record.get(k), str)]
    model = record.get("model")
    if not isinstance(model, Mapping) or not isinstance(model.get("name"), str):
        missing.append("model.name")
    if missing:
        raise RecordError(f"{where}: record lacks {', '.join(missing)} (or they are not text)")
    for key, kind in _RECORD_FIELDS.items():
        why = _type_problem(record.get(key), kind)
        if why:
            raise RecordError(f"{where}: field '{key}' {why}")
    for key, kind in _MODEL_FIELDS.items():
        why = _type_problem(model.get(key), kind)
        if why:
            raise RecordError(f"{where}: field 'model.{key}' {why}")
    for name, m in (record.get("metrics") or {}).items():
        if not isinstance(m, Mapping):
            raise RecordError(f"{where}: field 'metrics.{name}' must be an object, got {short_repr(m)}")
        for key, kind in _METRIC_FIELDS.items():
            why = _type_problem(m.get(key), kind)
            if why:
                raise RecordError(f"{where}: field 'metrics.{name}.{key}' {why}")
        if isinstance(m.get("n"), int) and m["n"] < 0:
            raise RecordError(f"{where}: field 'metrics.{name}.n' must not be negative")
    for reason, n in (record.get("failure_reasons") or {}).items():
        if _type_problem(n, "int"):
            raise RecordError(f"{where}: field 'failure_reasons' must map reasons to counts, got {short_repr(n)} "
                              f"for {short_repr(reason)}")
    if record.get("training") is not None:
        why = training_problem(record["training"])
        if why:
            raise RecordError(f"{where}: 'training': {why}")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _row(record: Mapping[str, Any], run_dir: Path, mtime_ns: int | None) -> tuple[Any, ...]:
    training = record.get("training") or {}
    model = record["model"]
    return (record["run_id"], run_dir.name, record["task"], record["split"], record.get("distribution"),
            model["name"], model.get("backend"), training.get("recipe"), _num(training.get("flops")),
            _int(record.get("seed")), _int(record.get("episodes")), _int(record.get("episodes_ok")),
            record.get("status"), _num(record.get("created")), _num(record.get("finished")), mtime_ns,
            store.dumps(record))


_UPSERT = (f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}, indexed_at) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))}, ?)")


def _mtime(run_dir: Path) -> int | None:
    try:
        return (run_dir / RECORD_FILE).stat().st_mtime_ns
    except OSError:
        return None


def _upsert(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_UPSERT, [(*r, now) for r in rows])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def index_run(run_dir: Path | str, record: Mapping[str, Any] | None = None) -> IndexedRun:
    """Index one run into ``<run_dir's parent>/index.sqlite``. ``record`` defaults to its run.json."""
    run_dir = Path(run_dir).resolve()
    if record is None:
        record = read_record(run_dir)
    else:
        validate(record, run_dir / RECORD_FILE)
    row = _row(record, run_dir, _mtime(run_dir))

    def upsert() -> None:
        with connect(run_dir.parent) as conn:
            _upsert(conn, [row])

    _recovering(run_dir.parent, upsert)
    return _from_row(dict(zip(_COLUMNS, row, strict=True)), run_dir.parent)


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/{RECORD_FILE}"))


def sync(root: Path | str, *, full: bool = False) -> ScanReport:
    """Bring the index in line with the run.json files under ``root``: index new or changed records
    (by modification time; ``full`` re-reads all), drop rows whose record is gone."""
    root = Path(root).resolve()
    return _recovering(root, lambda: _sync(root, full=full))


def _sync(root: Path, *, full: bool = False) -> ScanReport:
    report = ScanReport()
    with connect(root) as conn:
        known = {name: mtime for name, mtime in conn.execute("SELECT run_dir, mtime_ns FROM runs")}
        rows = []
        present = set()
        for run_dir in _run_dirs(root):
            present.add(run_dir.name)
            mtime = _mtime(run_dir)
            if not full and run_dir.name in known and known[run_dir.name] == mtime:
                report.unchanged += 1
                continue
            try:
                record = read_record(run_dir)
            except RecordError as exc:
                report.skipped.append((str(run_dir), str(exc)))
                continue
            rows.append(_row(record, run_dir, mtime))
        gone = [name for name in known if name not in present and not (root / name / RECORD_FILE).exists()]
        if rows:
            _upsert(conn, rows)
        if gone:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM runs WHERE run_dir = ?", [(g,) for g in gone])
            conn.execute("COMMIT")
        # a run dir whose record became unreadable keeps no stale row
        stale = [s for s, _ in report.skipped if Path(s).name in known]
        if stale:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM runs WHERE run_dir = ?", [(Path(s).name,) for s in stale])
            conn.execute("COMMIT")
        report.indexed, report.removed = len(rows), len(gone) + len(stale)
    return report


def rebuild(root: Path | str) -> ScanReport:
    """Re-read every ``<root>/*/run.json``; a corrupt or half-written record is reported and skipped."""
    return sync(root, full=True)


# --------------------------------------------------------------------------------------------- query


KILLED_ADVICE = ("its process is gone (killed, or the machine stopped); rerun the same command with --resume "
                 "to continue")


def _from_row(row: Mapping[str, Any], root: Path) -> IndexedRun:
    record = row["record"]
    record = orjson.loads(record) if isinstance(record, bytes | str) else dict(record)
    status = row["status"]
    run_dir = root / row["run_dir"]
    if status == "running" and not is_live(run_dir):  # nobody holds the run's lock: it was killed
        status = "interrupted"
        record = {**record, "status": status, "advice": KILLED_ADVICE}
    return IndexedRun(
        run_id=row["run_id"], run_dir=run_dir, task=row["task"], split=row["split"],
        distribution=row["distribution"], model=row["model"], backend=row["backend"], recipe=row["recipe"],
        flops=row["flops"], seed=row["seed"], episodes=row["episodes"], episodes_ok=row["episodes_ok"],
        status=status, created=row["created"], finished=row["finished"], record=record)


def _recovering(root: Path, fn: Any) -> Any:
    """Run ``fn()``; if the index turns out corrupt mid-way, move it aside, rebuild it, and run it again."""
    try:
        return fn()
    except sqlite3.DatabaseError as exc:
        if not _is_corrupt(exc):
            raise
        _quarantine(index_path(root), exc)
    _sync(root, full=True)
    return fn()


def query(root: Path | str, *, task: str | None = None, split: str | None = None, model: str | None = None,
          recipe: str | None = None, status: str | None = None, run_id: str | None = None,
          do_sync: bool = True) -> list[IndexedRun]:
    """Indexed runs under ``root`` matching every filter given, oldest first. ``run_id`` also matches a
    unique prefix. With ``do_sync`` (the default) the index is first brought up to date (one stat per
    run), so runs written without the index observer are seen too."""
    root = Path(root).resolve()
    if do_sync:
        sync(root)
    clauses, args = [], []
    for name, value in (("task", task), ("split", split), ("model", model), ("recipe", recipe),
                        ("status", status)):
        if value is not None:
            clauses.append(f"{name} = ?")
            args.append(value)
    if run_id is not None:
        clauses.append("(run_id = ? OR run_id LIKE ? ESCAPE '\\')")
        args += [run_id, "%" + run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"]
    sql = f"SELECT {', '.join(_COLUMNS)} FROM runs"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY COALESCE(finished, created, 0), run_id"

    def select() -> list[IndexedRun]:
        with connect(root) as conn:
            conn.row_factory = sqlite3.Row
            return [_from_row(dict(r), root) for r in conn.execute(sql, args)]

    return _recovering(root, select)


def count(root: Path | str) -> int:
    root = Path(root).resolve()

    def n() -> int:
        with connect(root) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    return _recovering(root, n)


def default_root() -> Path:
    return Path(os.environ.get("HARNESS_RUNS", "runs"))


__all__ = ["INDEX_FILE", "SCHEMA_VERSION", "IndexSchemaError", "IndexWarning", "IndexedRun", "RecordError",
           "ScanReport", "connect", "count", "default_root", "dotted_get", "index_path", "index_run",
           "journal_mode", "query", "read_record", "rebuild", "sync", "training_problem", "validate"]
