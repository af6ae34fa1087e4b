"""Registers the ``openai`` backend. The client library is imported only when a backend is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.hookspecs import hookimpl
from harness.types import Backend, BackendSpec


def _factory(args: Mapping[str, Any]) -> Backend:
    from harness_plugins.openai_backend.backend import make_backend

    return make_backend(args)


@hookimpl
def harness_backends() -> list[BackendSpec]:
    return [BackendSpec(
        "openai",
        "any OpenAI-compatible chat-completions server (official client; images as data URLs; "
        "concurrent, with capped retries); model=NAME, base_url=URL, key from $OPENAI_API_KEY",
        _factory, default_batch_size=16, extra="openai")]
