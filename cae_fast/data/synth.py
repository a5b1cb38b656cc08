"""Labelled, seeded benchmark data: a synthetic driving video with corrupted runs placed in it.

``generate(SynthSpec(...))`` renders a camera driving down a road (sky and clouds, a road with
perspective lane markings, roadside poles, trees, buildings and signs, other cars, drifting
curvature and lighting, sensor noise) and corrupts contiguous runs of frames at random,
non-overlapping positions. Every frame carries a label, so detection quality can be measured.

- Frames are made one at a time and written straight into ``out`` when given (a uint8 memmap
  works), so 17,600 frames at 224 px never need a float copy of the whole set.
- Random streams are separate for the run layout, the scene, the sensor noise and each
  corrupted run. Hence the same seed gives the same scene whatever the corruption settings:
  ``generate(replace(spec, dirty_fraction=0))`` is the clean twin of ``generate(spec)``, frame
  for frame, and sweeping a strength changes only the corrupted frames.
- ``shuffle=True`` stores the same frames in a random order (``images[i]`` is frame
  ``order[i]``), for methods that must not rely on temporal neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cae_fast.data.synth_corrupt import CORRUPTIONS
from cae_fast.data.synth_scene import DrivingScene

KINDS: tuple[str, ...] = ("raindrop", "mud", "fog", "glare", "motion_blur", "noise")

# The paper's dataset: 16,000 clean frames and 1,600 with raindrops.
PAPER_CLEAN, PAPER_DIRTY = 16_000, 1_600


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. Ranges ``(lo, hi)`` are drawn once per corrupted run.

    Sequence: ``n_frames`` frames of ``size`` x ``size`` x 3; ``dirty_fraction`` of them corrupted
    (default: the paper's 1,600 / 17,600) in contiguous runs of ``run_length`` frames, the runs
    cycling through ``kinds``. ``shuffle`` gives the non-temporal variant. ``sensor_noise`` is the
    Gaussian noise std (on a 0-1 scale) of every frame, clean ones included.

    Raindrop (two parts that push reconstruction errors in opposite directions):
      ``drop_count`` drops on the lens at the start of a run (they drift, slide off, new ones land);
      ``drop_radius`` as fractions of the frame size (drawn log-uniformly: many small, few big);
      ``drop_blur`` the drops' own defocus (Gaussian std, pixels at 64 px): 0 = crisp rims;
      ``wet_blur`` the wet film's Gaussian blur std in pixels at 64 px (scaled with size), 0 = none,
      ~3 = strong; ``haze`` the film's bright veil, 0 = none, 0.5 = strong;
      ``rain_balance`` in [0, 1] trades the parts: 0 = drops only, 1 = film only, 0.5 = both at the
      strengths above (each part at full strength up to 0.5 from its end, then fading linearly).
      Measured with the defaults, a dirty frame's Laplacian energy over its clean twin's (median)
      at balance 0 / 0.5 / 0.75 / 1 is x2.6 / x1.9 / x1.1 / x0.06 at 64 px, but x1.3 / x0.5 /
      x0.3 / x0.09 at 96 px: the larger the frame, the earlier the film outweighs the drops.
    Mud: ``mud_count`` splats of radius ``mud_radius`` (fraction of size), opacity ``mud_opacity``.
    Fog: ``fog_visibility`` in metres (lower is denser; the road ahead spans ~3-300 m).
    Glare: ``glare_strength`` scales the bloom, veil, streak and ghosts (1 = a sun in the frame).
    Motion blur: ``blur_length`` of the smear as a fraction of the frame size.
    Noise: ``noise_sigma`` std of the heavy sensor noise (on top of ``sensor_noise``).
    """

    n_frames: int = 2000
    size: int = 64
    dirty_fraction: float = PAPER_DIRTY / (PAPER_CLEAN + PAPER_DIRTY)
    kinds: tuple[str, ...] = ("raindrop",)
    run_length: tuple[int, int] = (20, 200)
    seed: int = 0
    shuffle: bool = False
    sensor_noise: float = 0.012
    drop_count: tuple[int, int] = (10, 22)
    drop_radius: tuple[float, float] = (0.025, 0.085)
    drop_blur: float = 0.4
    wet_blur: float = 1.2
    haze: float = 0.2
    rain_balance: float = 0.5
    mud_count: tuple[int, int] = (3, 6)
    mud_radius: tuple[float, float] = (0.05, 0.12)
    mud_opacity: float = 0.95
    fog_visibility: tuple[float, float] = (20.0, 60.0)
    glare_strength: float = 1.0
    blur_length: tuple[float, float] = (0.06, 0.14)
    noise_sigma: tuple[float, float] = (0.06, 0.12)

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {self.kinds}")
        if self.n_frames < 1 or not 16 <= self.size <= 1024:
            raise ValueError(f"need n_frames >= 1 and 16 <= size <= 1024, got {self.n_frames}, {self.size}")
        if not 0.0 <= self.dirty_fraction <= 1.0:
            raise ValueError(f"dirty_fraction must be in [0, 1], got {self.dirty_fraction}")
        lo, hi = self.run_length
        if not 1 <= lo <= hi:
            raise ValueError(f"run_length must be (min, max) with 1 <= min <= max, got {self.run_length}")


