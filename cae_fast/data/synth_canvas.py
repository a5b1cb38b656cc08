"""Drawing primitives of the synthetic driving scene: colours, tileable noise textures, texture
sampling and an anti-aliased canvas (pixel coverage, with a depth buffer for fog).

Images are channel-first (3, H, W) float32, as in ``synth_scene``.
"""

from __future__ import annotations

import numpy as np


def rgb(r: float, g: float, b: float) -> np.ndarray:
    """A colour shaped (3, 1, 1), ready to broadcast against channel-first images."""
    return np.array([r, g, b], np.float32).reshape(3, 1, 1)


def fractal_noise(
    rng: np.random.Generator, shape: tuple[int, ...], beta: float, largest: float | None = None
) -> np.ndarray:
    """Tileable 1/f**beta noise in [0, 1]: FFT-synthesised, so every texture wraps seamlessly.

    ``largest`` (texels) suppresses longer wavelengths, giving separate blobs (clouds) instead of
    one texture-sized swell.
    """
    spectrum = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")  # cycles per texel: isotropic
    k = np.sqrt(sum(f * f for f in freqs))
    k.flat[0] = np.inf  # no DC: the mean is set by the normalisation below
    amp = k**-beta
    if largest is not None:
        amp *= 1.0 - np.exp(-((k * largest) ** 2))
    field = np.fft.ifftn(spectrum * amp).real
    field -= field.min()
    return (field / max(field.max(), 1e-12)).astype(np.float32)


PIX = np.arange(4096, dtype=np.float32)


def span(lo: float, hi: float, n: int) -> tuple[int, int, np.ndarray] | None:
    """Pixel range covering [lo, hi) and each pixel's fractional coverage (1-D box filter)."""
    i0, i1 = max(int(lo // 1), 0), min(-int(-hi // 1), n)
    if i1 <= i0:
        return None
    p = PIX[i0:i1]
    # ufuncs rather than np.clip: this runs ~80 times a frame on a handful of pixels
    return i0, i1, np.minimum(hi, p + 1) - np.maximum(lo, p)


def bilinear(tex: np.ndarray, shape: tuple[int, int], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Sample a periodic texture stored flat as (C, H*W) at fractional (row, column) coordinates.

    Flat ``take`` is several times faster than 2-D fancy indexing; H and W are powers of two.
    """
    h, w = shape
    i0, j0 = np.floor(i), np.floor(j)
    fi, fj = i - i0, j - j0
    i0, j0 = i0.astype(np.int64) & (h - 1), j0.astype(np.int64) & (w - 1)
    r0, r1, j1 = i0 * w, ((i0 + 1) & (h - 1)) * w, (j0 + 1) & (w - 1)
    t00, t01 = tex.take(r0 + j0, axis=1), tex.take(r0 + j1, axis=1)
    t10, t11 = tex.take(r1 + j0, axis=1), tex.take(r1 + j1, axis=1)
    top = t00 + fj * (t01 - t00)
    return top + fi * (t10 + fj * (t11 - t10) - top)


class Canvas:
    """An RGB float image plus depth, with the few anti-aliased primitives the scene needs."""

    def __init__(self, img: np.ndarray, depth: np.ndarray):
        self.img, self.depth, self.n = img, depth, img.shape[1]

    def rect(self, x0: float, x1: float, y0: float, y1: float, color, z: float) -> None:
        sx, sy = span(x0, x1, self.n), span(y0, y1, self.n)
        if sx is None or sy is None:
            return
        a = sy[2][:, None] * sx[2][None, :]
        self._blend(sy[0], sy[1], sx[0], sx[1], a, color, z)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color, z: float, shade=None) -> None:
        """Filled ellipse; ``shade(dx, dy)`` may return a per-pixel brightness from normalised coords."""
        sx, sy = span(cx - rx, cx + rx, self.n), span(cy - ry, cy + ry, self.n)
        if sx is None or sy is None:
            return
        dx = (np.arange(sx[0], sx[1], dtype=np.float32) + 0.5 - cx) / rx
        dy = (np.arange(sy[0], sy[1], dtype=np.float32) + 0.5 - cy) / ry
        d = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        # distance to the rim in pixels gives the coverage; tiny ellipses fade instead of vanishing
        a = np.clip((1.0 - d) * min(rx, ry) + 0.5, 0.0, 1.0) * min(1.0, 2.0 * min(rx, ry))
        col = color if shade is None else shade(dx, dy) * color
        self._blend(sy[0], sy[1], sx[0], sx[1], a, col, z)

    def _blend(self, y0: int, y1: int, x0: int, x1: int, a: np.ndarray, color, z: float) -> None:
        region = self.img[:, y0:y1, x0:x1]
        region += a * (color - region)
        dep = self.depth[y0:y1, x0:x1]
        dep[a > 0.5] = z
