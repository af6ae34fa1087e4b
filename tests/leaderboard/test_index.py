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


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("model", {"name": "m", "backend": ["a", "list"]}, "'model.backend' must be text"),
    ("seed", 1e300, "'seed' must be an integer"),
    ("seed", 2**70, "'seed' must be an integer"),
    ("metrics", {"success_rate": "high"}, "'metrics.success_rate' must be an object"),
    ("metrics", {"success_rate": {"value": "high", "n": 3}}, "'metrics.success_rate.value' must be a finite"),
    ("metrics", {"success_rate": {"value": 0.5, "n": -1}}, "'metrics.success_rate.n' must not be negative"),
    ("training", {"recipe": "rl", "flops": "lots"}, "'flops' must be a finite number"),
    ("finished", 1e300, None),  # a finite number: valid (shown as "-"), must not crash the listing
    ("status", 5, "'status' must be text"),
    ("failure_reasons", {"x": "many"}, "'failure_reasons' must map reasons to counts"),
    ("created", "yesterday", "'created' must be a finite number"),
])
def test_wrong_typed_records_are_skipped_naming_the_field(capsys, tmp_path: Path, monkeypatch, field, value,
                                                          needle) -> None:
    from harness.cli import main

    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    make_run(tmp_path, model="good", run_id="good")
    make_run(tmp_path, model="bad", run_id="bad", extra={field: value})
    report = index.rebuild(tmp_path)
    if needle is None:
        assert not report.skipped
    else:
        (skipped,) = report.skipped
        assert Path(skipped[0]).name == "bad" and needle in skipped[1] and "run.json" in skipped[1]
    board = tmp_path / "b.toml"
    board.write_text('[[columns]]\ntask = "gp-l"\nsplit = "id"\n[[rows]]\nlabel = "{model}"\nexpand = "model"\n')
    for argv in (["runs", "list", "-o", str(tmp_path)], ["runs", "reindex", "-o", str(tmp_path)],
                 ["leaderboard", "show", str(board), "--runs", str(tmp_path)],
                 ["leaderboard", "show", str(board), "--runs", str(tmp_path), "-f", "html"]):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr().out
        assert code == 0 and ("good" in out or argv[1] == "reindex"), argv


def test_corrupt_index_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    make_run(tmp_path, model="a")
    make_run(tmp_path, model="b")
    index.rebuild(tmp_path)
    (tmp_path / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.warns(index.IndexWarning, match="moved to index.sqlite.corrupt-"):
        assert sorted(r.model for r in index.query(tmp_path)) == ["a", "b"]
    assert list(tmp_path.glob("index.sqlite.corrupt-*")), "the damaged file is kept for inspection"
    assert index.count(tmp_path) == 2


@pytest.mark.parametrize("schema", [
    "CREATE TABLE runs (x INTEGER)",  # a table of the right name, the wrong shape
    "CREATE TABLE meta (k TEXT); CREATE TABLE other (y)",  # someone else's database
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', 'one')",
])
def test_foreign_index_is_rebuilt(tmp_path: Path, schema: str) -> None:
    make_run(tmp_path, model="a")
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        conn.executescript(schema)
    with pytest.warns(index.IndexWarning):
        report = index.rebuild(tmp_path)
    assert report.indexed == 1 and [r.model for r in index.query(tmp_path)] == ["a"]


def test_reindex_command_recovers_a_corrupt_index(capsys, tmp_path: Path, monkeypatch) -> None:
    from harness.cli import main

    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    make_run(tmp_path, model="a")
    (tmp_path / "index.sqlite").write_bytes(b"\x00" * 4096)
    try:
        main(["runs", "reindex", "-o", str(tmp_path)])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    assert code == 0 and "indexed 1 run(s)" in cap.out and "unusable" in cap.err


def test_a_running_record_nobody_holds_reads_as_interrupted(tmp_path: Path) -> None:
    from harness.runlock import RunLock

    run_dir = make_run(tmp_path, model="a", status="running")
    with RunLock(run_dir):
        (row,) = index.query(tmp_path)
        assert row.status == "running"
    (row,) = index.query(tmp_path)  # the lock is free: the process that held it is gone
    assert row.status == "interrupted" and row.record["status"] == "interrupted"
    assert "--resume" in row.record["advice"]
