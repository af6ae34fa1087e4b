"""Training and inference compute.

Two levels. :class:`FlopsMeter` keeps a run's totals; the ``6 N D`` / ``2 N D`` rule of scaling-law papers
(Kaplan et al. 2020: a multiply-add per weight per token forward, twice that backward) is its fallback.
:class:`FlopsModel` counts the matrix multiplications a given forward pass really runs (the convention
``torch.utils.flop_counter`` uses; elementwise work, norms and softmax are not counted):

- every linear layer of the language model on every token of the sequence (prompt tokens included);
- the LM head only on the positions that produce logits (the completion, for a training pass; one per
  new token when generating);
- attention scores and the weighted sum, ``4 * width * n_query * n_key`` per layer, dense (the whole
  ``n x n`` product, as eager and SDPA-math kernels compute it; causal kernels skip about half);
- the vision tower per image patch (Qwen2-VL, Qwen2.5-VL with its windows, LLaVA's CLIP) or per tile
  (Mllama), its projector per image token, and Mllama's cross-attention over the vision tokens; modules
  that do not run on an input (a vision tower on text, Mllama's cross-attention layers without images)
  are left out;
- a backward pass costs twice its forward for weights that train (input and weight gradients), once for
  frozen ones (LoRA's base weights: input gradients only). Activation recomputation (gradient
  checkpointing) is not counted: FLOPs measure the algorithm, not the memory trade-off.

Padding is never counted: a batch costs what its sequences would cost one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

TRAIN_FLOPS_PER_PARAM_TOKEN = 6
INFER_FLOPS_PER_PARAM_TOKEN = 2


def count_params(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Parameters that cost FLOPs per token: every weight except embedding-table lookups.

    An ``nn.Embedding`` is a gather (no multiply-adds), so its table is left out, as in Kaplan et al.'s
    "non-embedding" count. The output projection (LM head) is a real matmul over the vocabulary, so it is
    counted once, even when its weight is tied to the input embedding. Vision towers and projectors are
    counted like any other layer. Shared (tied) tensors count once.
    """
    import torch

    lookups = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    head = _output_params(model)
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        if id(p) in lookups and id(p) not in head:
            continue
        total += p.numel()
    return total


def _output_params(model: torch.nn.Module) -> set[int]:
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    return {id(p) for p in head.parameters()} if head is not None else set()


def attention_flops_per_token(n_layers: int, d_attn: int, context: int) -> int:
    """Forward FLOPs per token of the attention scores and the weighted sum (QK^T and AV), for a token
    attending to ``context`` positions: 2 matmuls x 2 FLOPs per multiply-add x layers x width x context."""
    return 4 * n_layers * d_attn * context


@dataclass
class FlopsMeter:
    """Running totals of a training run's tokens and the FLOPs they cost.

    Each ``add_*`` takes the tokens and, when the caller measured them, their FLOPs; without FLOPs the
    tokens are booked at ``6 N`` (trained) or ``2 N`` (no-grad) FLOPs each. ``n_params`` is fixed for the run.
    """

    n_params: int
    trained_tokens: int = 0
    rollout_tokens: int = 0
    forward_tokens: int = 0  # no-grad passes that are not generation (e.g. PPO's old log-probs and values)
    trained_flops: float = 0.0
    rollout_flops: float = 0.0
    forward_flops: float = 0.0

    def add_trained(self, tokens: int, flops: float | None = None) -> None:
        self.trained_tokens += int(tokens)
        self.trained_flops += TRAIN_FLOPS_PER_PARAM_TOKEN * self.n_params * int(tokens) if flops is None else flops

    def add_rollout(self, tokens: int, flops: float | None = None) -> None:
        self.rollout_tokens += int(tokens)
        self.rollout_flops += INFER_FLOPS_PER_PARAM_TOKEN * self.n_params * int(tokens) if flops is None else flops

    def add_forward(self, tokens: int, flops: float | None = None) -> None:
        self.forward_tokens += int(tokens)
        self.forward_flops += INFER_FLOPS_PER_PARAM_TOKEN * self.n_params * int(tokens) if flops is None else flops

    @property
    def flops(self) -> float:
        return float(self.trained_flops + self.rollout_flops + self.forward_flops)

    def as_dict(self) -> dict[str, Any]:
        return {"flops": self.flops, "n_params": self.n_params, "trained_tokens": self.trained_tokens,
                "rollout_tokens": self.rollout_tokens, "forward_tokens": self.forward_tokens,
                "trained_flops": self.trained_flops, "rollout_flops": self.rollout_flops,
                "forward_flops": self.forward_flops}


