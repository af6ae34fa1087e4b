"""The benchmark scripts still run against the current API (at toy sizes: their figures are not checked
here, only that a user re-measuring gets numbers rather than a traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPTS = [
    ("bench_generalpoints.py", "--episodes-l", "300", "--episodes-vl", "10", "--answers", "40", "--repeat", "1"),
    ("bench_virl.py", "--episodes", "3", "--warmup", "1", "--image-size", "64", "--panorama-episodes", "1"),
    ("bench_records.py", "--episodes", "4"),
    ("bench_eval_memory.py", "--sizes", "200,400"),
]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_benchmark_script_runs(script: tuple[str, ...], tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script[0]), *script[1:]], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip()
