"""Registers the ``vllm`` backend. vllm is imported only inside the factory, so this plugin loads (and
``harness models`` lists it) on machines without vllm or a GPU; selecting it there fails with an error
that names the ``vllm`` extra and the GPU requirement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.hookspecs import hookimpl
from harness.types import Backend, BackendSpec


def _factory(args: Mapping[str, Any]) -> Backend:
    from harness_plugins.vllm_backend.backend import create

    return create(args)


@hookimpl
def harness_backends() -> list[BackendSpec]:
    return [BackendSpec(
        "vllm",
        "vLLM engine on NVIDIA GPUs (LLM.chat, continuous batching); args: model, max_image_size, "
        "image_format, chat_template, plus any vLLM engine arg (tensor_parallel_size, max_model_len, "
        "limit_mm_per_prompt, gpu_memory_utilization, dtype, ...)",
        _factory, default_batch_size=128, extra="vllm")]
