"""The ``hf`` backend: a local transformers model, batched, offline.

Loading: ``pretrained`` is a local directory or a hub id that is already in the local Hugging Face cache
(``local_files_only=True`` everywhere, so nothing is ever downloaded). Vision-language checkpoints load with
``AutoModelForImageTextToText`` and their processor (Qwen2-VL / Qwen2.5-VL through an image-only processor,
see :mod:`harness_plugins.hf.processors`); text checkpoints with ``AutoModelForCausalLM`` and ``AutoTokenizer``.

Generation: each request's messages go through the processor's chat template with content parts
``{"type": "image"}`` / ``{"type": "text"}``, the images (downscaled to ``max_image_size`` on the long
side) go to the processor as PIL images, and the batch is left-padded into one ``generate`` call per chunk
of ``max_batch_size``. Image placeholder tokens (and BOS/pad) are suppressed during sampling, so a random
or weak model can never emit a placeholder that the next turn would then mis-count.

A text-only model given an image raises :class:`TextOnlyModelError` at the first such request: every
episode of a vision task would fail the same way, so the run stops with one clear message instead.
"""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.types import Completion, GenParams, Request
from harness_plugins.images import fit_rgb

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")
_TRUE = {"1", "true", "yes", "on"}


class CheckpointNotFoundError(FileNotFoundError):
    """The checkpoint is neither a local directory nor in the local Hugging Face cache."""


