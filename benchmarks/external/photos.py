"""Real photographs that ship inside installed packages (nothing is downloaded), and a camera
that pans and zooms across them, so that a sequence of crops reads like video.

- ``COLOUR``: the colour photographs of scikit-image's ``skimage.data`` and scikit-learn's
  ``load_sample_images`` (a cat, coffee, a rocket, motorcycles, an astronaut, a temple, a flower).
- ``OTHER_LIGHT``: a different scene and light for the minority stretch: scikit-image's grey
  photographs (a cameraman, the moon, coins, grass, gravel, a brick wall), shown dimmer (x0.7).

A shot is a camera path over one photo: a square box (centre, width) that moves smoothly between
random key boxes (cosine easing, so speed is continuous within a shot); a cut starts a new shot.
Frames are rendered at ``corrupt.CAPTURE`` pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from benchmarks.external.corrupt import CAPTURE

COLOUR: tuple[str, ...] = (
    "skimage:chelsea",
    "skimage:coffee",
    "skimage:rocket",
    "skimage:stereo_motorcycle",
    "skimage:astronaut",
    "sklearn:china.jpg",
    "sklearn:flower.jpg",
)
OTHER_LIGHT: tuple[str, ...] = (
    "skimage:camera",
    "skimage:moon",
    "skimage:coins",
    "skimage:grass",
    "skimage:gravel",
    "skimage:brick",
)
OTHER_LIGHT_GAIN = 0.7  # the minority stretch is also dimmer: other light, not only other scenery
# The crop's width as a share of the photo's shorter side: never so small that a crop is mostly
# upsampled, never the whole photo (the camera must have room to pan).
ZOOM = (0.45, 0.85)


@functools.cache
def photo(name: str) -> np.ndarray:
    """One photograph as uint8 HxWx3 (grey ones repeated to three channels, dimmed by
    ``OTHER_LIGHT_GAIN`` when in ``OTHER_LIGHT``)."""
    where, _, what = name.partition(":")
    if where == "skimage":
        import skimage.data

        img = getattr(skimage.data, what)()
        img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
    elif where == "sklearn":
        from sklearn.datasets import load_sample_image

        img = load_sample_image(what)
    else:
        raise ValueError(f"unknown photo source {name!r}")
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    if name in OTHER_LIGHT:
        img = (img.astype(np.float32) * OTHER_LIGHT_GAIN + 0.5).astype(np.uint8)
    return np.ascontiguousarray(img)


@dataclass(frozen=True)
class Shot:
    """``n`` frames of one camera path over ``photo``; ``keys`` are (cx, cy, w) boxes in the
    photo's pixels, visited at evenly spaced frames."""

    photo: str
    n: int
    keys: tuple[tuple[float, float, float], ...]

    def box(self, t: int) -> tuple[float, float, float]:
        """The box at frame ``t`` of the shot (0 <= t < n), eased between the key boxes."""
        pos = t / max(1, self.n - 1) * (len(self.keys) - 1)
        i = min(int(pos), len(self.keys) - 2)
        f = pos - i
        f = 0.5 - 0.5 * np.cos(np.pi * f)  # cosine ease: no jump in speed at a key
        a, b = np.asarray(self.keys[i]), np.asarray(self.keys[i + 1])
        return tuple(a + (b - a) * f)


def random_shot(rng: np.random.Generator, name: str, n: int, frames_per_key: int) -> Shot:
    """A shot of ``n`` frames over ``name`` with a new key box every ``frames_per_key`` frames."""
    h, w = photo(name).shape[:2]
    side = min(h, w)
    keys = []
    for _ in range(max(2, round(n / frames_per_key) + 1)):
        width = rng.uniform(*ZOOM) * side
        cx = rng.uniform(width / 2, w - width / 2)
        cy = rng.uniform(width / 2, h - width / 2)
        keys.append((cx, cy, width))
    return Shot(name, n, tuple(keys))


def render(shot: Shot, t: int, size: int = CAPTURE) -> np.ndarray:
    """Frame ``t`` of ``shot``: its box cut from the photo (sub-pixel) and resized to ``size``."""
    cx, cy, width = shot.box(t)
    box = (cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2)
    im = Image.fromarray(photo(shot.photo))
    return np.asarray(im.resize((size, size), Image.BILINEAR, box=box), np.uint8)


def reduce(frame: np.ndarray, size: int) -> np.ndarray:
    """A captured frame brought to the sequence's size (antialiased, as any image resize is)."""
    if frame.shape[0] == size:
        return frame
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR), np.uint8)
