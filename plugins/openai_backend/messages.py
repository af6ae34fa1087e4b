"""Harness conversations -> chat-completions ``messages`` payloads.

Text-only turns become plain string contents (accepted by every OpenAI-compatible server); a turn with
images becomes a list of parts in the message's own order, each image a base64 ``data:`` URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.types import Message
from harness_plugins.images import ImageFormat, image_data_url

if TYPE_CHECKING:
    pass

def to_chat_messages(messages: Sequence[Message], *, image_format: ImageFormat = "png",
                     image_detail: str | None = None) -> list[dict[str, Any]]:
    """Convert harness messages to the ``messages`` list of a chat-completions request."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        if not any(p.type == "image" for p in msg.content):
            out.append({"role": msg.role, "content": msg.text})
            continue
        if msg.role != "user":
            raise ValueError(f"images are only supported in user messages, not in a {msg.role!r} message")
        parts: list[dict[str, Any]] = []
        for part in msg.content:
            if part.type == "image":
                if part.image is None:
                    continue
                image_url: dict[str, Any] = {"url": image_data_url(part.image, image_format)}
                if image_detail:
                    image_url["detail"] = image_detail
                parts.append({"type": "image_url", "image_url": image_url})
            elif part.text:
                parts.append({"type": "text", "text": part.text})
        out.append({"role": msg.role, "content": parts})
    return out
