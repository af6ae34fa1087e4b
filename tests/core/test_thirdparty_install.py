"""A third-party package, pip-installed for real, is found through the `harness` entry-point group."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).parents[1] / "thirdparty_plugin"


def test_installed_plugin_is_discovered_and_its_task_runs(tmp_path: Path) -> None:
    src = tmp_path / "pkg"
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_DISABLE_ENTRYPOINTS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), HARNESS_NO_PROGRESS="1")
    harness = [sys.executable, "-m", "harness.cli"]
    # run from a directory where the test tree's copy of the plugin is not importable
    listed = subprocess.run([*harness, "plugins", "--json"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    toy = next(p for p in json.loads(listed.stdout) if p["plugin"] == "toy")
    assert toy["distribution"] == "harness-toy-plugin" and toy["version"] == "0.3.1"
    assert toy["registered"] == {"tasks": ["toy-add"]} and toy["error"] is None
    ran = subprocess.run([*harness, "eval", "--model", "oracle", "--task", "toy-add", "--split", "big",
                          "-n", "25", "-o", str(tmp_path / "runs"), "--json"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    record = json.loads(ran.stdout)
    assert record["split"] == "ood" and record["metrics"]["success_rate"]["value"] == 1.0
