"""Image preparation the model backends share: downscaling for a model's input, and data URLs."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from PIL.Image import Image

ImageFormat = Literal["png", "jpeg"]


def fit_rgb(image: Image, max_side: int) -> Image:
    """RGB, and no side longer than ``max_side`` (aspect ratio kept; 0: no limit). The caller's image is
    not modified."""
    from PIL import Image as PILImage

    im = image if image.mode == "RGB" else image.convert("RGB")
    w, h = im.size
    if max_side > 0 and max(w, h) > max_side:
        scale = max_side / max(w, h)
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), PILImage.Resampling.BICUBIC)
    return im


def image_data_url(image: Image, fmt: ImageFormat = "png", jpeg_quality: int = 90) -> str:
    """Encode a PIL image as a ``data:image/...;base64,`` URL (PNG is lossless; JPEG is smaller)."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        img = image if image.mode in ("RGB", "L") else image.convert("RGB")
        img.save(buf, format="JPEG", quality=jpeg_quality)
        mime = "image/jpeg"
    elif fmt == "png":
        image.save(buf, format="PNG")
        mime = "image/png"
    else:
        raise ValueError(f"unsupported image format {fmt!r}; use 'png' or 'jpeg'")
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


__all__ = ["ImageFormat", "fit_rgb", "image_data_url"]
