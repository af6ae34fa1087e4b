"""Rollouts through vLLM on GPUs, one colocated engine per training process, weights synced in GPU memory.

Used with ``--recipe-args rollout_engine=vllm`` for Qwen2-VL-class models (vLLM no longer serves Mllama).
Written against vLLM's documented offline API, the way TRL's colocate mode uses it:

- each process builds its own ``vllm.LLM`` with ``distributed_executor_backend="external_launcher"``: the
  engine runs inside the training process, on that process's GPU (``LOCAL_RANK``), on the process group
  ``torchrun`` / ``accelerate launch`` set up; no engine subprocess, so nothing is pickled;
- after every update the trained weights are gathered on every process (ZeRO-3 partitions and FSDP shards
  included, one tensor or one layer at a time) and handed to the engine's model with ``load_weights``
  while still on the GPU; the prefix cache is reset after;
- with ``enable_sleep_mode`` the engine sleeps during updates (level 1: weights offloaded to CPU, KV cache
  freed) and wakes weights first, then its KV cache, around the weight sync;
- prompts are the trainer's own: the hf backend renders the chat template and resizes images
  (``max_image_size``), and the same text and PIL images go to vLLM, so the sampled ids continue exactly
  the prompt the trainer re-encodes (text-only models get the token ids themselves).

Log-probs for PPO are recomputed by the training model on the returned token ids, so small numeric
differences between engines do not bias the update. Needs a CUDA GPU; checked on CPU only with a stand-in
engine object (tests/recipes/test_vllm_engine.py), see the README for what ran where.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from harness.types import Message

_WRAPPERS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
_LAYER = re.compile(r"^(.*?\.layers\.\d+)\.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _distributed_env() -> None:
    """What ``external_launcher`` reads; torchrun sets it, a single process gets rank 0 of 1."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))


def group_of(name: str) -> str:
    """Parameters gathered together: one decoder layer (its LoRA factors beside its weights), or one
    top-level module."""
    m = _LAYER.match(name)
    return m.group(1) if m else ".".join(name.split(".")[:3])


def clean_name(name: str) -> str:
    for w in _WRAPPERS:
        name = name.replace(w, "")
    return name


