"""First-party observer: every finished run is written into its runs root's SQLite index.

This is how runs reach ``harness runs list`` and the leaderboards without a separate step. Set
``HARNESS_NO_INDEX=1`` to skip it (boards still find such runs: queries sync the index first).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.hookspecs import hookimpl
from harness.index import index_run


@hookimpl
def harness_run_finished(run: Mapping[str, Any], run_dir: str) -> None:
    if os.environ.get("HARNESS_NO_INDEX"):
        return
    index_run(Path(run_dir), record=run)