class TextOnlyModelError(ValueError):
    """A text-only model was asked to read an image."""


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def resolve_checkpoint(pretrained: str, *, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """A local directory for ``pretrained``: the directory itself, or the hub id's snapshot in the local
    cache. Never touches the network; a miss raises :class:`CheckpointNotFoundError` saying where it looked
    and how to get the files."""
    path = Path(pretrained).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import constants, snapshot_download

    cache = str(cache_dir or constants.HF_HUB_CACHE)
    looks_like_id = pretrained.count("/") == 1 and not pretrained.startswith((".", "/", "~"))
    if looks_like_id:
        try:
            return Path(snapshot_download(pretrained, revision=revision, cache_dir=cache_dir,
                                          local_files_only=True))
        except Exception as exc:  # LocalEntryNotFoundError, a bad revision, an invalid id
            reason = f"{type(exc).__name__}"
        else:  # pragma: no cover - unreachable
            reason = ""
    else:
        reason = "not a hub id (owner/name)"
    raise CheckpointNotFoundError(
        f"checkpoint {pretrained!r} not found.\n"
        f"  looked for a local directory: {path.resolve()} (does not exist)\n"
        f"  looked in the Hugging Face cache: {cache} ({reason or 'not cached'})\n"
        f"  to get it: on a machine with network run `huggingface-cli download {pretrained}` "
        f"(or `hf download {pretrained}`) and copy the cache over (HF_HOME / HF_HUB_CACHE), or pass a local "
        f"directory: --model-args pretrained=/path/to/checkpoint")


def _batch_seed(params: GenParams, requests: Sequence[Request]) -> int:
    """A sampling seed that depends on the run's seed and on which episode turns are in this batch."""
    key = f"{params.seed or 0}|" + ",".join(f"{r.episode_seed}:{r.turn}" for r in requests)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


class HFBackend:
    """A transformers model (text or vision-language) driven with left-padded batched ``generate``."""

    def __init__(self, pretrained: str, *, dtype: str = "auto", device: str = "auto", max_batch_size: int = 16,
                 trust_remote_code: bool = False, max_image_size: int = 1024, revision: str | None = None,
                 cache_dir: str | None = None, attn_implementation: str | None = None) -> None:
        import torch
        from transformers import AutoConfig

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1; got {max_batch_size}")
        self.name = pretrained
        self.max_batch_size = int(max_batch_size)
        self.max_image_size = int(max_image_size)
        self.path = resolve_checkpoint(pretrained, revision=revision, cache_dir=cache_dir)
        common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}

        self.config = AutoConfig.from_pretrained(self.path, **common)
        self.model_type: str = getattr(self.config, "model_type", "")
        self.is_vision = self._is_vision(self.config)

        cuda = torch.cuda.is_available()
        if device == "auto":  # under torchrun / accelerate launch: this process's own GPU (LOCAL_RANK)
            from harness.distributed import local_device_index

            local = local_device_index() if cuda else None
            device = ("cuda" if local is None else f"cuda:{local}") if cuda else "cpu"
        if device.startswith("cuda") and not cuda:
            raise RuntimeError(f"device={device!r} but torch sees no CUDA GPU (torch {torch.__version__})")
        self.device = torch.device(device)
        if dtype == "auto":  # the checkpoint's dtype on a GPU; float32 on CPU, where half precision is slow
            torch_dtype: Any = "auto" if self.device.type == "cuda" else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        load: dict[str, Any] = {**common, "dtype": torch_dtype}
        if attn_implementation:
            load["attn_implementation"] = attn_implementation

        if self.is_vision:
            from transformers import AutoModelForImageTextToText

            self.processor = self._load_processor(common)
            self.tokenizer = self.processor.tokenizer
            self.model = AutoModelForImageTextToText.from_pretrained(self.path, **load)
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.path, **common)
            self.processor = self.tokenizer
            self.model = AutoModelForCausalLM.from_pretrained(self.path, **load)
        self.model.to(self.device).eval()

        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.has_template = bool(getattr(self.processor, "chat_template", None) or tok.chat_template)
        self.eos_ids = self._eos_ids()
        self.suppress_ids = self._suppress_ids()

    # ------------------------------------------------------------------------------------ loading
    @staticmethod
    def _is_vision(config: Any) -> bool:
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

        return getattr(config, "model_type", "") in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES or hasattr(
            config, "vision_config")

    def _load_processor(self, common: Mapping[str, Any]) -> Any:
        from harness_plugins.hf.processors import image_only_processor_class

        cls = image_only_processor_class(self.model_type)
        if cls is not None:
            return cls.from_pretrained(self.path, **common)
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(self.path, **common)

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        for src in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            for i in (src if isinstance(src, list) else [src]):
                if i is not None and i not in ids:
                    ids.append(int(i))
        return ids

    def _suppress_ids(self) -> list[int]:
        """Tokens a model must never sample: image/video placeholders, vision delimiters, BOS and pad."""
        tok, cfg = self.tokenizer, self.config
        cands: list[Any] = [getattr(self.processor, a, None) for a in ("image_token_id", "video_token_id")]
        for a in ("image_token_id", "image_token_index", "video_token_id", "vision_start_token_id",
                  "vision_end_token_id", "boi_token_id", "eoi_token_id"):
            cands.append(getattr(cfg, a, None))
        for t in (getattr(self.processor, "image_token", None), getattr(tok, "image_token", None),
                  "<image>", "<|image|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                  "<|vision_end|>"):
            if isinstance(t, str) and t in tok.get_vocab():
                cands.append(tok.convert_tokens_to_ids(t))
        cands += [tok.bos_token_id, tok.pad_token_id]
        vocab = int(getattr(cfg.get_text_config(), "vocab_size", 0) or 0)
        out = sorted({int(i) for i in cands if isinstance(i, int) and i >= 0 and i not in self.eos_ids})
        return [i for i in out if not vocab or i < vocab]

    # --------------------------------------------------------------------------------- prompting
    def _conversation(self, request: Request) -> tuple[list[dict[str, Any]], list[Image]]:
        messages: list[dict[str, Any]] = []
        images: list[Image] = []
        for m in request.messages:
            if not self.is_vision:
                if m.images:
                    raise TextOnlyModelError(
                        f"model {self.name!r} is text-only ({type(self.model).__name__}) but the task sent an "
                        "image; use a vision-language checkpoint, or the text variant of the task "
                        "(e.g. gp-l instead of gp-vl, virl-l instead of virl-vl)")
                messages.append({"role": m.role, "content": m.text})
                continue
            parts: list[dict[str, Any]] = []
            for p in m.content:
                if p.type == "image" and p.image is not None:
                    parts.append({"type": "image"})
                    images.append(fit_rgb(p.image, self.max_image_size))
                elif p.type == "text":
                    parts.append({"type": "text", "text": p.text})
            messages.append({"role": m.role, "content": parts})
        return messages, images

    def _prompt(self, messages: list[dict[str, Any]]) -> str:
        """The rendered prompt. The checkpoint's chat template runs under a work and size budget
        (:mod:`harness_plugins.hf.templates`): a template that loops for ever fails this request, not the machine."""
        if self.has_template:
            from harness_plugins.hf.templates import render_bounded

            return render_bounded(lambda: self.processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True), what=f"the chat template of {self.name}")
        # A base model without a chat template: a plain transcript that ends where the answer starts.
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def _encode(self, prompts: list[str], images: list[list[Image]]) -> Any:
        kw: dict[str, Any] = {"return_tensors": "pt", "padding": True, "add_special_tokens": not self.has_template}
        if not self.is_vision:
            return self.tokenizer(prompts, **kw)
        if not any(images):
            return self.processor(text=prompts, **kw)
        if self.model_type == "mllama":  # one image list per sample
            return self.processor(text=prompts, images=images, **kw)
        return self.processor(text=prompts, images=[im for ims in images for im in ims], **kw)

    # -------------------------------------------------------------------------------- generation
    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        convs = [self._conversation(r) for r in requests]
        out: list[Completion | None] = [None] * len(requests)
        for group in self._groups(convs):
            for start in range(0, len(group), self.max_batch_size):
                idx = group[start:start + self.max_batch_size]
                done = self._generate_chunk([requests[i] for i in idx], [convs[i] for i in idx], params)
                for i, c in zip(idx, done, strict=True):
                    out[i] = c
        return [c for c in out if c is not None]

    def _groups(self, convs: Sequence[tuple[Any, list[Image]]]) -> list[list[int]]:
        """Mllama's processor cannot mix samples with and without images in one batch: split those."""
        every = list(range(len(convs)))
        if self.model_type != "mllama":
            return [every]
        with_img = [i for i in every if convs[i][1]]
        without = [i for i in every if not convs[i][1]]
        return [g for g in (with_img, without) if g]

    def _generate_chunk(self, requests: Sequence[Request], convs: Sequence[tuple[Any, list[Image]]],
                        params: GenParams) -> list[Completion]:
        from harness_plugins.hf.templates import TemplateBudgetError

        out: list[Completion | None] = [None] * len(convs)
        prompts, keep = [], []
        for k, (msgs, _) in enumerate(convs):
            try:
                prompts.append(self._prompt(msgs))
                keep.append(k)
            except TemplateBudgetError as exc:  # this conversation's episode fails with the reason
                out[k] = Completion("", error=str(exc))
        if keep:
            ids, prompt_counts = self.sample(prompts, [convs[k][1] for k in keep], max_new_tokens=params.max_tokens,
                                             temperature=params.temperature, top_p=params.top_p,
                                             seed=_batch_seed(params, [requests[k] for k in keep]))
            for k, row, n_prompt in zip(keep, ids, prompt_counts, strict=True):
                out[k] = Completion(text=self.tokenizer.decode(row, skip_special_tokens=True), prompt_tokens=n_prompt,
                                    completion_tokens=len(row))
        return [c for c in out if c is not None]

    def inputs(self, prompts: list[str], images: list[list[Image]]) -> Any:
        """Encoded prompts on the model's device, pixel values in the model's dtype."""
        batch = self._encode(prompts, images).to(self.device)
        if "pixel_values" in batch and batch["pixel_values"].is_floating_point():
            batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        return batch

    def sample(self, prompts: list[str], images: list[list[Image]], *, max_new_tokens: int, temperature: float,
               top_p: float, seed: int, model: Any = None, synced_gpus: bool = False
               ) -> tuple[list[list[int]], list[int]]:
        """One ``generate`` over rendered prompts: each row's new token ids (cut after the first end-of-turn
        token, which is kept) and its prompt's token count. ``model`` generates with another module that
        holds this model's weights (a trainer's policy); the global torch RNG is left untouched."""
        import torch

        batch = self.inputs(prompts, images)
        gen: dict[str, Any] = {"max_new_tokens": max(1, int(max_new_tokens)),
                               "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.eos_ids or None}
        if self.suppress_ids:
            gen["suppress_tokens"] = self.suppress_ids
        if synced_gpus:
            gen["synced_gpus"] = True
        if temperature > 0:
            gen.update(do_sample=True, temperature=float(temperature), top_p=float(top_p), top_k=0)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            seqs = (model if model is not None else self.model).generate(**batch, **gen)
        new = seqs[:, batch["input_ids"].shape[1]:].tolist()
        eos = set(self.eos_ids)
        ids = [row[:next((k + 1 for k, t in enumerate(row) if t in eos), len(row))] for row in new]
        return ids, [int(n) for n in batch["attention_mask"].sum(dim=1).tolist()]

    def close(self) -> None:
        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def create(args: Mapping[str, Any]) -> HFBackend:
    """The factory behind ``--model hf --model-args pretrained=...,dtype=...``."""
    args = dict(args)
    known = {"pretrained", "model", "dtype", "device", "max_batch_size", "batch_size", "trust_remote_code",
             "max_image_size", "revision", "cache_dir", "attn_implementation"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f"hf backend: unknown model args {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    pretrained = args.get("pretrained") or args.get("model")
    if not pretrained:
        raise ValueError("hf backend needs pretrained=<local dir or hub id> "
                         "(e.g. --model hf --model-args pretrained=Qwen/Qwen2-VL-2B-Instruct)")
    return HFBackend(
        str(pretrained),
        dtype=str(args.get("dtype", "auto")),
        device=str(args.get("device", "auto")),
        max_batch_size=int(args.get("max_batch_size", args.get("batch_size", 16))),
        trust_remote_code=_flag(args.get("trust_remote_code", False)),
        max_image_size=int(args.get("max_image_size", 1024)),
        revision=args.get("revision"),
        cache_dir=args.get("cache_dir"),
        attn_implementation=args.get("attn_implementation"),
    )
