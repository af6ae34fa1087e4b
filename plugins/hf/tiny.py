"""Tiny, randomly initialised models of real architectures, built entirely offline.

``make_tiny(arch, out_dir)`` writes a checkpoint directory (config, safetensors weights, tokenizer, chat
template, image processor / processor) with ``save_pretrained``, so the hf backend loads it through the very
code path a downloaded checkpoint takes. The weights are random: the models answer nonsense, fast. They
exist for tests, benchmarks of the harness itself and ``transformers serve`` fixtures.

The tokenizer is a byte-level BPE trained with the ``tokenizers`` library on a few hundred generated
strings (digits, cards, arithmetic, directions, chat words), plus each family's special tokens; the chat
templates follow each family's real layout (ChatML for Qwen, header tokens for Llama 3 / Mllama,
``USER:/ASSISTANT:`` for LLaVA). Image processors are the PIL ones (no torchvision) with tiny sizes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

ARCHS: tuple[str, ...] = ("llama", "qwen2", "qwen2-vl", "qwen2.5-vl", "llava", "mllama")
VISION_ARCHS: frozenset[str] = frozenset({"qwen2-vl", "qwen2.5-vl", "llava", "mllama"})
TINY_INFO_FILE = "harness-tiny.json"

# Text model size shared by every arch: hidden 64, 2 layers, 4 heads of 16 (2 KV heads).
_TEXT = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 8192,
         # Wider than the usual 0.02 so that random models give varied, input-dependent answers.
         "initializer_range": 0.3}

# ------------------------------------------------------------------------------------ chat templates

# A message's content is a plain string or a list of parts {"type": "image"} / {"type": "text", "text": ...}.
_PARTS = """{%- macro render(content, image) -%}
{%- if content is string -%}{{ content }}
{%- else -%}{%- for part in content -%}
{%- if part['type'] == 'image' or part['type'] == 'image_url' -%}{{ image }}
{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}
{%- endfor -%}{%- endif -%}
{%- endmacro -%}
"""

_CHATML = _PARTS + """{%- for m in messages -%}
{{ '<|im_start|>' + m['role'] + '\\n' }}{{ render(m['content'], IMAGE) }}{{ '<|im_end|>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"""

_LLAMA3 = _PARTS + """{{ '<|begin_of_text|>' }}{%- for m in messages -%}
{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}{{ render(m['content'], IMAGE) }}{{ '<|eot_id|>' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"""

_LLAVA = _PARTS + """{%- for m in messages -%}
{%- if m['role'] == 'system' -%}{{ render(m['content'], IMAGE) + '\\n' }}
{%- elif m['role'] == 'user' -%}{{ 'USER: ' }}{{ render(m['content'], IMAGE) }}{{ ' ' }}
{%- else -%}{{ 'ASSISTANT: ' }}{{ render(m['content'], IMAGE) }}{{ '</s>' }}{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"""


def _template(body: str, image: str) -> str:
    return body.replace("IMAGE", json.dumps(image).replace('"', "'"))


# ------------------------------------------------------------------------------------------ families

_QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
_LLAMA_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>", "<|finetune_right_pad_id|>", "<|image|>"]
_LLAVA_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def _corpus(seed: int) -> list[str]:
    """A few hundred strings covering what the harness's tasks say and expect back."""
    rng = random.Random(seed)
    ranks = ["A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K"]
    suits = ["hearts", "spades", "clubs", "diamonds"]
    words = [
        "the", "you", "are", "a", "an", "to", "of", "and", "in", "is", "it", "on", "for", "with", "this",
        "that", "what", "your", "answer", "cards", "card", "number", "numbers", "formula", "equation",
        "output", "json", "target", "each", "use", "exactly", "once", "move", "turn", "left", "right",
        "forward", "north", "south", "east", "west", "stop", "street", "intersection", "observation",
        "action", "current", "step", "instruction", "image", "picture", "shows", "face", "value", "jack",
        "queen", "king", "ace", "solve", "reach", "points", "verify", "correct", "incorrect", "try",
        "again", "assistant", "user", "system", "please", "reason", "think", "final", "result", "rule",
        "arithmetic", "operation", "plus", "minus", "times", "divided", "parentheses", "route", "landmark",
        "coffee", "shop", "bank", "hotel", "restaurant", "navigate", "destination", "heading", "slightly",
    ]
    out = []
    for _ in range(120):
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))).capitalize() + ".")
    for _ in range(80):
        a, b, c, d = (rng.randint(1, 13) for _ in range(4))
        out.append(f'{{"cards": ["{rng.choice(ranks)}", "{rng.choice(ranks)}"], '
                   f'"formula": "({a}+{b})*{c}-{d}={(a + b) * c - d}"}}')
    for _ in range(60):
        out.append(f"{rng.choice(ranks)} of {rng.choice(suits)}, {rng.choice(ranks)} of {rng.choice(suits)}")
    for _ in range(60):
        out.append(f'{{"current observation": "{rng.choice(words)}", "action": "turn_direction('
                   f'{rng.choice(["north", "south", "east", "west", "northeast", "southwest"])})"}}')
    out += [str(i) for i in range(200)] + ["+ - * / ( ) = , . : ; ! ? \" ' { } [ ] _ \n"]
    return out


