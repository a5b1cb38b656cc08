"""The external benchmark's sequences: real photographs panned as video (``photos``), corrupted
in runs by a third-party library (``corrupt``), generated once per split and cached as ``.npz``.

Each split (``SPLITS``: dev, test, test2, test3) is one seed; every sequence of it draws its
photos' order, its camera paths, its run layout and its corruption seeds from that seed, so the
splits share the photographs but not a single frame. The sequences (``SEQUENCES``):

- ``shots``: short shots (20-60 frames) with a cut between each, 64 px;
- ``drive``: three long single-scene drives (400 frames each), 128 px;
- ``race``: a driving simulator's rendered frames (``race``), a new track every 400 frames, 64 px;
- ``minority``: long drives with a clean stretch of other scenery and light (20%, ``OTHER_LIGHT``)
  that must be kept, 64 px;
- ``clean``: short shots and long drives, nothing corrupted, 64 px;
- ``shuffled``: not a video: each frame its own crop, in random order, single corrupted frames.

In the four corrupted videos every kind has one run (hard onset, 10-25 frames), at a severity
that rotates with the sequence, so each split holds every kind at severities 2, 3 and 4; the
shuffled set holds every (kind, severity) about equally.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.external import photos
from benchmarks.external.corrupt import CAPTURE, KINDS, SEVERITIES, corrupt, frame_seed

# A test split is read once, to judge one candidate under its written rule (rules/), then spent.
SPLITS: dict[str, int] = {"dev": 1, "test": 2, "test2": 3, "test3": 4}
# Bump when the generator changes: cached sequences of another version are not reused.
VERSION = 1
SENSOR_NOISE = 2.0  # every frame's Gaussian sensor noise at capture, std in uint8 units
RUN_LENGTH = (10, 25)
RUN_GAP = 10  # frames of clean video at least between two runs
SHUFFLED_DIRTY = 0.10


@dataclass(frozen=True)
class SequenceSpec:
    name: str
    size: int
    n: int
    layout: str  # "shots" | "drive" | "race" | "minority" | "clean" | "shuffled"
    rotation: int = 0  # shifts which severity each kind gets, so the sequences cover 2, 3 and 4


SEQUENCES: tuple[SequenceSpec, ...] = (
    SequenceSpec("shots", 64, 1200, "shots", 0),
    SequenceSpec("drive", 128, 1200, "drive", 1),
    SequenceSpec("minority", 64, 1200, "minority", 2),
    SequenceSpec("race", 64, 1200, "race", 0),
    SequenceSpec("clean", 64, 900, "clean"),
    SequenceSpec("shuffled", 64, 1000, "shuffled"),
)
SHORT_SHOT = (20, 60)
SHORT_KEY = 25  # frames between key boxes: short shots pan faster
LONG_SHOT = 400
LONG_KEY = 100
RACE_TRACK = 400  # frames per simulator track (a new track is a cut)
MINORITY_SHARE = 0.2


@dataclass
class Sequence:
    """One generated sequence; ``kinds`` index ``KINDS`` (-1 clean), ``severity`` 0 when clean,
    ``shot`` numbers the camera shots (a cut between two numbers), ``minority`` marks the stretch
    of other scenery, ``order`` (shuffled set) is each frame's position before shuffling."""

    spec: SequenceSpec
    split: str
    images: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    severity: np.ndarray
    shot: np.ndarray
    minority: np.ndarray
    order: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "images": self.images,
            "labels": self.labels,
            "kinds": self.kinds,
            "severity": self.severity,
            "kind_names": np.asarray(KINDS),
            "shot": self.shot,
            "minority": self.minority,
            "order": self.order,
        }


def spec_named(name: str) -> SequenceSpec:
    for spec in SEQUENCES:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown sequence {name!r}; known: {', '.join(s.name for s in SEQUENCES)}")


def _rng(split: str, spec: SequenceSpec, stream: str) -> np.random.Generator:
    return np.random.default_rng([SPLITS[split], VERSION, *spec.name.encode(), *stream.encode()])


