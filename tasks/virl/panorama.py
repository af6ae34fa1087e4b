"""Street views cut from the paper's panoramas, in its 2x2 grid.

For an agent heading ``h`` the paper asks for four 90-degree views, 640x640 pixels, pitch 0, at headings
``h-135``, ``h-45``, ``h+45`` and ``h+135`` (its ``get_heading_list_by_range_and_fov`` over 360 degrees), resizes
each to ``resolution`` x ``resolution`` (1200) and pastes them left to right, top to bottom on a black canvas with
5-pixel gaps. Its prompt calls the grid ``[front, right / back, left]``, but the views are centred on the four
diagonals (back-left, front-left, front-right, back-right): the paper's quirk, kept.

Each view is the paper's equirectangular-to-perspective mapping (``get_perspective_from_panorama``): the heading
is shifted by ``-180`` plus the panorama's ``rotation`` from its metadata, and pixels are sampled with OpenCV's
bicubic ``remap`` (wrapping at the seam). With ``opencv-python-headless`` installed (``pip install
'harness[virl-data]'``) the views are the paper's pixel for pixel; without it, the same mapping is sampled
bilinearly with numpy.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

VIEW_SIZE = 640  # the paper's STREET_VIEW.SIZE
FOV = 90
GAP = 5  # black line between the views
PAPER_RESOLUTION = 1200


def view_headings(heading: float) -> list[float]:
    """The paper's four view headings for an agent heading (grid order)."""
    start = (heading - 4 // 2 * FOV + FOV / 2) % 360
    return [(start + i * FOV) % 360 for i in range(4)]


try:  # optional: the paper's own resampling
    import cv2 as _cv2
except ImportError:  # pragma: no cover - exercised where OpenCV is absent
    _cv2 = None


def have_opencv() -> bool:
    return _cv2 is not None


@functools.lru_cache(maxsize=32)
def _maps(pano_h: int, pano_w: int, heading: float, height: int, width: int, use_cv2: bool
          ) -> tuple[np.ndarray, np.ndarray]:
    """The paper's sampling maps (float32 X and Y panorama coordinates per output pixel) for one view."""
    f = 0.5 * width * 1 / np.tan(0.5 * FOV / 180.0 * np.pi)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], np.float32)
    k_inv = np.linalg.inv(k)
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    z = np.ones_like(x)
    xyz = np.concatenate([x[..., None], y[..., None], z[..., None]], axis=-1)
    xyz = xyz @ k_inv.T
    y_axis = np.array([0.0, 1.0, 0.0], np.float32)
    x_axis = np.array([1.0, 0.0, 0.0], np.float32)
    if use_cv2:
        r1, _ = _cv2.Rodrigues(y_axis * np.radians(heading))
        r2, _ = _cv2.Rodrigues(np.dot(r1, x_axis) * np.radians(0))
    else:  # a rotation about the vertical axis; pitch 0 leaves the second rotation the identity
        t = np.radians(heading)
        r1 = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]]).astype(np.float32)
        r2 = np.eye(3, dtype=np.float32)
    rot = r2 @ r1
    xyz = xyz @ rot.T
    norm = np.linalg.norm(xyz, axis=-1, keepdims=True)
    unit = xyz / norm
    lon = np.arctan2(unit[..., 0:1], unit[..., 2:])
    lat = np.arcsin(unit[..., 1:2])
    map_x = ((lon / (2 * np.pi) + 0.5) * (pano_w - 1)).astype(np.float32)[..., 0]
    map_y = ((lat / np.pi + 0.5) * (pano_h - 1)).astype(np.float32)[..., 0]
    return map_x, map_y


def perspective(pano: np.ndarray, heading: float, north_rotation: float, size: int = VIEW_SIZE) -> Image.Image:
    """One view of an RGB panorama array (H x W x 3, uint8) at a compass heading."""
    adjusted = ((heading - 180) % 360 + north_rotation) % 360
    use_cv2 = _cv2 is not None
    map_x, map_y = _maps(pano.shape[0], pano.shape[1], float(adjusted), size, size, use_cv2)
    if use_cv2:
        out = _cv2.remap(pano, map_x, map_y, _cv2.INTER_CUBIC, borderMode=_cv2.BORDER_WRAP)
    else:
        out = _bilinear_wrap(pano, map_x, map_y)
    return Image.fromarray(out)


def _bilinear_wrap(img: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    x0 = np.floor(mx).astype(np.int64)
    y0 = np.floor(my).astype(np.int64)
    fx = (mx - x0)[..., None]
    fy = (my - y0)[..., None]
    x0w, x1w = x0 % w, (x0 + 1) % w
    y0w, y1w = y0 % h, (y0 + 1) % h
    a = img[y0w, x0w].astype(np.float32)
    b = img[y0w, x1w].astype(np.float32)
    c = img[y1w, x0w].astype(np.float32)
    d = img[y1w, x1w].astype(np.float32)
    top = a + (b - a) * fx
    bottom = c + (d - c) * fx
    return np.clip(top + (bottom - top) * fy + 0.5, 0, 255).astype(np.uint8)


def grid(views: list[Image.Image], resolution: int = PAPER_RESOLUTION) -> Image.Image:
    """The paper's 2x2 grid: each view resized to ``resolution`` (Pillow's default filter), 5-pixel black gaps."""
    canvas = Image.new("RGB", (resolution * 2 + GAP, resolution * 2 + GAP), (0, 0, 0))
    for i, view in enumerate(views):
        x, y = i % 2, i // 2
        canvas.paste(view.resize((resolution, resolution)), (x * (resolution + GAP), y * (resolution + GAP)))
    return canvas


def street_view_grid(pano: np.ndarray, north_rotation: float, heading: float,
                     resolution: int = PAPER_RESOLUTION) -> Image.Image:
    return grid([perspective(pano, h, north_rotation) for h in view_headings(heading)], resolution)