def full_weights(tr: Any, policy: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's weights under the base model's own names (LoRA merged), gathered on every process
    one group at a time. Every process must iterate to the end: the gathers are collectives."""
    from accelerate.utils import DistributedType

    module = tr.unwrapped()
    named = [(clean_name(n), p) for n, p in module.named_parameters() if not clean_name(n).startswith("value_head.")]
    groups: dict[str, list[tuple[str, torch.nn.Parameter]]] = {}
    for n, p in named:
        groups.setdefault(group_of(n), []).append((n, p))
    fsdp1 = tr.acc.distributed_type == DistributedType.FSDP and hasattr(tr.model, "summon_full_params")
    outer = tr.model.summon_full_params(tr.model, writeback=False, recurse=True) if fsdp1 else contextlib.nullcontext()
    with outer:
        for members in groups.values():
            with _gathered(tr, [p for _, p in members]):
                state = {n: _full(p) for n, p in members}
                yield from policy.checkpoint_format(policy.plain_weights(state)).items()


@contextlib.contextmanager
def _gathered(tr: Any, params: Sequence[torch.nn.Parameter]) -> Iterator[None]:
    plugin = tr.deepspeed
    if plugin is not None and int(plugin.zero_stage or 0) == 3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(params), modifier_rank=None):
            yield
    else:
        yield


def _full(p: torch.Tensor) -> torch.Tensor:
    full = getattr(p, "full_tensor", None)  # FSDP2 DTensor shards: all-gather
    return (full() if callable(full) else p).detach()


class VLLMGenerator:
    """A vLLM engine colocated with this training process (see the module docstring)."""

    def __init__(self, tr: Any, *, gpu_memory_utilization: float = 0.3, seed: int = 0, sleep_level: int = 1,
                 max_images: int = 1, engine_args: Mapping[str, Any] | None = None, llm: Any = None) -> None:
        self.policy = tr.policy
        self.tr = tr
        self.sleep_level = int(sleep_level)
        if llm is None:
            llm = self._start(tr, gpu_memory_utilization, seed, max_images, engine_args)
        self.llm = llm
        self.asleep = False
        self.dtype = getattr(getattr(getattr(llm, "llm_engine", None), "model_config", None), "dtype", None)

    def _start(self, tr: Any, gpu_memory_utilization: float, seed: int, max_images: int,
               engine_args: Mapping[str, Any] | None) -> Any:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError("rollout_engine=vllm needs vLLM on a CUDA machine (pip install -e '.[vllm]'); "
                              "use rollout_engine=hf otherwise") from exc
        if not torch.cuda.is_available():
            raise ImportError("rollout_engine=vllm needs a CUDA GPU; use rollout_engine=hf on CPU")
        _distributed_env()
        kwargs: dict[str, Any] = {"model": self.policy.pretrained, "tensor_parallel_size": 1,
                                  "distributed_executor_backend": "external_launcher",
                                  "gpu_memory_utilization": gpu_memory_utilization,
                                  "seed": seed + tr.acc.process_index,  # each engine samples its own stream
                                  "enable_sleep_mode": self.sleep_level > 0}
        if self.policy.backend.is_vision:
            kwargs["limit_mm_per_prompt"] = {"image": max_images}
        llm = LLM(**{**kwargs, **dict(engine_args or {})})
        tr.acc.wait_for_everyone()
        return llm

    # --------------------------------------------------------------------------- memory and weights
    def sleep(self) -> None:
        """Give the GPU memory to the update: weights offloaded, KV cache freed."""
        if self.sleep_level > 0 and not self.asleep:
            self.llm.sleep(level=self.sleep_level)
            self.asleep = True

    def wake(self, tags: Sequence[str] | None = None) -> None:
        if self.asleep:
            self.llm.wake_up(tags=list(tags)) if tags else self.llm.wake_up()
            if not tags or "kv_cache" in tags:
                self.asleep = False

    def _model(self) -> Any:
        executor = self.llm.llm_engine.model_executor
        worker = executor.driver_worker
        runner = getattr(worker, "model_runner", None) or worker.worker.model_runner
        return runner.model

    def sync(self, policy: Any) -> int:
        """Push the policy's current weights into the engine, in GPU memory; returns how many tensors."""
        if self.asleep:
            self.llm.wake_up(tags=["weights"])  # the KV cache stays freed until the weights are in
        model = self._model()
        n = 0
        for name, tensor in full_weights(self.tr, policy):
            t = tensor.to(self.dtype) if self.dtype is not None and tensor.is_floating_point() else tensor
            model.load_weights(weights=[(name, t)])
            n += 1
        if self.asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self.asleep = False
        self.llm.reset_prefix_cache()
        return n

    # ------------------------------------------------------------------------------------ sampling
    def requests(self, convs: Sequence[Sequence[Message]]) -> list[dict[str, Any]]:
        """The trainer's own prompts: rendered text (token ids for text-only models) and resized images."""
        texts, images = self.policy.prompts(convs)
        be = self.policy.backend
        out: list[dict[str, Any]] = []
        for text, ims in zip(texts, images, strict=True):
            if not be.is_vision:
                ids = be.tokenizer(text, add_special_tokens=not be.has_template)["input_ids"]
                out.append({"prompt_token_ids": list(ids)})
            elif ims:
                out.append({"prompt": text, "multi_modal_data": {"image": ims if len(ims) > 1 else ims[0]}})
            else:
                out.append({"prompt": text})
        return out

    def generate(self, convs: Sequence[Sequence[Message]], max_new_tokens: int, temperature: float,
                 seed: int) -> tuple[list[list[int]], list[int]]:
        from vllm import SamplingParams

        self.wake()
        # no per-request seed: identical prompts (a GRPO group) must get different samples; the engine's
        # own seed (constructor) keeps a run reproducible
        params = SamplingParams(temperature=temperature, max_tokens=max_new_tokens)
        outs = self.llm.generate(self.requests(convs), params, use_tqdm=False)
        return ([list(o.outputs[0].token_ids) for o in outs], [len(o.prompt_token_ids or []) for o in outs])

    def close(self) -> None:
        llm, self.llm = self.llm, None
        shutdown = getattr(getattr(llm, "llm_engine", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm


__all__ = ["VLLMGenerator", "clean_name", "full_weights", "group_of"]
