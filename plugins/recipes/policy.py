"""The trainable policy: a checkpoint loaded by the hf backend, optional LoRA, optional value head.

Loading, chat templates, image handling and prompt encoding are the hf backend's own code
(:class:`harness_plugins.hf.backend.HFBackend`), so a policy sees exactly the prompts evaluation will show the
saved checkpoint. A training sample is (conversation so far, completion token ids): the prompt is encoded
left-padded as for ``generate`` and the completion ids are appended, which reproduces the sequence the
model sampled token for token (no re-tokenisation of generated text).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.compute import FlopsModel, Pass, count_params
from harness.types import Message, Request

HF_ARGS = ("pretrained", "dtype", "device", "max_image_size", "trust_remote_code", "revision", "cache_dir",
           "attn_implementation")
Conversation = Sequence[Message]


class ValueHead(nn.Module):
    """V(s) from the last-layer hidden state of the prompt's last token: an MLP with ReLUs between layers
    of ``widths`` (the paper's is 1024, 512), the last layer zero-initialised (V=0 at the start: no bias in
    the first advantages)."""

    def __init__(self, hidden: int, widths: Sequence[int] = (256,)) -> None:
        super().__init__()
        dims = [hidden, *(int(w) for w in widths)]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        out = nn.Linear(dims[-1], 1)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(*layers, out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h.to(self.net[-1].weight.dtype)).float().squeeze(-1)


class ActorCritic(nn.Module):
    """One module around the LM and the value head, so accelerate/FSDP wraps and syncs both together."""

    def __init__(self, lm: nn.Module, value_head: ValueHead | None) -> None:
        super().__init__()
        self.lm = lm
        self.value_head = value_head

    def forward(self, batch: Mapping[str, torch.Tensor], n_completion: int, temperature: float = 1.0,
                want_values: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-token log-probs of the completion (B, C) and, if asked, V(prompt) (B,)."""
        inputs = dict(batch)
        n_prompt = inputs["input_ids"].shape[1] - n_completion
        need_hidden = want_values and self.value_head is not None
        out = self.lm(**inputs, logits_to_keep=n_completion + 1, output_hidden_states=need_hidden, use_cache=False)
        logits = out.logits[:, -(n_completion + 1):-1].float()  # position t predicts token t + 1
        if temperature != 1.0:
            logits = logits / temperature
        targets = inputs["input_ids"][:, n_prompt:]
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        values = None
        if need_hidden:
            assert self.value_head is not None
            values = self.value_head(out.hidden_states[-1][:, n_prompt - 1])
        return logp, values


@dataclass
class Batch:
    """Model inputs plus the completion mask (B, C) and counts for FLOPs accounting."""

    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor
    n_completion: int
    tokens: int  # real (unpadded) tokens, images' placeholder tokens included
    passes: list[Pass]  # per sequence: real tokens, logit rows, images (FLOPs)