def _tokenizer(specials: list[str], chat_template: str, seed: int, **named: Any) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **named)
    fast.chat_template = chat_template
    return fast


def _qwen_tokenizer(seed: int) -> Any:
    return _tokenizer(_QWEN_SPECIALS, _template(_CHATML, "<|vision_start|><|image_pad|><|vision_end|>"), seed,
                      eos_token="<|im_end|>", pad_token="<|endoftext|>",
                      additional_special_tokens=_QWEN_SPECIALS[1:])


def _llama_tokenizer(seed: int) -> Any:
    return _tokenizer(_LLAMA_SPECIALS, _template(_LLAMA3, "<|image|>"), seed, bos_token="<|begin_of_text|>",
                      eos_token="<|eot_id|>", pad_token="<|finetune_right_pad_id|>",
                      additional_special_tokens=_LLAMA_SPECIALS[2:])


def _llava_tokenizer(seed: int) -> Any:
    return _tokenizer(_LLAVA_SPECIALS, _template(_LLAVA, "<image>\n"), seed, unk_token="<unk>",
                      bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                      additional_special_tokens=["<image>"])


def _ids(tok: Any) -> dict[str, Any]:
    return {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id}


# ----------------------------------------------------------------------------------------- builders


def _build_llama(seed: int) -> tuple[Any, Any]:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _llama_tokenizer(seed)
    cfg = LlamaConfig(**_TEXT, **_ids(tok), tie_word_embeddings=True)
    return LlamaForCausalLM(cfg), tok


def _build_qwen2(seed: int) -> tuple[Any, Any]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = _qwen_tokenizer(seed)
    cfg = Qwen2Config(**_TEXT, **_ids(tok), tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg), tok


