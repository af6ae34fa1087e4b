"""Processor helpers that keep the hf backend free of torchvision.

Qwen2-VL and Qwen2.5-VL ship a processor that also owns a *video* processor, and transformers' video
processors need torchvision. torchvision is not part of the ``hf`` extra (the only wheel some machines get
is a CUDA build that breaks every transformers VLM import), so for these two architectures we load an
image-only processor instead: the same tokenizer, the PIL image processor and the same placeholder-token
expansion, without the video half. Real Qwen2-VL checkpoints load through it too.
"""

from __future__ import annotations

from typing import Any

from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin

#: model_type (config.json) -> the image-only processor class to load for it.
IMAGE_ONLY_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def _init_image_only(self: Any, image_processor: Any, tokenizer: Any, chat_template: str | None) -> None:
    self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
    self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
    self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
        self.image_token)
    self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
        self.video_token)
    ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


class Qwen2VLImageOnlyProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor without its video processor (which would need torchvision)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        _init_image_only(self, image_processor, tokenizer, chat_template)


class Qwen2_5_VLImageOnlyProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor without its video processor (which would need torchvision)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        _init_image_only(self, image_processor, tokenizer, chat_template)


def image_only_processor_class(model_type: str) -> type[ProcessorMixin] | None:
    """The image-only processor for ``model_type``, or None when AutoProcessor is fine."""
    return {"qwen2_vl": Qwen2VLImageOnlyProcessor, "qwen2_5_vl": Qwen2_5_VLImageOnlyProcessor}.get(model_type)
