"""A full disk while writing never replaces a user's file with half a file.

The disk is made "full" for real: a child process lowers RLIMIT_FSIZE (with SIGXFSZ ignored, so a write
past the limit fails with EFBIG as a write to a full disk fails with ENOSPC), then rewrites files that
already exist with longer content. Each must fail with an error and leave the previous file byte for byte,
with no temporary file left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import leaderboard as lb
from tests.leaderboard.helpers import make_run, pattern

pytest.importorskip("resource")

ROOT = Path(__file__).parents[2]
LIMIT = 600  # bytes: smaller than every rewritten file below

CHILD = r"""
import resource, signal, sys
from pathlib import Path
from unittest import mock

import typer

from harness import leaderboard as lb, store
from harness.cli_boards import _emit
from harness import plot

board_path, runs, out_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
board = lb.load_board(board_path)
table = lb.aggregate(board, runs)   # reads the index before the disk "fills up"
text = lb.to_markdown(table)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot(range(50), range(50))

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[4]), resource.RLIM_INFINITY))
failures = []
with mock.patch("harness.leaderboard.render.aggregate", return_value=table):
    try:
        lb.publish(board, runs, out_dir / "board.md")
    except OSError as exc:
        failures.append(("publish", exc.errno))
try:
    _emit(text, out_dir / "shown.md")
except typer.Exit as exc:
    failures.append(("emit", exc.exit_code))
try:
    plot._save(fig, out_dir / "plot.png")
except OSError as exc:
    failures.append(("plot", exc.errno))
try:
    store.write_json_atomic(out_dir / "run.json", {"x": "y" * 5000})
except OSError as exc:
    failures.append(("json", exc.errno))
import json
print(json.dumps(failures))
"""


def test_full_disk_leaves_every_previous_file_intact(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for m in ("a", "b"):
        make_run(runs, model=m, successes=pattern(10, 3))
    board = tmp_path / "board.toml"
    board.write_text('title = "T"\n[[columns]]\ntask = "gp-l"\nsplit = "id"\n'
                     '[[rows]]\nlabel = "{model}"\nexpand = "model"\n')
    out = tmp_path / "out"
    out.mkdir()
    previous = {"board.md": "# old board\n" * 10, "shown.md": "old shown\n" * 10, "plot.png": "old plot\n" * 10,
                "run.json": '{"old": true}\n' * 10}
    for name, text in previous.items():
        (out / name).write_text(text)
    make_run(runs, model="c", successes=pattern(10, 7))  # the new table is longer than the limit
    proc = subprocess.run([sys.executable, "-c", CHILD, str(board), str(runs), str(out), str(LIMIT)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    failed = {name for name, _ in json.loads(proc.stdout)}
    assert failed == {"publish", "emit", "plot", "json"}, proc.stdout + proc.stderr
    for name, text in previous.items():
        assert (out / name).read_text() == text, f"{name} was damaged by the failed write"
    assert sorted(p.name for p in out.iterdir()) == sorted(previous), "no temporary file left behind"
    # and with room on the disk, the same calls replace the files
    path = lb.publish(lb.load_board(board), runs, out / "board.md")
    assert path.read_text().startswith("# T") and "| c |" in path.read_text()
