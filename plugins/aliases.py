"""First-party model aliases: friendly names for a backend plus its arguments.

Vision-language aliases default to the ``hf`` backend, which runs anywhere transformers does. The Qwen-VL
models also have ``-vllm`` aliases for GPU machines (vLLM serves Qwen2-VL and Qwen2.5-VL; it dropped Mllama
in 0.10.2, so Llama-3.2-Vision has no vllm alias). Hub ids are read from the local Hugging Face cache only:
download them first (``huggingface-cli download ID``) or override ``pretrained`` with a local directory.
Users add or override aliases in ``~/.config/harness/config.toml`` (``[models.NAME] backend = "hf"`` ...).
"""

from __future__ import annotations

from harness.hookspecs import hookimpl
from harness.types import ModelAlias

_HF_VLMS = {
    "llama-3.2-vision": ("meta-llama/Llama-3.2-11B-Vision-Instruct",
                         "Llama 3.2 11B Vision Instruct (the paper's model); hf only: vLLM no longer serves Mllama"),
    "qwen2-vl-2b": ("Qwen/Qwen2-VL-2B-Instruct", "Qwen2-VL 2B Instruct; on a GPU also qwen2-vl-2b-vllm"),
    "qwen2-vl-7b": ("Qwen/Qwen2-VL-7B-Instruct", "Qwen2-VL 7B Instruct; on a GPU also qwen2-vl-7b-vllm"),
    "qwen2.5-vl-3b": ("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen2.5-VL 3B Instruct; on a GPU also qwen2.5-vl-3b-vllm"),
    "qwen2.5-vl-7b": ("Qwen/Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL 7B Instruct; on a GPU also qwen2.5-vl-7b-vllm"),
}
_HF_TEXT = {
    "llama-3.2-1b": ("meta-llama/Llama-3.2-1B-Instruct", "Llama 3.2 1B Instruct (text only: gp-l, virl-l)"),
    "llama-3.2-3b": ("meta-llama/Llama-3.2-3B-Instruct", "Llama 3.2 3B Instruct (text only: gp-l, virl-l)"),
    "llama-3.1-8b": ("meta-llama/Llama-3.1-8B-Instruct", "Llama 3.1 8B Instruct (text only: gp-l, virl-l)"),
    "qwen2.5-1.5b": ("Qwen/Qwen2.5-1.5B-Instruct", "Qwen2.5 1.5B Instruct (text only: gp-l, virl-l)"),
    "qwen2.5-7b": ("Qwen/Qwen2.5-7B-Instruct", "Qwen2.5 7B Instruct (text only: gp-l, virl-l)"),
}
# vLLM: one image per prompt is what the tasks send; the context fits a multi-turn verification episode.
_VLLM_ARGS = {"max_model_len": 8192, "limit_mm_per_prompt": {"image": 4}}


@hookimpl
def harness_models() -> list[ModelAlias]:
    out = [ModelAlias(name, "hf", {"pretrained": ckpt}, desc) for name, (ckpt, desc) in _HF_VLMS.items()]
    out += [ModelAlias(name, "hf", {"pretrained": ckpt}, desc) for name, (ckpt, desc) in _HF_TEXT.items()]
    out += [ModelAlias(f"{name}-vllm", "vllm", {"model": ckpt, **_VLLM_ARGS},
                       f"{desc.split(';')[0]} on vLLM (NVIDIA GPU; needs the vllm extra)")
            for name, (ckpt, desc) in _HF_VLMS.items() if name.startswith("qwen")]
    out += [
        ModelAlias("gpt-4o", "openai", {"model": "gpt-4o"}, "OpenAI GPT-4o (OPENAI_API_KEY from the environment)"),
        ModelAlias("gpt-4o-mini", "openai", {"model": "gpt-4o-mini"},
                   "OpenAI GPT-4o mini (OPENAI_API_KEY from the environment)"),
    ]
    return out