class Policy:
    """Owns the model, its tokenizer/processor (through the hf backend), LoRA and the value head.

    The model stays in training mode (transformers only checkpoints activations in training mode);
    ``disable_dropout`` zeroes every dropout so that training mode computes the same function as
    evaluation mode, which PPO's probability ratios need. ``dtype`` is the dtype of the trained weights
    (float32 master weights by default, whatever the evaluation dtype in ``model_args``); checkpoints are
    saved in the base checkpoint's own dtype.
    """

    def __init__(self, model_args: Mapping[str, Any], *, lora: bool = False, lora_r: int = 16,
                 lora_alpha: int = 32, lora_dropout: float = 0.0, lora_targets: str = "all-linear",
                 value_head: bool = False, value_widths: Sequence[int] = (256,), device: str | None = None,
                 gradient_checkpointing: bool = False, dtype: str | None = None,
                 disable_dropout: bool = False) -> None:
        from harness_plugins.hf.backend import create

        args = {k: v for k, v in model_args.items() if k in HF_ARGS}
        if device is not None:
            args["device"] = device
        if dtype is not None:
            args["dtype"] = dtype
        self.backend = create(args)
        self.pretrained = str(self.backend.path)
        lm = self.backend.model
        self.save_dtype = _declared_dtype(self.backend.config) or next(lm.parameters()).dtype
        self.n_params = count_params(lm)  # before LoRA: adapters are a rounding error in FLOPs
        self.lora = lora
        self._vision_processor = self.backend.processor if self.backend.is_vision else None
        if gradient_checkpointing:
            enable = getattr(lm, "activation_checkpointing_enable", None) or lm.gradient_checkpointing_enable
            enable({"use_reentrant": False})  # non-reentrant: works with frozen inputs (LoRA) too
        if lora:
            from peft import LoraConfig, get_peft_model

            targets: Any = lora_targets if lora_targets == "all-linear" else lora_targets.split(":")
            cfg = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets,
                             task_type="CAUSAL_LM")
            lm = get_peft_model(lm, cfg)
            self._lora_scale = lora_alpha / lora_r
        else:
            lm.requires_grad_(True)
        if disable_dropout:
            zero_dropout(lm)
        lm.train()
        hidden = int(self.backend.config.get_text_config().hidden_size)
        dev, wdtype = self.backend.device, next(lm.parameters()).dtype
        head = ValueHead(hidden, value_widths).to(dev, wdtype) if value_head else None
        self.module = ActorCritic(lm, head)
        base = lm.get_base_model() if lora else lm  # type: ignore[operator]
        self.flops = FlopsModel.of(base, self._vision_processor, head)
        self.tokenizer = self.backend.tokenizer
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id)

    @contextlib.contextmanager
    def eval_mode(self, module: nn.Module | None = None) -> Iterator[None]:
        """Evaluation mode for sampling (no dropout, KV cache), training mode again afterwards."""
        m = module if module is not None else self.module
        was = m.training
        m.eval()
        try:
            yield
        finally:
            m.train(was)

    @property
    def device(self) -> torch.device:
        return self.backend.device

    # ------------------------------------------------------------------------------------ encoding
    def prompts(self, convs: Sequence[Conversation]) -> tuple[list[str], list[list[Any]]]:
        texts, images = [], []
        for msgs in convs:
            messages, ims = self.backend._conversation(Request(tuple(msgs), 0, 0))
            texts.append(self.backend._prompt(messages))
            images.append(ims)
        return texts, images

    def encode(self, convs: Sequence[Conversation], completions: Sequence[Sequence[int]]) -> Batch:
        """Left-padded prompts (the hf backend's encoding, images included) + right-padded completions."""
        texts, images = self.prompts(convs)
        enc = self.backend.inputs(texts, images)
        dev = self.device
        width = max(1, max(len(c) for c in completions))
        ids = torch.full((len(completions), width), self.pad_id, dtype=torch.long, device=dev)
        mask = torch.zeros((len(completions), width), dtype=torch.long, device=dev)
        for i, c in enumerate(completions):
            ids[i, :len(c)] = torch.tensor(list(c), dtype=torch.long, device=dev)
            mask[i, :len(c)] = 1
        inputs = {k: v for k, v in enc.items()}
        inputs["input_ids"] = torch.cat([enc["input_ids"], ids], dim=1)
        inputs["attention_mask"] = torch.cat([enc["attention_mask"], mask], dim=1)
        if "cross_attention_mask" in inputs:  # Mllama: completion tokens see the images as the last prompt token does
            cam = inputs["cross_attention_mask"]
            inputs["cross_attention_mask"] = torch.cat([cam, cam[:, -1:].expand(-1, width, *cam.shape[2:])], dim=1)
        for key in [k for k in inputs if k.endswith("token_type_ids")]:  # text tokens are type 0 (Qwen2-VL's mm_...)
            inputs[key] = torch.cat([inputs[key], torch.zeros_like(ids, dtype=inputs[key].dtype)], dim=1)
        tokens = int(inputs["attention_mask"].sum())
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        passes = [Pass(int(n), len(c) + 1, ims) for n, c, ims in zip(lengths, completions, images, strict=True)]
        return Batch(inputs, mask, width, tokens, passes)

    def images_of(self, conv: Conversation) -> list[Any]:
        """A conversation's images as the model sees them (resized like the hf backend does)."""
        return self.backend._conversation(Request(tuple(conv), 0, 0))[1] if self.backend.is_vision else []

    def completion_ids(self, text: str) -> list[int]:
        """Token ids of a target answer as the model should produce it: the text, then end-of-turn."""
        return [*self.tokenizer(text, add_special_tokens=False)["input_ids"], self.eos_id]

    # ---------------------------------------------------------------------------------- generation
    def generate(self, convs: Sequence[Conversation], *, max_new_tokens: int, temperature: float,
                 seed: int, lm: nn.Module | None = None, synced_gpus: bool = False
                 ) -> tuple[list[list[int]], list[int]]:
        """Sampled completion ids (cut after the first end-of-turn) and each prompt's token count, through
        the hf backend's own sampling with the policy's (or the given) module."""
        texts, images = self.prompts(convs)
        model = lm if lm is not None else self.module.lm
        with self.eval_mode(model):
            return self._sample(texts, images, model, max_new_tokens, temperature, seed, synced_gpus)

    def _sample(self, texts: list[str], images: list[list[Any]], model: nn.Module, max_new_tokens: int,
                temperature: float, seed: int, synced_gpus: bool = False) -> tuple[list[list[int]], list[int]]:
        be = self.backend
        out_ids: list[list[int]] = [[] for _ in texts]
        prompt_tokens = [0] * len(texts)
        for group in be._groups([(None, ims) for ims in images]):
            ids, counts = be.sample([texts[i] for i in group], [images[i] for i in group],
                                    max_new_tokens=max_new_tokens, temperature=temperature, top_p=1.0, seed=seed,
                                    model=model, synced_gpus=synced_gpus)
            for j, i in enumerate(group):
                out_ids[i], prompt_tokens[i] = ids[j], counts[j]
        return out_ids, prompt_tokens

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # -------------------------------------------------------------------------------------- saving
    def plain_weights(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The base model's own weight names and values from an ActorCritic state, LoRA merged in."""
        return _plain_weights(state, self._lora_scale if self.lora else None)

    def checkpoint_format(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weights under the names ``save_pretrained`` writes to disk (transformers renames some modules
        on load and back on save), the names an inference engine loading the checkpoint expects."""
        try:
            from transformers.core_model_loading import revert_weight_conversion
        except ImportError:  # older transformers: memory and disk names are the same
            return dict(weights)
        lm = self.module.lm
        base = lm.get_base_model() if self.lora else lm  # type: ignore[operator]
        return revert_weight_conversion(base, dict(weights))

    def save(self, out_dir: str | Path, state_dict: Mapping[str, torch.Tensor] | None = None) -> Path:
        """A plain checkpoint directory the hf backend loads: merged weights, config, processor files.

        ``state_dict`` is the ActorCritic's state as accelerate gathers it (``get_state_dict``, which also
        works when training is sharded); by default the local module's. LoRA factors are merged into the
        base weights here (W + scale * B @ A), so nothing depends on peft at load time.
        """
        out = Path(out_dir)
        # written whole into a sibling folder, then swapped in: a crash or a full disk never leaves a
        # half-written checkpoint, and retraining into the same folder replaces it in one step
        tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self._write(tmp, state_dict)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        return out

    def _write(self, out: Path, state_dict: Mapping[str, torch.Tensor] | None) -> None:
        state = state_dict if state_dict is not None else self.module.state_dict()
        weights = {k: v.to(self.save_dtype) if v.is_floating_point() else v
                   for k, v in self.plain_weights(state).items()}
        lm = self.module.lm
        base = lm.get_base_model() if self.lora else lm  # type: ignore[operator]
        base.save_pretrained(out, state_dict=weights)
        self.backend.processor.save_pretrained(out)
        if self.backend.processor is not self.tokenizer:
            self.tokenizer.save_pretrained(out)
        if self.module.value_head is not None:
            head = {k[len("value_head."):]: v for k, v in state.items() if k.startswith("value_head.")}
            torch.save(head, out / "value_head.pt")


def zero_dropout(module: nn.Module) -> int:
    """Set every dropout probability in ``module`` to 0 (``nn.Dropout`` layers and the float
    ``attention_dropout`` / ``dropout`` attributes transformers' attention modules read); returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, nn.Dropout | nn.Dropout1d | nn.Dropout2d | nn.Dropout3d | nn.AlphaDropout):
            m.p = 0.0
            n += 1
        for attr in ("attention_dropout", "dropout", "dropout_rate", "attn_dropout"):
            if isinstance(getattr(m, attr, None), float) and not isinstance(getattr(m, attr), bool):
                setattr(m, attr, 0.0)
                n += 1
    return n


def _declared_dtype(config: Any) -> torch.dtype | None:
    """The dtype a checkpoint declares for its weights (config ``dtype`` / ``torch_dtype``), if any."""
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str) and isinstance(getattr(torch, value, None), torch.dtype):
        return getattr(torch, value)
    return None


def _plain_weights(state: Mapping[str, torch.Tensor], lora_scale: float | None) -> dict[str, torch.Tensor]:
    """ActorCritic keys -> the base model's own keys, with LoRA factors folded into their base weights."""
    out: dict[str, torch.Tensor] = {}
    lm = {k[3:]: v for k, v in state.items() if k.startswith("lm.")}
    for k, v in lm.items():
        if lora_scale is None:
            out[k] = v.detach().contiguous()
            continue
        if "lora_" in k or "modules_to_save" in k:
            continue
        name = k.removeprefix("base_model.model.")
        if ".base_layer." in k:
            stem, _, leaf = k.rpartition(".base_layer.")
            a, b = lm.get(f"{stem}.lora_A.default.weight"), lm.get(f"{stem}.lora_B.default.weight")
            if leaf == "weight" and a is not None and b is not None:
                v = v + (b.float() @ a.float()).to(v.dtype) * lora_scale
            name = name.replace(".base_layer.", ".")
        out[name] = v.detach().contiguous()
    return out


__all__ = ["HF_ARGS", "ActorCritic", "Batch", "Policy", "ValueHead", "zero_dropout"]
