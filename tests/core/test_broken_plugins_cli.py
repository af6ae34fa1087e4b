"""Broken third-party plugins: named, isolated, and never able to take `harness plugins` or --help down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLUGINS = {
    "raises_on_import.py": "raise RuntimeError('exploded while importing')\n",
    "duplicate_task.py": "from harness_toy.plugin import harness_tasks  # noqa: F401 (re-registers toy-add)\n",
    "malformed_specs.py": (
        "from harness import hookimpl\n"
        "@hookimpl\n"
        "def harness_backends():\n"
        "    return ['not a BackendSpec']\n"
    ),
    "noisy.py": "print('plugin says hi')\n",
    "exits.py": "import sys\nsys.exit(4)\n",
}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    for name, body in PLUGINS.items():
        (tmp_path / name).write_text(body)
    toy = Path(__file__).parents[1] / "thirdparty_plugin" / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(toy)]), "HARNESS_NO_PROGRESS": "1",
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)


def test_a_named_plugin_that_fails_is_an_error_and_malformed_specs_are_skipped(tmp_path: Path) -> None:
    res = _cli(tmp_path, "--plugin", "raises_on_import", "--plugin", "harness_toy.plugin", "tasks")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    err = " ".join(res.stderr.split())
    assert "raises_on_import" in err and "exploded while importing" in err
    res = _cli(tmp_path, "--plugin", "malformed_specs", "--plugin", "noisy", "--plugin", "harness_toy.plugin", "eval",
               "--model", "oracle", "--task", "toy-add", "-n", "5", "-o", str(tmp_path / "runs"), "--json")
    assert res.returncode == 0, res.stderr
    err = " ".join(res.stderr.split())
    assert "malformed_specs" in err and "BackendSpec" in err and "plugin says hi" in err
    assert json.loads(res.stdout)["episodes_ok"] == 5  # a plugin's print never corrupts --json


def test_a_duplicate_name_disables_the_later_plugin(tmp_path: Path) -> None:
    res = _cli(tmp_path, "--plugin", "harness_toy.plugin", "--plugin", "duplicate_task", "tasks", "--json")
    assert res.returncode == 0, res.stderr
    err = " ".join(res.stderr.split())
    assert "toy-add" in err and "harness_toy.plugin" in err and "duplicate_task" in err and "disabled" in err
    assert "toy-add" in {t["task"] for t in json.loads(res.stdout)}


def test_plugins_listing_and_help_always_work(tmp_path: Path) -> None:
    res = _cli(tmp_path, "--plugin", "raises_on_import", "--plugin", "exits", "plugins", "--json")
    assert res.returncode == 0, res.stderr
    rows = {p["plugin"]: p for p in json.loads(res.stdout)}
    assert "exploded while importing" in rows["raises_on_import"]["error"]
    assert "SystemExit: 4" in rows["exits"]["error"] and rows["exits"]["status"] == "disabled"
    assert rows["generalpoints"]["registered"]["tasks"] == ["gp-l", "gp-vl"]
    res = _cli(tmp_path, "--plugin", "exits", "--help")
    assert res.returncode == 0 and "eval" in res.stdout
