from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import orjson
import pytest

from harness import index
from tests.leaderboard.helpers import make_run

WRITERS, PER_WRITER = 8, 25


def _writer(root: str, w: int) -> None:
    for i in range(PER_WRITER):
        run_dir = make_run(Path(root), model=f"w{w}", seed=i, successes=[True, i % 2 == 0],
                           run_id=f"run-w{w}-{i:02d}")
        index.index_run(run_dir)


def test_index_is_wal_with_busy_timeout_and_versioned(tmp_path: Path) -> None:
    index.index_run(make_run(tmp_path))
    assert index.journal_mode(tmp_path) == "wal"
    with index.connect(tmp_path) as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == index.BUSY_TIMEOUT_MS
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
            index.SCHEMA_VERSION)
    assert (tmp_path / "index.sqlite").is_file()


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    assert index.count(tmp_path) == WRITERS * PER_WRITER
    runs = index.query(tmp_path, do_sync=False)
    assert len({r.run_id for r in runs}) == WRITERS * PER_WRITER
    # re-indexing the same run replaces its row instead of adding one
    index.index_run(tmp_path / "run-w0-00")
    assert index.count(tmp_path) == WRITERS * PER_WRITER


def test_corrupt_and_half_written_records_are_skipped(tmp_path: Path) -> None:
    good = make_run(tmp_path, model="good")
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "run.json").write_bytes(b'{"run_id": "torn", "task": "gp-l", "spl')
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "run.json").write_bytes(b"[1, 2]")
    (tmp_path / "nomodel").mkdir()
    (tmp_path / "nomodel" / "run.json").write_bytes(orjson.dumps({"run_id": "x", "task": "t", "split": "id"}))
    report = index.rebuild(tmp_path)
    assert report.indexed == 1
    reasons = dict(report.skipped)
    assert set(map(lambda p: Path(p).name, reasons)) == {"torn", "list", "nomodel"}
    assert "not valid JSON" in reasons[str(tmp_path.resolve() / "torn")]
    assert "model.name" in reasons[str(tmp_path.resolve() / "nomodel")]
    assert [r.model for r in index.query(tmp_path)] == ["good"]
    with pytest.raises(index.RecordError):
        index.index_run(tmp_path / "torn")
    # a record that goes bad later loses its row; a deleted run dir too
    (good / "run.json").write_bytes(b"{")
    assert index.query(tmp_path) == []


def test_sync_finds_runs_written_without_the_observer(tmp_path: Path) -> None:
    a = make_run(tmp_path, model="a")
    assert [r.model for r in index.query(tmp_path)] == ["a"]
    make_run(tmp_path, model="b")
    assert sorted(r.model for r in index.query(tmp_path)) == ["a", "b"]
    for f in a.iterdir():
        f.unlink()
    a.rmdir()
    report = index.sync(tmp_path)
    assert report.removed == 1 and [r.model for r in index.query(tmp_path)] == ["b"]


def test_query_filters_and_prefix(tmp_path: Path) -> None:
    make_run(tmp_path, task="gp-l", split="id", model="m1", run_id="alpha-1")
    make_run(tmp_path, task="gp-l", split="ood-rule", model="m1", run_id="alpha-2")
    make_run(tmp_path, task="virl-l", split="id", model="m2", recipe="rl", flops=3e15, run_id="beta-1")
    assert {r.run_id for r in index.query(tmp_path, task="gp-l")} == {"alpha-1", "alpha-2"}
    assert [r.run_id for r in index.query(tmp_path, run_id="beta")] == ["beta-1"]
    rl = index.query(tmp_path, recipe="rl")[0]
    assert rl.flops == 3e15 and rl.get("training.recipe") == "rl" and rl.metrics["success_rate"]["n"] == 2
    assert index.query(tmp_path, run_id="alpha_") == []  # LIKE wildcards are literal


def test_schema_versions(tmp_path: Path) -> None:
    make_run(tmp_path)
    index.rebuild(tmp_path)
    db = tmp_path / "index.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    assert len(index.query(tmp_path)) == 1  # an older index is dropped and refilled
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(index.IndexSchemaError, match="newer harness"):
        index.query(tmp_path)