def _shots(rng: np.random.Generator, n: int, pool: tuple[str, ...], lengths, key: int) -> list:
    """Shots covering ``n`` frames; each a photo from ``pool`` other than the previous one."""
    shots, used, last = [], 0, None
    while used < n:
        length = min(n - used, int(rng.integers(lengths[0], lengths[1] + 1)))
        name = str(rng.choice([p for p in pool if p != last]))
        shots.append(photos.random_shot(rng, name, length, key))
        used, last = used + length, name
    return shots


def _layout(spec: SequenceSpec, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """The camera's shots for a video layout and the minority mask."""
    n, minority = spec.n, np.zeros(spec.n, bool)
    if spec.layout == "shots":
        return _shots(rng, n, photos.COLOUR, SHORT_SHOT, SHORT_KEY), minority
    if spec.layout == "drive":
        return _shots(rng, n, photos.COLOUR, (LONG_SHOT, LONG_SHOT), LONG_KEY), minority
    if spec.layout == "clean":
        half = n // 2
        return (
            _shots(rng, half, photos.COLOUR, SHORT_SHOT, SHORT_KEY)
            + _shots(rng, n - half, photos.COLOUR, (LONG_SHOT, LONG_SHOT), LONG_KEY)
        ), minority
    if spec.layout == "minority":
        m = round(MINORITY_SHARE * n)
        start = int(rng.integers(n // 4, n - n // 4 - m))
        before = _shots(rng, start, photos.COLOUR, (150, 300), LONG_KEY)
        other = _shots(rng, m, photos.OTHER_LIGHT, (m // 2, m // 2 + 1), LONG_KEY)
        after = _shots(rng, n - start - m, photos.COLOUR, (150, 300), LONG_KEY)
        minority[start : start + m] = True
        return before + other + after, minority
    raise ValueError(f"not a video layout: {spec.layout}")


def _runs(spec: SequenceSpec, rng: np.random.Generator, forbidden: np.ndarray) -> list:
    """One run per kind as (start, length, kind index, severity, run seed): non-overlapping, at
    least ``RUN_GAP`` frames apart, none touching ``forbidden`` frames (the minority stretch)."""
    taken = forbidden.copy()
    runs = []
    for k in rng.permutation(len(KINDS)):
        length = int(rng.integers(RUN_LENGTH[0], RUN_LENGTH[1] + 1))
        for _ in range(10_000):
            start = int(rng.integers(0, spec.n - length + 1))
            lo, hi = max(0, start - RUN_GAP), min(spec.n, start + length + RUN_GAP)
            if not taken[lo:hi].any():
                break
        else:
            raise RuntimeError(f"{spec.name}: no room for a run of {length} frames")
        taken[start : start + length] = True
        severity = SEVERITIES[(int(k) + spec.rotation) % len(SEVERITIES)]
        runs.append((start, length, int(k), severity, int(rng.integers(2**31))))
    return sorted(runs)


def _capture(frame: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, SENSOR_NOISE, frame.shape)
    return np.clip(frame + noise + 0.5, 0, 255).astype(np.uint8)


def generate(split: str, spec: SequenceSpec, corrupted: bool = True) -> Sequence:
    """Render ``spec`` for ``split``. ``corrupted=False`` gives the clean twin: the same frames,
    label for label, with no corruption applied (the tests' oracle for where it was)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    n, size = spec.n, spec.size
    images = np.empty((n, size, size, 3), np.uint8)
    kinds = np.full(n, -1, np.int8)
    severity = np.zeros(n, np.int8)
    seeds = np.zeros(n, np.int64)
    offsets = np.zeros(n, np.int64)
    order = np.arange(n, dtype=np.int64)
    noise_seed = int(_rng(split, spec, "noise").integers(2**31))
    captured = None
    if spec.layout == "shuffled":
        frames, shot, minority = _shuffled_frames(split, spec, kinds, severity, seeds)
    elif spec.layout == "race":
        captured, shot = _race_frames(split, spec)
        frames, minority = [None] * n, np.zeros(n, bool)
        _place_runs(split, spec, minority, kinds, severity, seeds, offsets)
    else:
        shots, minority = _layout(spec, _rng(split, spec, "camera"))
        frames = [(s, t) for s in shots for t in range(s.n)]
        shot = np.repeat(np.arange(len(shots), dtype=np.int32), [s.n for s in shots])
        if spec.layout != "clean":
            _place_runs(split, spec, minority, kinds, severity, seeds, offsets)
    for i, shot_frame in enumerate(frames):
        scene = captured[i] if captured is not None else photos.render(*shot_frame, CAPTURE)
        frame = _capture(scene, noise_seed + i)
        if corrupted and kinds[i] >= 0:
            kind = KINDS[kinds[i]]
            frame = corrupt(frame, kind, int(severity[i]), frame_seed(int(seeds[i]), kind, int(offsets[i])))
        images[i] = photos.reduce(frame, size)
    labels = (kinds >= 0).astype(np.uint8)
    if spec.layout == "shuffled":
        order = _rng(split, spec, "order").permutation(n)
        images, labels, kinds, severity, shot = (
            images[order],
            labels[order],
            kinds[order],
            severity[order],
            shot[order],
        )
    return Sequence(spec, split, images, labels, kinds, severity, shot, minority, order)


def _place_runs(split, spec, forbidden, kinds, severity, seeds, offsets) -> None:
    for start, length, k, sev, run_seed in _runs(spec, _rng(split, spec, "runs"), forbidden):
        kinds[start : start + length] = k
        severity[start : start + length] = sev
        seeds[start : start + length] = run_seed
        offsets[start : start + length] = np.arange(length)


def _race_frames(split: str, spec: SequenceSpec) -> tuple[np.ndarray, np.ndarray]:
    """The simulator's frames at capture size, a new track (seed) every ``RACE_TRACK`` frames."""
    from benchmarks.external import race

    rng = _rng(split, spec, "camera")
    lengths = [min(RACE_TRACK, spec.n - start) for start in range(0, spec.n, RACE_TRACK)]
    parts = [race.track_frames(int(rng.integers(2**31)), length) for length in lengths]
    shot = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    return np.concatenate(parts), shot


def _shuffled_frames(split, spec, kinds, severity, seeds) -> tuple[list, np.ndarray, np.ndarray]:
    """Independent crops (each frame its own one-frame shot) and single corrupted frames cycling
    through every (kind, severity) pair."""
    rng = _rng(split, spec, "camera")
    frames = [(photos.random_shot(rng, str(rng.choice(photos.COLOUR)), 1, 1), 0) for _ in range(spec.n)]
    dirty = rng.choice(spec.n, round(SHUFFLED_DIRTY * spec.n), replace=False)
    pairs = [(k, s) for k in range(len(KINDS)) for s in SEVERITIES]
    for j, i in enumerate(dirty):
        kinds[i], severity[i] = pairs[j % len(pairs)]
        seeds[i] = int(rng.integers(2**31))
    return frames, np.arange(spec.n, dtype=np.int32), np.zeros(spec.n, bool)


def default_cache() -> Path:
    return Path(os.environ.get("CAE_FAST_EXTERNAL_CACHE", Path.home() / ".cache" / "cae_fast_external"))


def cached_path(split: str, spec: SequenceSpec, cache: Path | None = None) -> Path:
    return Path(cache or default_cache()) / f"v{VERSION}" / split / f"{spec.name}.npz"


def load(split: str, spec: SequenceSpec, cache: Path | None = None) -> tuple[Path, bool]:
    """The sequence's ``.npz`` (generating and caching it on first use); True when it was reused."""
    path = cached_path(split, spec, cache)
    if path.is_file():
        return path, True
    path.parent.mkdir(parents=True, exist_ok=True)
    seq = generate(split, spec)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
    try:
        np.savez_compressed(tmp, **seq.arrays())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path, False
