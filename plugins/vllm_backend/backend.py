"""The ``vllm`` backend: ``vllm.LLM.chat`` over each batch, for GPU machines.

Model args: ``model`` (or ``pretrained``; a local directory or a hub id), ``max_image_size`` (downscale
longer sides, default 1024), ``image_format`` (``pil``, default: PIL images go to vLLM as
``{"type": "image_pil"}`` parts with no encoding; ``data_url``: base64 PNG ``image_url`` parts, the
OpenAI-compatible form every vLLM release accepts), ``chat_template`` (a path or template string that
overrides the checkpoint's), and every other key goes to ``vllm.LLM(...)`` unchanged as an engine argument
(``tensor_parallel_size``, ``data_parallel_size``, ``max_model_len``, ``gpu_memory_utilization``, ``dtype``,
``limit_mm_per_prompt`` as a JSON object such as ``{"image": 2}``, ``enforce_eager``, ...).

Sampling: one ``SamplingParams`` per request, seeded from (run seed, episode seed, turn), so a sampled
answer does not depend on which other episodes share its batch. Token counts come from the request
outputs: prompt tokens include the expanded image placeholder tokens.

Nothing here imports vllm at module level: the message conversion and argument parsing are plain Python
and are unit-tested on machines without vllm or a GPU.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.types import Completion, GenParams, Request
from harness_plugins.images import fit_rgb, image_data_url

if TYPE_CHECKING:
    pass

#: model args this backend consumes itself; everything else is a vLLM engine argument.
OWN_ARGS = ("model", "pretrained", "max_image_size", "image_format", "chat_template")
#: engine args whose value is a JSON object/list when given as a string on the command line.
JSON_ARGS = ("limit_mm_per_prompt", "mm_processor_kwargs", "hf_overrides", "override_generation_config",
             "speculative_config", "compilation_config", "kv_transfer_config")
INT_ARGS = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_model_len",
            "max_num_seqs", "max_num_batched_tokens", "seed", "swap_space", "max_loras", "max_lora_rank")
FLOAT_ARGS = ("gpu_memory_utilization",)
BOOL_ARGS = ("trust_remote_code", "enforce_eager", "enable_prefix_caching", "enable_lora",
             "disable_log_stats", "enable_chunked_prefill")
IMAGE_FORMATS = ("pil", "data_url")

VLLM_MISSING = ("the vllm backend needs the `vllm` package and an NVIDIA GPU with CUDA: on a GPU machine install "
                "the vllm extra, `pip install 'harness[vllm]'` (it brings its own CUDA torch); on a CPU-only "
                "machine use the hf backend instead")


class VLLMUnavailableError(ImportError):
    """vllm is not installed, or there is no GPU for it."""


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def split_model_args(args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(own options, engine args). Engine args given as strings are converted where vLLM wants a number,
    a boolean or a JSON object; unknown keys pass through unchanged for vLLM itself to judge."""
    own: dict[str, Any] = {"max_image_size": 1024, "image_format": "pil", "chat_template": None}
    engine: dict[str, Any] = {}
    for key, value in args.items():
        if key in OWN_ARGS:
            own[key] = value
            continue
        try:
            if key in JSON_ARGS and isinstance(value, str):
                value = json.loads(value)
            elif key in INT_ARGS and value is not None:
                value = int(value)
            elif key in FLOAT_ARGS and value is not None:
                value = float(value)
            elif key in BOOL_ARGS:
                value = _bool(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"vllm backend: model arg {key}={value!r}: {exc}") from None
        engine[key] = value
    model = own.pop("pretrained", None) or own.get("model")
    if not model:
        raise ValueError("the vllm backend needs model=<local dir or hub id> "
                         "(e.g. --model vllm --model-args model=Qwen/Qwen2-VL-7B-Instruct)")
    own["model"] = str(model)
    own["max_image_size"] = int(own["max_image_size"])
    if own["image_format"] not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}; got {own['image_format']!r}")
    return own, engine


def to_chat_messages(request: Request, *, max_image_size: int = 1024, image_format: str = "pil"
                     ) -> list[dict[str, Any]]:
    """A request as OpenAI-style chat messages for ``LLM.chat``. Text-only messages keep a plain string
    content (every chat template accepts that); messages with images get a list of parts in order."""
    out: list[dict[str, Any]] = []
    for m in request.messages:
        if not m.images:
            out.append({"role": m.role, "content": m.text})
            continue
        parts: list[dict[str, Any]] = []
        for p in m.content:
            if p.type == "image" and p.image is not None:
                im = fit_rgb(p.image, max_image_size)
                if image_format == "pil":
                    parts.append({"type": "image_pil", "image_pil": im})
                else:
                    parts.append({"type": "image_url", "image_url": {"url": image_data_url(im)}})
            elif p.type == "text" and p.text:
                parts.append({"type": "text", "text": p.text})
        out.append({"role": m.role, "content": parts})
    return out


def request_seed(params: GenParams, request: Request) -> int:
    """A per-request sampling seed: the run's seed, the episode and the turn (31 bits, vLLM takes an int)."""
    key = f"{params.seed or 0}|{request.episode_seed}|{request.turn}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") >> 1


