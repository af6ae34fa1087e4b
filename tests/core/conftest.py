"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest

from harness.plugins import load_registry
from harness.types import TaskSpec


@pytest.fixture(scope="module")
def toy() -> TaskSpec:
    """The third-party example task (tests/thirdparty_plugin), loaded as a plugin."""
    return load_registry(["harness_toy.plugin"], entry_points=False).task("toy-add")
