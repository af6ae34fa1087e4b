"""Test-wide settings: offline Hugging Face, no progress bars, and the toy third-party plugin importable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HARNESS_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOY_SRC = Path(__file__).parent / "thirdparty_plugin" / "src"
if str(TOY_SRC) not in sys.path:
    sys.path.insert(0, str(TOY_SRC))