def sampling_kwargs(params: GenParams, request: Request) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` (temperature 0 is greedy in vLLM)."""
    kw: dict[str, Any] = {"max_tokens": max(1, int(params.max_tokens)), "temperature": float(params.temperature),
                          "seed": request_seed(params, request)}
    if params.temperature > 0:
        kw["top_p"] = float(params.top_p)
    return kw


def check_available() -> None:
    """Raise :class:`VLLMUnavailableError` naming the extra and the GPU requirement when vLLM can't run."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA install raising something else
        raise VLLMUnavailableError(f"{VLLM_MISSING} (import vllm failed: {type(exc).__name__}: {exc})") from None
    try:
        import torch

        gpu = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing entirely
        gpu = False
    if not gpu:
        raise VLLMUnavailableError(f"{VLLM_MISSING} (vllm is installed but torch sees no CUDA GPU)")


def parallel_plan(engine: Mapping[str, Any], world: int, rank: int
                  ) -> tuple[dict[str, Any], tuple[int, int, bool] | None]:
    """Engine args for this process, and its data-parallel share ``(share, shares, records)`` (None: one
    process). In one process, ``tensor_parallel_size`` (and ``pipeline_parallel_size``) spread one engine over
    GPUs; ``data_parallel_size`` > 1 is refused (vLLM's offline engine does not run it in one process: it
    hangs or raises). Under torchrun, every process runs vLLM's ``external_launcher`` executor: ``world`` =
    tensor x pipeline x data parallel sizes, each group of TP x PP processes is one engine playing one share of
    the episodes, and its first process records them."""
    engine = dict(engine)
    tp = int(engine.get("tensor_parallel_size") or 1)
    pp = int(engine.get("pipeline_parallel_size") or 1)
    if world <= 1:
        if int(engine.get("data_parallel_size") or 1) > 1:
            raise ValueError("vllm backend: data_parallel_size > 1 needs one process per data-parallel rank: "
                             f"launch with torchrun --nproc_per_node {tp * pp * int(engine['data_parallel_size'])} "
                             "-m harness.cli eval ... (tensor_parallel_size alone spreads one engine over GPUs)")
        return engine, None
    group = tp * pp
    dp = int(engine.get("data_parallel_size") or world // max(1, group))
    if group * dp != world:
        raise ValueError(f"vllm backend under {world} processes: tensor_parallel_size ({tp}) x pipeline_parallel_size "
                         f"({pp}) x data_parallel_size ({dp}) must equal the number of processes")
    engine.setdefault("distributed_executor_backend", "external_launcher")
    engine["data_parallel_size"] = dp
    engine.setdefault("seed", 0)  # every process of an engine must sample alike (requests carry their own seeds)
    return engine, (rank // group, dp, rank % group == 0)


class VLLMBackend:
    """A vLLM engine; ``generate`` sends the whole batch to ``LLM.chat`` and vLLM schedules it. Under torchrun
    it is one process of an ``external_launcher`` engine (:func:`parallel_plan`); ``data_parallel`` tells the
    runner which share of the episodes this process plays."""

    def __init__(self, args: Mapping[str, Any]) -> None:
        import os

        own, engine = split_model_args(args)
        engine, self.data_parallel = parallel_plan(engine, int(os.environ.get("WORLD_SIZE", "1") or 1),
                                                   int(os.environ.get("RANK", "0") or 0))
        check_available()
        from vllm import LLM

        self.model = own["model"]
        self.max_image_size = own["max_image_size"]
        self.image_format = own["image_format"]
        self.chat_template = self._read_template(own["chat_template"])
        self.llm = LLM(model=self.model, **engine)
        if self.data_parallel is not None:  # vLLM's own numbering wins where it says
            config = getattr(getattr(self.llm, "llm_engine", None), "vllm_config", None)
            share = getattr(getattr(config, "parallel_config", None), "data_parallel_rank", None)
            if isinstance(share, int):
                self.data_parallel = (share, self.data_parallel[1], self.data_parallel[2])

    @staticmethod
    def _read_template(value: str | None) -> str | None:
        if not value:
            return None
        from pathlib import Path

        path = Path(str(value)).expanduser()
        return path.read_text() if path.is_file() else str(value)

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        from vllm import SamplingParams

        if not requests:
            return []
        convs = [to_chat_messages(r, max_image_size=self.max_image_size, image_format=self.image_format)
                 for r in requests]
        sps = [SamplingParams(**sampling_kwargs(params, r)) for r in requests]
        outputs = self.llm.chat(convs, sampling_params=sps, use_tqdm=False, add_generation_prompt=True,
                                chat_template=self.chat_template)
        result = []
        for o in outputs:
            best = o.outputs[0] if o.outputs else None
            if best is None:
                result.append(Completion("", error="vLLM returned no output for this request"))
                continue
            result.append(Completion(best.text, prompt_tokens=len(o.prompt_token_ids or ()),
                                     completion_tokens=len(best.token_ids or ())))
        return result

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is None:
            return
        shutdown = getattr(getattr(llm, "llm_engine", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm
        import gc

        gc.collect()


def create(args: Mapping[str, Any]) -> VLLMBackend:
    return VLLMBackend(args)