def _qwen_vl_image_processor() -> Any:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    # 14-pixel patches merged 2x2: every image becomes 4..16 placeholder tokens.
    return Qwen2VLImageProcessorPil(size={"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 16})


def _qwen_vl_common(tok: Any) -> dict[str, Any]:
    ids = tok.convert_tokens_to_ids
    text = {**_TEXT, **_ids(tok),
            # mrope sections (temporal, height, width) must sum to head_dim / 2 = 8.
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}}
    return {"text_config": text, "image_token_id": ids("<|image_pad|>"), "video_token_id": ids("<|video_pad|>"),
            "vision_start_token_id": ids("<|vision_start|>"), "vision_end_token_id": ids("<|vision_end|>"),
            "tie_word_embeddings": True}


def _build_qwen2_vl(seed: int) -> tuple[Any, Any]:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from harness_plugins.hf.processors import Qwen2VLImageOnlyProcessor

    tok = _qwen_tokenizer(seed)
    vision = {"depth": 2, "embed_dim": 32, "hidden_size": _TEXT["hidden_size"], "num_heads": 2, "mlp_ratio": 2,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    cfg = Qwen2VLConfig(vision_config=vision, **_qwen_vl_common(tok))
    proc = Qwen2VLImageOnlyProcessor(image_processor=_qwen_vl_image_processor(), tokenizer=tok,
                                     chat_template=tok.chat_template)
    return Qwen2VLForConditionalGeneration(cfg), proc


def _build_qwen2_5_vl(seed: int) -> tuple[Any, Any]:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from harness_plugins.hf.processors import Qwen2_5_VLImageOnlyProcessor

    tok = _qwen_tokenizer(seed)
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
              "out_hidden_size": _TEXT["hidden_size"], "patch_size": 14, "spatial_merge_size": 2,
              "temporal_patch_size": 2, "window_size": 56, "fullatt_block_indexes": [1]}
    cfg = Qwen2_5_VLConfig(vision_config=vision, **_qwen_vl_common(tok))
    proc = Qwen2_5_VLImageOnlyProcessor(image_processor=_qwen_vl_image_processor(), tokenizer=tok,
                                        chat_template=tok.chat_template)
    return Qwen2_5_VLForConditionalGeneration(cfg), proc


def _build_llava(seed: int) -> tuple[Any, Any]:
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = _llava_tokenizer(seed)
    # A 28x28 CLIP image: 2x2 patches of 14 + CLS; the "default" strategy drops CLS -> 4 image tokens.
    vision = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 28, "patch_size": 14,
              "projection_dim": 32}
    text = {"model_type": "llama", **_TEXT, **_ids(tok)}
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                      image_seq_length=4, vision_feature_layer=-1, vision_feature_select_strategy="default",
                      tie_word_embeddings=True)
    improc = CLIPImageProcessorPil(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    proc = LlavaProcessor(image_processor=improc, tokenizer=tok, patch_size=14, num_additional_image_tokens=1,
                          vision_feature_select_strategy="default", image_token="<image>",
                          chat_template=tok.chat_template)
    return LlavaForConditionalGeneration(cfg), proc


def _build_mllama(seed: int) -> tuple[Any, Any]:
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaProcessor
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

    tok = _llama_tokenizer(seed)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_global_layers": 1,
              "attention_heads": 2, "image_size": 28, "patch_size": 14, "max_num_tiles": 2,
              "intermediate_layers_indices": [0],
              # vision_output_dim = hidden x (len(intermediate_layers_indices) + 1)
              "vision_output_dim": 64, "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1]]}
    text = {**_TEXT, **_ids(tok), "cross_attention_layers": [1], "num_hidden_layers": 3}
    cfg = MllamaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<|image|>"))
    improc = MllamaImageProcessorPil(size={"height": 28, "width": 28}, max_image_tiles=2)
    proc = MllamaProcessor(image_processor=improc, tokenizer=tok, chat_template=tok.chat_template)
    return MllamaForConditionalGeneration(cfg), proc


_BUILDERS: dict[str, Callable[[int], tuple[Any, Any]]] = {
    "llama": _build_llama, "qwen2": _build_qwen2, "qwen2-vl": _build_qwen2_vl, "qwen2.5-vl": _build_qwen2_5_vl,
    "llava": _build_llava, "mllama": _build_mllama,
}


def _standard_processor_class(out: Path) -> None:
    """Record the stock processor class (as a real checkpoint does) rather than our image-only subclass, so
    tools with torchvision (vLLM, AutoProcessor) see a normal Qwen-VL checkpoint; the hf backend picks the
    image-only processor from the model type."""
    cfg_path = out / "processor_config.json"
    if not cfg_path.is_file():
        return
    cfg = json.loads(cfg_path.read_text())
    name = str(cfg.get("processor_class", ""))
    if name.endswith("ImageOnlyProcessor"):
        cfg["processor_class"] = name.replace("ImageOnlyProcessor", "Processor")
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def make_tiny(arch: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build a tiny random model of ``arch`` (one of :data:`ARCHS`) and save it to ``out_dir``.

    Returns the directory. The same ``seed`` gives the same weights and tokenizer. Each model is well under
    a few MB and builds in about a second on a CPU.
    """
    if arch not in _BUILDERS:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose one of: {', '.join(ARCHS)}")
    import torch

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model, proc = _BUILDERS[arch](seed)
    model.eval()
    tok = getattr(proc, "tokenizer", proc)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    gen.do_sample = False
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out)
        proc.save_pretrained(out)
        if proc is not tok:
            tok.save_pretrained(out)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    _standard_processor_class(out)
    (out / TINY_INFO_FILE).write_text(json.dumps({"arch": arch, "seed": seed, "random_weights": True}) + "\n")
    return out


__all__ = ["ARCHS", "TINY_INFO_FILE", "VISION_ARCHS", "make_tiny"]
