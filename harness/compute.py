"""Training and inference compute, estimated the way scaling-law papers do (Kaplan et al. 2020).

A dense transformer spends about 2*N FLOPs per token in a forward pass (one multiply-add per weight) and
twice that again in the backward pass (gradients for activations and for weights), so:

- trained tokens cost ``6 * N * D`` (forward + backward over every token of a training sequence,
  prompt tokens included: they are processed even when the loss ignores them);
- generated (rollout) tokens and other no-grad forward passes cost ``2 * N * D``.

``N`` is :func:`count_params` (see there for what is counted). Image tokens are counted in ``D`` like
text tokens: they are positions of the language model's sequence. The estimate leaves out attention
score FLOPs (``~2 * n_layer * context * d_model`` per token forward, small when the context is short next
to ``6 * d_model``) and the vision tower's per-patch work beyond its parameter count;
:func:`attention_flops_per_token` gives the first term for callers that want it.

The module is model-agnostic: it only looks at ``torch.nn`` modules, never at a model family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

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


__all__ = ["FlopsMeter", "attention_flops_per_token", "count_params", "estimate_flops"]
