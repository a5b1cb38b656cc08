"""Corruptions for the synthetic benchmark, one class per kind, each living for one contiguous run.

A corruption is created at the start of its run (so drops, mud and the sun can persist and drift
across the run's frames) and then applied frame by frame to the clean render: ``apply(img, depth,
i)`` with img channel-first (3, H, W) float32 in [0, 1], depth in metres, i the index in the run.
Optical corruptions act on the scene before the sensor; ``noise`` acts on the sensor output.
Strengths come from ``SynthSpec`` (see its docstring); lengths are given at 64 px and scaled
with the frame size, so a setting means the same thing at every resolution.
"""

from __future__ import annotations

import math

import numpy as np

from cae_fast.data.synth_canvas import fractal_noise, rgb


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes, edges extended (not wrapped)."""
    if sigma < 0.3:
        return img
    r = int(math.ceil(3 * sigma))
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    w /= w.sum()
    out = img
    for axis in (-2, -1):
        pad = [(0, 0)] * (img.ndim - 2) + ([(r, r), (0, 0)] if axis == -2 else [(0, 0), (r, r)])
        src = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        acc = w[0] * (src[..., 0:n, :] if axis == -2 else src[..., 0:n])
        for i in range(1, 2 * r + 1):
            acc += w[i] * (src[..., i : i + n, :] if axis == -2 else src[..., i : i + n])
        out = acc
    return out


def _pick(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(lo if hi <= lo else rng.uniform(lo, hi))


class Corruption:
    """One run of one kind. Subclasses set up state in ``__init__`` and render in ``apply``."""

    stage = "optical"

    def __init__(self, spec, size: int, rng: np.random.Generator, length: int):
        self.spec, self.n, self.rng, self.length = spec, size, rng, length
        self.scale = size / 64.0  # pixel lengths in the spec are given at 64 px
        self.grid_y = np.arange(size, dtype=np.float32)[:, None] + 0.5
        self.grid_x = np.arange(size, dtype=np.float32)[None, :] + 0.5

    def apply(self, img: np.ndarray, depth: np.ndarray, i: int) -> np.ndarray:
        raise NotImplementedError


class Raindrop(Corruption):
    """Water on the lens: refracting drops that add structure, plus a wet film that removes it.

    Each drop is a small lens: it shows an inverted, minified and defocused view of the scene
    around it, with a dark rim where light is refracted away and a specular highlight. The wet
    film is a Gaussian blur plus a bright haze over the whole frame. ``rain_balance`` trades the
    two: 0 drops only, 1 film only, 0.5 both at their nominal strengths.
    """

    def __init__(self, spec, size, rng, length):
        super().__init__(spec, size, rng, length)
        b = min(max(spec.rain_balance, 0.0), 1.0)
        drops, film = min(1.0, 2 * (1 - b)), min(1.0, 2 * b)
        self.blur = film * spec.wet_blur * self.scale * rng.uniform(0.8, 1.2)
        self.haze = film * spec.haze * rng.uniform(0.8, 1.2)
        count = int(round(drops * rng.integers(spec.drop_count[0], spec.drop_count[1] + 1)))
        self.rate = count / 150.0  # new drops per frame, about replacing those that slide off
        self.drops = [self._new_drop(rng.uniform(0, size)) for _ in range(count)]

    def _new_drop(self, y: float) -> list[float]:
        rng, n = self.rng, self.n
        lo, hi = self.spec.drop_radius
        r = n * lo * (hi / lo) ** rng.random() if lo > 0 else n * hi * rng.random()  # many small, few big
        # big drops run down faster; all wander a little sideways
        vy = (0.02 + 0.5 * (r / n) ** 2 * 60) * self.scale * rng.random()
        return [rng.uniform(0, n), y, r, rng.normal(0, 0.01 * self.scale), vy, rng.uniform(0.85, 1.05)]

    def apply(self, img, depth, i):
        rng, n = self.rng, self.n
        if i > 0:
            for d in self.drops:
                d[0] += d[3]
                d[1] += d[4]
            self.drops = [d for d in self.drops if d[1] - d[2] < n]
            if self.drops or self.rate:
                for _ in range(rng.poisson(self.rate)):
                    self.drops.append(self._new_drop(rng.uniform(0, n)))
        out = gaussian_blur(img, self.blur)
        if self.haze > 0:
            out = out + self.haze * (rgb(0.85, 0.87, 0.9) - out)
        if not self.drops:
            return out
        view = gaussian_blur(out, 1.2 * self.scale)  # what a drop shows is far out of focus
        wet = out.copy()
        for cx, cy, r, _, _, squash in self.drops:
            self._drop(wet, view, cx, cy, r, squash)
        # the drops themselves sit on the lens, nearer than the focus: blurring just the change
        # they make softens their rims without touching the frame between them
        return out + gaussian_blur(wet - out, self.spec.drop_blur * self.scale)

    def _drop(self, out, view, cx, cy, r, squash) -> None:
        n = self.n
        ry = r * squash
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, n)
        y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, n)
        if x1 <= x0 or y1 <= y0:
            return
        dx = (self.grid_x[:, x0:x1] - cx) / r
        dy = (self.grid_y[y0:y1] - cy) / ry
        d2 = dx * dx + dy * dy
        d = np.sqrt(d2)
        # A drop is a fisheye lens: it shows an inverted view of a wide patch of the scene (sky at
        # its bottom, road at its top), squeezed towards the rim
        reach = max(3.0 * r, 0.18 * n) * (1.0 + 0.5 * d2)
        sx = np.clip(cx - dx * reach, 0, n - 1).astype(np.int64)
        sy = np.clip(cy - dy * reach * squash, 0, n - 1).astype(np.int64)
        inner = view[:, sy, sx] * 1.05 + 0.04
        rim = np.clip((d - 0.5) / 0.45, 0, 1) ** 1.5  # refraction sends rim light out of the lens
        inner *= 1.0 - 0.8 * rim
        highlight = np.exp(-((dx + 0.3) ** 2 + (dy + 0.4) ** 2) / 0.025)
        caustic = np.exp(-((d - 0.7) ** 2) / 0.012) * np.clip(dy * 2, 0, 1)  # light focused at the bottom
        inner += 0.8 * highlight + 0.2 * caustic
        a = np.clip((1.0 - d) * min(r, ry) + 0.5, 0.0, 1.0)
        region = out[:, y0:y1, x0:x1]
        region += a * (inner - region)


class Mud(Corruption):
    """Opaque dark-brown dirt on the lens: irregular, soft-edged splats with spatter, fixed in place."""

    def __init__(self, spec, size, rng, length):
        super().__init__(spec, size, rng, length)
        n = size
        # textures made at 64 px and upsampled, so a splat looks the same at every frame size
        rough = _upsample(fractal_noise(rng, (64, 64), 1.0)[None], n)[0] - 0.5
        field = np.zeros((n, n), np.float32)

        def blob(x: float, y: float, r: float) -> np.ndarray:
            return np.exp(-((self.grid_x - x) ** 2 + (self.grid_y - y) ** 2) / (r * r))

        for _ in range(int(rng.integers(spec.mud_count[0], spec.mud_count[1] + 1))):
            cx, cy = rng.uniform(0, n), rng.uniform(0.1 * n, n)  # thrown up from the road: low more often
            r = n * _pick(rng, spec.mud_radius)
            for _ in range(int(rng.integers(2, 6))):  # a splat is a few overlapping lobes
                ox, oy = rng.normal(0, 0.6 * r, 2)
                field += blob(cx + ox, cy + oy, r * rng.uniform(0.4, 0.9))
            for _ in range(int(rng.integers(2, 8))):  # and spatter around it
                ang, dist = rng.uniform(0, 2 * np.pi), r * rng.uniform(1.2, 2.5)
                dot = max(r * rng.uniform(0.08, 0.2), 0.7)
                field += blob(cx + dist * math.cos(ang), cy + dist * math.sin(ang), dot)
        # a rough threshold gives ragged edges; the ramp keeps them soft (the lens is out of focus)
        alpha = np.clip((field + 0.9 * rough - 0.5) * 3.0, 0.0, 1.0)
        self.alpha = alpha * spec.mud_opacity
        # wet and dark in the middle, drier and lighter at the edges
        grain = _upsample(fractal_noise(rng, (64, 64), 1.3)[None], n)[0]
        self.colour = rgb(0.22, 0.15, 0.08) * (0.7 + 0.6 * grain) + (1 - alpha) * rgb(0.12, 0.1, 0.06)

    def apply(self, img, depth, i):
        return img + self.alpha * (self.colour - img)


class Fog(Corruption):
    """Depth-dependent fog: distant things fade to grey first, the sky goes fully white-grey."""

    def __init__(self, spec, size, rng, length):
        super().__init__(spec, size, rng, length)
        self.visibility = _pick(rng, spec.fog_visibility)
        self.phase = rng.uniform(0, 2 * np.pi)

    def apply(self, img, depth, i):
        vis = self.visibility * (1.0 + 0.2 * math.sin(i / 40.0 + self.phase))  # fog banks come and go
        t = np.exp(-depth / vis)
        return img * t + (1.0 - t) * rgb(0.78, 0.80, 0.82)


class Glare(Corruption):
    """Low sun in or near the frame: bloom, a veil over the whole image, flare streak and ghosts."""

    def __init__(self, spec, size, rng, length):
        super().__init__(spec, size, rng, length)
        n, s = size, spec.glare_strength
        self.sun = np.array([rng.uniform(0.1, 0.9) * n, rng.uniform(0.05, 0.4) * n])
        self.drift = rng.normal(0, 0.05 * self.scale, 2)
        self.s = s * rng.uniform(0.8, 1.2)
        self.angle = rng.uniform(-0.2, 0.2)

    def apply(self, img, depth, i):
        n, s = self.n, self.s
        sx, sy = self.sun + self.drift * i
        dx, dy = (self.grid_x - sx) / n, (self.grid_y - sy) / n
        r2 = dx * dx + dy * dy
        light = 1.1 * np.exp(-r2 / 0.006) + 0.35 * np.exp(-np.sqrt(r2) / 0.25)
        # the streak: a thin bright line through the sun (light scattered by the windscreen)
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        along, across = dx * cos + dy * sin, dy * cos - dx * sin
        light += 0.6 * np.exp(-((across / 0.012) ** 2)) * np.exp(-np.abs(along) / 0.35)
        out = img * (1.0 - 0.25 * s) + s * light * rgb(1.0, 0.95, 0.8) + 0.2 * s  # veiling glare
        cx, cy = n / 2 - sx, n / 2 - sy  # ghosts sit on the line through the image centre
        for t, rad, tint in (
            (0.7, 0.06, rgb(0.3, 0.6, 0.4)),
            (1.4, 0.1, rgb(0.6, 0.4, 0.2)),
            (1.9, 0.035, rgb(0.4, 0.4, 0.7)),
        ):
            gx, gy = n / 2 + t * cx, n / 2 + t * cy
            g = np.clip((rad * n - np.sqrt((self.grid_x - gx) ** 2 + (self.grid_y - gy) ** 2)) * 0.5, 0, 1)
            out += 0.35 * s * g * tint
        return out


class MotionBlur(Corruption):
    """Camera shake or a slow shutter: every point smeared along one direction for the run."""

    def __init__(self, spec, size, rng, length):
        super().__init__(spec, size, rng, length)
        self.smear = _pick(rng, spec.blur_length) * size
        self.angle = rng.normal(0, 0.35) + (0 if rng.random() < 0.7 else np.pi / 2)

    def apply(self, img, depth, i):
        smear = self.smear * self.rng.uniform(0.8, 1.2)  # the shake varies from frame to frame
        taps = int(math.ceil(smear)) + 1  # at most a pixel apart
        ux, uy = math.cos(self.angle), math.sin(self.angle)
        pad = int(math.ceil(smear / 2)) + 2
        src = np.pad(img, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
        n = self.n
        acc = np.zeros_like(img)
        for k in range(taps):
            t = (k / (taps - 1) - 0.5) * smear
            # sub-pixel shifts, bilinearly: rounded ones leave a staircase of copies of thin lines
            y, x = pad + t * uy, pad + t * ux
            iy, ix = int(math.floor(y)), int(math.floor(x))
            fy, fx = y - iy, x - ix
            a, b, c, d = (
                src[:, iy + oy : iy + oy + n, ix + ox : ix + ox + n] for oy in (0, 1) for ox in (0, 1)
            )
            acc += (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)
        return acc / taps


class Noise(Corruption):
    """Heavy sensor noise: strong signal-dependent grain, colour blotches, row banding, hot pixels."""

    stage = "sensor"

    def __init__(self, spec, size, rng, length):
        super().__init__(spec, size, rng, length)
        self.sigma = _pick(rng, spec.noise_sigma)

    def apply(self, img, depth, i):
        rng, n, s = self.rng, self.n, self.sigma
        out = img + s * np.sqrt(np.clip(img, 0.02, 1)) * rng.standard_normal(img.shape, np.float32)
        out += 0.4 * s * _upsample(rng.standard_normal((3, n // 8 + 2, n // 8 + 2), np.float32), n)  # chroma
        out += 0.3 * s * rng.standard_normal((1, n, 1), np.float32)  # row banding from the readout
        out[:, rng.random((n, n)) < 0.003] = 1.0  # hot pixels
        return out


def _upsample(low: np.ndarray, n: int) -> np.ndarray:
    """Bilinear upsampling of a (C, h, w) field to (C, n, n): smooth blotches, not blocks."""
    h = low.shape[1]
    pos = np.linspace(0, h - 1.001, n, dtype=np.float32)
    i = pos.astype(np.int64)
    w = (pos - i)[:, None]
    rows = low[:, i] * (1 - w) + low[:, i + 1] * w
    return rows[:, :, i] * (1 - w[:, 0]) + rows[:, :, i + 1] * w[:, 0]


CORRUPTIONS = {
    "raindrop": Raindrop,
    "mud": Mud,
    "fog": Fog,
    "glare": Glare,
    "motion_blur": MotionBlur,
    "noise": Noise,
}