def estimate_flops(n_params: int, trained_tokens: int = 0, rollout_tokens: int = 0) -> float:
    """``6 N D_train + 2 N D_rollout``."""
    m = FlopsMeter(n_params)
    m.add_trained(trained_tokens)
    m.add_rollout(rollout_tokens)
    return m.flops


def _linear_weights(module: torch.nn.Module) -> int:
    """Multiply-adds per row of all linear and convolution layers in ``module`` (weights only: biases
    are additions), counting shared tensors once."""
    import torch

    seen: set[int] = set()
    total = 0
    for m in module.modules():
        if isinstance(m, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d):
            w = m.weight
            if id(w) not in seen:
                seen.add(id(w))
                total += w.numel()
    return total


@dataclass
class VisionTower:
    """One VLM family's vision work per image, from what its image processor makes of that image."""

    family: str
    per_patch: int  # multiply-adds per encoder token (encoder layers; class and padding tokens included)
    per_token: int  # multiply-adds per image token after merging (merger / projector)
    width: int  # encoder attention width (hidden size)
    layers: int  # encoder layers
    processor: Any = None
    config: Any = None
    embed: int = 0  # the patch embedding's multiply-adds per image patch
    cross_kv: int = 0  # Mllama: k/v projection multiply-adds per vision token, all cross-attention layers
    cross_width: int = 0  # Mllama: attention width summed over cross-attention layers
    cross_rest: int = 0  # Mllama: the cross-attention layers' other weights, per text token
    _cache: dict[tuple[int, int], tuple[float, int, float]] = field(default_factory=dict)

    def image(self, image: Image) -> tuple[float, int, float]:
        """(forward FLOPs of the vision tower and projector for this image, vision tokens it yields for
        cross-attention, the patch embedding's share of the FLOPs); cached per image size."""
        key = image.size
        if key not in self._cache:
            flops, tokens = self._measure(image)
            self._cache[key] = (flops, tokens, 2.0 * self.embed * self._patches(image))
        return self._cache[key]

    def _patches(self, image: Image) -> int:
        cfg = self.config
        if self.family in ("qwen2_vl", "qwen2_5_vl"):
            t, h, w = (int(x) for x in self.processor(images=[image], return_tensors="pt")["image_grid_thw"][0])
            return t * h * w
        p = int(cfg.patch_size)
        if self.family == "llava":
            pv = self.processor(images=[image], return_tensors="pt")["pixel_values"]
            return (pv.shape[-2] // p) * (pv.shape[-1] // p)
        tiles = int(self.processor(images=[[image]], return_tensors="pt")["pixel_values"].shape[2])
        return tiles * (int(cfg.image_size) // p) ** 2

    def _measure(self, image: Image) -> tuple[float, int]:
        cfg = self.config
        if self.family in ("qwen2_vl", "qwen2_5_vl"):
            t, h, w = (int(x) for x in self.processor(images=[image], return_tensors="pt")["image_grid_thw"][0])
            patches, merge = t * h * w, int(cfg.spatial_merge_size)
            attn = 4 * self.width * sum(n * n for n in self._windows(t, h, w, merge))
            return 2.0 * (patches * (self.embed + self.per_patch) + patches // merge ** 2 * self.per_token) + attn, 0
        if self.family == "llava":
            pv = self.processor(images=[image], return_tensors="pt")["pixel_values"]
            p = int(cfg.patch_size)
            patches = (pv.shape[-2] // p) * (pv.shape[-1] // p)
            tokens = patches + 1  # the class token
            return 2.0 * (patches * (self.embed + self.per_token) + tokens * self.per_patch) + \
                4.0 * self.width * tokens ** 2 * self.layers, 0
        # mllama: every tile slot runs (padded tiles too); tokens per tile padded to a multiple of 8
        out = self.processor(images=[[image]], return_tensors="pt")
        tiles = int(out["pixel_values"].shape[2])
        p = int(cfg.patch_size)
        per_tile = (int(cfg.image_size) // p) ** 2 + 1
        padded = per_tile + (8 - per_tile % 8) % 8
        seq = tiles * padded
        vision = 2.0 * (seq * self.per_patch + tiles * (per_tile - 1) * self.embed) + \
            4.0 * self.width * seq ** 2 * self.layers
        return vision + 2.0 * tiles * per_tile * self.per_token, tiles * per_tile

    def _windows(self, t: int, h: int, w: int, merge: int) -> list[int]:
        """Attention sequence lengths (in patches) per encoder layer: the whole image for Qwen2-VL and
        Qwen2.5-VL's full-attention layers, windows of the merged grid for the others."""
        whole = [t * h * w] * self.layers
        size = getattr(self.config, "window_size", None)
        if self.family != "qwen2_5_vl" or not size:
            return whole
        unit = int(size) // merge // int(self.config.patch_size)  # window side in merged cells
        gh, gw = h // merge, w // merge
        cells = [min(unit, gh - i) * min(unit, gw - j) for i in range(0, gh, unit) for j in range(0, gw, unit)]
        windowed = [t * c * merge * merge for c in cells]
        full = set(getattr(self.config, "fullatt_block_indexes", []) or [])
        out: list[int] = []
        for k in range(self.layers):
            out += [t * h * w] if k in full else windowed
        return out


_VISION_ROOTS = {"qwen2_vl": "visual", "qwen2_5_vl": "visual", "llava": "vision_tower", "mllama": "vision_model"}


def _vision_tower(model: torch.nn.Module, processor: Any) -> VisionTower | None:
    cfg = getattr(model, "config", None)
    family = getattr(cfg, "model_type", "")
    root_name = _VISION_ROOTS.get(family)
    inner = getattr(model, "model", model)
    root = getattr(inner, root_name, None) if root_name else None
    if root is None:
        return None
    vc = cfg.vision_config
    image_processor = getattr(processor, "image_processor", processor)
    if family in ("qwen2_vl", "qwen2_5_vl"):
        merger, embed = _linear_weights(root.merger), _linear_weights(root.patch_embed)
        width = int(getattr(vc, "embed_dim", None) or vc.hidden_size)
        return VisionTower(family, _linear_weights(root) - merger - embed, merger, width, int(vc.depth),
                           image_processor, vc, embed=embed)
    projector = _linear_weights(inner.multi_modal_projector)
    if family == "llava":
        embed = _linear_weights(root.embeddings)
        return VisionTower(family, _linear_weights(root) - embed, projector, int(vc.hidden_size),
                           int(vc.num_hidden_layers), image_processor, vc, embed=embed)
    tc = cfg.get_text_config()
    layers = int(vc.num_hidden_layers) + int(vc.num_global_layers)
    embed = _linear_weights(root.patch_embedding)
    tower = VisionTower(family, _linear_weights(root) - embed, projector, int(vc.hidden_size), layers,
                        image_processor, vc, embed=embed)
    lm = inner.language_model
    for i in tc.cross_attention_layers:
        layer = lm.layers[i]
        kv = _linear_weights(layer.cross_attn.k_proj) + _linear_weights(layer.cross_attn.v_proj)
        tower.cross_kv += kv
        tower.cross_rest += _linear_weights(layer) - kv
        tower.cross_width += int(tc.num_attention_heads) * int(tc.hidden_size // tc.num_attention_heads)
    return tower


@dataclass
class Pass:
    """One sequence of a forward pass: its tokens (image placeholders included), how many positions
    produce logits, and its images."""

    tokens: int
    logits: int
    images: Sequence[Image] = ()


@dataclass
class FlopsModel:
    """Matmul FLOPs of a model's forward, training and generation passes (see the module docstring)."""

    body: int  # multiply-adds per text token in the decoder layers that always run
    head: int  # multiply-adds per logit row
    width: int  # self-attention width summed over layers
    vision: VisionTower | None = None
    value: int = 0  # a value head's multiply-adds per sequence (PPO)

    @classmethod
    def of(cls, model: torch.nn.Module, processor: Any = None, value_head: torch.nn.Module | None = None
           ) -> FlopsModel:
        cfg = model.config
        tc = cfg.get_text_config()
        decoder = model.get_decoder()
        head = model.get_output_embeddings()
        cross = set(getattr(tc, "cross_attention_layers", None) or [])
        layers = list(decoder.layers)
        body = sum(_linear_weights(layer) for i, layer in enumerate(layers) if i not in cross)
        head_dim = int(getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads)
        width = (len(layers) - len(cross)) * int(tc.num_attention_heads) * head_dim
        vision = _vision_tower(model, processor) if processor is not None else None
        return cls(body, head.weight.numel() if head is not None else 0, width, vision,
                   _linear_weights(value_head) if value_head is not None else 0)

    def forward(self, passes: Sequence[Pass], *, values: bool = False) -> float:
        """FLOPs of one forward pass over these sequences."""
        total = 0.0
        for p in passes:
            n = p.tokens
            total += 2.0 * (self.body * n + self.head * p.logits) + 4.0 * self.width * n * n
            total += self._images(p.images, n) + (2.0 * self.value if values else 0.0)
        return total

    def train(self, passes: Sequence[Pass], *, frozen_base: bool = False, values: bool = False) -> float:
        """Forward plus backward: the backward costs two forwards for trained weights, one for frozen;
        the patch embedding computes no input gradient (its input is pixels)."""
        embed = sum(self.vision.image(im)[2] for p in passes for im in p.images) if self.vision else 0.0
        return (2.0 if frozen_base else 3.0) * self.forward(passes, values=values) - embed

    def generate(self, prompt_tokens: int, new_tokens: int, images: Sequence[Image] = ()) -> float:
        """Prefill of the prompt, then one forward per new token after the first (KV cache): new tokens
        attend to the prompt and to each other; one logit row per new token."""
        if new_tokens <= 0:
            return 0.0
        p, g = prompt_tokens, new_tokens
        decoded = g - 1  # the last new token is never fed back
        keys = p * p + decoded * p + decoded * (decoded + 1) // 2
        return 2.0 * (self.body * (p + decoded) + self.head * g) + 4.0 * self.width * keys + \
            self._images(images, p + decoded)

    def _images(self, images: Sequence[Image], text_tokens: int) -> float:
        if not images or self.vision is None:
            return 0.0
        v = self.vision
        total, vision_tokens = 0.0, 0
        for im in images:
            flops, n, _ = v.image(im)
            total += flops
            vision_tokens += n
        if v.cross_kv:  # Mllama: cross-attention layers run on text tokens, k/v on the vision tokens
            total += 2.0 * (v.cross_rest * text_tokens + v.cross_kv * vision_tokens)
            total += 4.0 * v.cross_width * text_tokens * vision_tokens
        return total


__all__ = ["FlopsMeter", "FlopsModel", "Pass", "VisionTower", "attention_flops_per_token", "count_params",
           "estimate_flops"]
