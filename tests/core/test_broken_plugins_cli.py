"""Broken third-party plugins: the CLI names each one and carries on with the rest."""

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
}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    for name, body in PLUGINS.items():
        (tmp_path / name).write_text(body)
    toy = Path(__file__).parents[1] / "thirdparty_plugin" / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(toy)]), "HARNESS_NO_PROGRESS": "1",
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)


def test_import_error_and_malformed_specs_are_named_and_skipped(tmp_path: Path) -> None:
    res = _cli(tmp_path, "--plugin", "raises_on_import", "--plugin", "malformed_specs", "--plugin",
               "harness_toy.plugin", "eval", "--model", "oracle", "--task", "toy-add", "-n", "5", "-o",
               str(tmp_path / "runs"), "--json")
    assert res.returncode == 0, res.stderr
    err = " ".join(res.stderr.split())
    assert "raises_on_import" in err and "exploded while importing" in err
    assert "malformed_specs" in err and "BackendSpec" in err
    assert json.loads(res.stdout)["episodes_ok"] == 5


def test_duplicate_name_is_a_clear_error(tmp_path: Path) -> None:
    res = _cli(tmp_path, "--plugin", "harness_toy.plugin", "--plugin", "duplicate_task", "tasks")
    assert res.returncode == 2
    err = " ".join(res.stderr.split())
    assert "toy-add" in err and "harness_toy.plugin" in err and "duplicate_task" in err
    assert "Traceback" not in res.stderr


def test_plugins_listing_shows_the_errors(tmp_path: Path) -> None:
    res = _cli(tmp_path, "--plugin", "raises_on_import", "plugins", "--json")
    assert res.returncode == 0
    info = next(p for p in json.loads(res.stdout) if p["plugin"] == "raises_on_import")
    assert "exploded while importing" in info["error"]
