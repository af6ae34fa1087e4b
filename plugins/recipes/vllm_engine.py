"""Rollouts through vLLM on a GPU, with the trained weights pushed into the engine after every update.

Used with ``--recipe-args rollout_engine=vllm`` for Qwen2-VL-class models (vLLM no longer serves Mllama).
vLLM is imported lazily and only here; without it (or without CUDA) the recipe stops with a clear error
before training starts. Written against vLLM's documented offline API: ``LLM.chat`` for generation with
PIL images as ``image_pil`` content parts, ``LLM.collective_rpc`` to run a function on every worker
(here: ``model.load_weights`` from a safetensors file the trainer wrote), ``LLM.reset_prefix_cache``
after a weight change so no stale KV blocks are reused. Log-probs for PPO are recomputed by the training
model on the returned token ids, so small numeric differences between engines do not bias the update.
Untested in this repository's CI (no GPU there).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.types import Message


def _load_weights(worker: Any, path: str) -> int:
    """Runs inside each vLLM worker process (module-level, so it pickles by reference)."""
    from safetensors.torch import load_file

    weights = load_file(path, device="cpu")
    runner = getattr(worker, "model_runner", None) or worker.worker.model_runner
    runner.model.load_weights(weights=weights.items())
    return len(weights)


def _messages(conv: Sequence[Message]) -> list[dict[str, Any]]:
    out = []
    for m in conv:
        parts: list[dict[str, Any]] = []
        for p in m.content:
            if p.type == "image" and p.image is not None:
                parts.append({"type": "image_pil", "image_pil": p.image.convert("RGB")})
            elif p.type == "text":
                parts.append({"type": "text", "text": p.text})
        out.append({"role": m.role, "content": parts})
    return out


class VLLMGenerator:
    """An in-process vLLM engine sharing the GPU with the trainer (colocated)."""

    def __init__(self, checkpoint: str, *, gpu_memory_utilization: float = 0.3, seed: int = 0,
                 max_images: int = 1, engine_args: Mapping[str, Any] | None = None) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("rollout_engine=vllm needs vLLM on a CUDA machine (pip install -e '.[vllm]'); "
                              "use rollout_engine=hf otherwise") from exc
        if not torch.cuda.is_available():
            raise ImportError("rollout_engine=vllm needs a CUDA GPU; use rollout_engine=hf on CPU")
        self.llm = LLM(model=checkpoint, gpu_memory_utilization=gpu_memory_utilization, seed=seed,
                       limit_mm_per_prompt={"image": max_images}, **dict(engine_args or {}))
        self._dir = tempfile.TemporaryDirectory(prefix="harness-vllm-sync-")

    def sync(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Push the policy's current (merged, HF-named) weights into every worker."""
        from safetensors.torch import save_file

        path = str(Path(self._dir.name) / "weights.safetensors")
        save_file({k: v.detach().to("cpu").contiguous() for k, v in weights.items()}, path)
        self.llm.collective_rpc(_load_weights, args=(path,))
        self.llm.reset_prefix_cache()

    def generate(self, convs: Sequence[Sequence[Message]], max_new_tokens: int, temperature: float,
                 seed: int) -> tuple[list[list[int]], list[int]]:
        from vllm import SamplingParams

        # no per-request seed: identical prompts (a GRPO group) must get different samples; the engine's
        # own seed (constructor) keeps a run reproducible
        params = SamplingParams(temperature=temperature, max_tokens=max_new_tokens)
        outs = self.llm.chat([_messages(c) for c in convs], params, use_tqdm=False)
        return ([list(o.outputs[0].token_ids) for o in outs], [len(o.prompt_token_ids or []) for o in outs])

    def close(self) -> None:
        self._dir.cleanup()
        del self.llm


__all__ = ["VLLMGenerator"]