@dataclass
class SynthData:
    """Generated frames and their ground truth, in stored order (shuffled if the spec says so)."""

    images: np.ndarray  # (N, size, size, 3) uint8
    labels: np.ndarray  # (N,) uint8, 1 = dirty
    kinds: np.ndarray  # (N,) int8: -1 clean, else index into KINDS
    segments: list[tuple[int, int, str]]  # (start, end_exclusive, kind) in unshuffled frame order
    order: np.ndarray  # (N,) int64: images[i] is frame order[i] of the video
    spec: SynthSpec | None = field(default=None, repr=False)


def place_runs(spec: SynthSpec, rng: np.random.Generator) -> list[tuple[int, int, str]]:
    """Contiguous corrupted runs at random, non-overlapping positions, kinds cycling.

    If fewer dirty frames are asked for than one minimum-length run, they form a single shorter
    run. When there are enough, there is at least one run per kind.
    """
    n = spec.n_frames
    n_dirty = int(round(n * spec.dirty_fraction))
    if n_dirty == 0:
        return []
    lo, hi = spec.run_length
    if n_dirty <= lo:
        lengths = [n_dirty]
    else:
        k_min, k_max = math.ceil(n_dirty / hi), n_dirty // lo
        k = 0
        while k * (lo + hi) / 2 < n_dirty:  # as many runs as typical lengths would need
            k += 1
        k = min(max(k, k_min, min(len(spec.kinds), k_max)), k_max)
        lengths = _compose(n_dirty, k, lo, hi, rng)
    k = len(lengths)
    # clean gaps: before, between and after the runs; inner ones long enough to keep runs apart
    n_clean = n - n_dirty
    inner = min(lo, n_clean // (k + 1))
    free = n_clean - (k - 1) * inner
    cuts = np.sort(rng.integers(0, free + 1, k))
    gaps = np.diff(np.concatenate([[0], cuts, [free]]))
    gaps[1:-1] += inner
    segments, pos = [], 0
    for j, length in enumerate(lengths):
        pos += int(gaps[j])
        segments.append((pos, pos + length, spec.kinds[j % len(spec.kinds)]))
        pos += length
    return segments


def _compose(total: int, k: int, lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    """k random integers in [lo, hi] summing to total (requires k*lo <= total <= k*hi)."""
    parts = np.full(k, lo, np.int64)
    rest = total - k * lo
    share = rng.random(k)
    parts += np.minimum(np.floor(rest * share / share.sum()).astype(np.int64), hi - lo)
    while parts.sum() < total:  # hand out what rounding and the caps left over
        room = np.flatnonzero(parts < hi)
        parts[rng.choice(room)] += 1
    return parts.tolist()


class _Sensor:
    """Vignetting, Gaussian read noise and 8-bit quantisation, applied to every frame.

    Noise comes from a bank of pre-drawn fields cut at random offsets: drawing 150k normals per
    224 px frame would cost more than rendering it, and a CAE cannot learn the bank's structure.
    """

    def __init__(self, scene: DrivingScene, rng: np.random.Generator, sigma: float):
        n = scene.n
        self.vignette, self.rng, self.sigma, self.n = scene.vignette, rng, sigma, n
        self.bank = rng.standard_normal((8, 3, n + 32, n + 32), np.float32)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        k, oy, ox = self.rng.integers(0, (8, 33, 33))
        img = img * self.vignette
        img += self.sigma * self.bank[k, :, oy : oy + self.n, ox : ox + self.n]
        return img


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def generate(spec: SynthSpec, out: np.ndarray | None = None) -> SynthData:
    """Render the sequence described by ``spec``; write frames into ``out`` if given."""
    n, size = spec.n_frames, spec.size
    shape = (n, size, size, 3)
    if out is None:
        out = np.empty(shape, np.uint8)
    elif out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 {shape}, got {out.dtype} {out.shape}")
    layout_ss, scene_ss, sensor_ss, runs_ss, shuffle_ss = np.random.SeedSequence(spec.seed).spawn(5)

    segments = place_runs(spec, np.random.default_rng(layout_ss))
    kinds = np.full(n, -1, np.int8)
    for start, end, kind in segments:
        kinds[start:end] = KINDS.index(kind)
    order = np.random.default_rng(shuffle_ss).permutation(n) if spec.shuffle else np.arange(n)
    where = np.empty(n, np.int64)
    where[order] = np.arange(n)  # frame t of the video is stored at where[t]

    scene = DrivingScene(size, np.random.default_rng(scene_ss))
    sensor = _Sensor(scene, np.random.default_rng(sensor_ss), spec.sensor_noise)
    run_seeds = runs_ss.spawn(len(segments))
    runs = iter(zip(segments, run_seeds, strict=True))
    nxt = next(runs, None)
    active, start = None, 0
    for t in range(n):
        img, depth = scene.render()
        if nxt is not None and t == nxt[0][0]:
            (start, end, kind), seed = nxt
            active = CORRUPTIONS[kind](spec, size, np.random.default_rng(seed), end - start)
            nxt = next(runs, None)
        if active is not None and kinds[t] < 0:
            active = None
        if active is not None and active.stage == "optical":
            img = active.apply(img, depth, t - start)
        img = sensor(img)
        if active is not None and active.stage == "sensor":
            img = active.apply(img, depth, t - start)
        out[where[t]] = _to_uint8(img)

    return SynthData(
        images=out,
        labels=(kinds[order] >= 0).astype(np.uint8),
        kinds=kinds[order],
        segments=segments,
        order=order,
        spec=spec,
    )


def save_montage(data: SynthData, path, n_clean: int = 8, n_dirty: int = 8, scale: int | None = None) -> None:
    """PNG grid: clean frames first, then one row per corruption kind present, each labelled.

    Frames are picked evenly through the set, so rows span several runs. ``scale`` (nearest
    neighbour) defaults to whatever makes a tile at least 128 px.
    """
    from PIL import Image, ImageDraw  # only the montage needs pillow

    size = data.images.shape[1]
    scale = scale or max(1, math.ceil(128 / size))
    cols = n_dirty or n_clean or 1  # clean frames wrap onto as many rows as they need
    rows: list[tuple[str, np.ndarray]] = []
    clean = np.flatnonzero(data.kinds < 0)

    def spread(idx: np.ndarray, k: int) -> np.ndarray:
        return idx[np.linspace(0, len(idx) - 1, k).round().astype(int)] if len(idx) and k else idx[:0]

    pick = spread(clean, n_clean)
    rows += [("clean", pick[i : i + cols]) for i in range(0, len(pick), cols)]
    for j, kind in enumerate(KINDS):
        idx = spread(np.flatnonzero(data.kinds == j), n_dirty)
        if len(idx):
            rows.append((kind, idx))
    tile, gap, margin = size * scale, 4, 96
    canvas = Image.new("RGB", (margin + cols * (tile + gap), max(len(rows), 1) * (tile + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, idx) in enumerate(rows):
        y = r * (tile + gap)
        draw.text((6, y + tile // 2 - 6), name, fill="black")
        for c, i in enumerate(idx):
            im = Image.fromarray(np.asarray(data.images[i])).resize((tile, tile), Image.NEAREST)
            canvas.paste(im, (margin + c * (tile + gap), y))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
