"""Built-in labelled data sets for the train-on-normal / score-a-test-set workflow, usable wherever
a data path is: ``builtin:NAME[:SPLIT][:N]``.

- ``digits``: scikit-learn's 8x8 handwritten digits (they ship inside scikit-learn; nothing is
  downloaded), upscaled bilinearly to S x S grey RGB. In ``val`` and ``test``, ``DIRTY_FRACTION``
  of the images get heavy Gaussian pixel noise (label 1), the course exercise's "MNIST with 10%
  noise-corrupted test images".
- ``drive``: the synthetic driving benchmark (``data.synth``) with every corruption kind. ``train``
  is a clean sequence (``dirty_fraction=0``, the generator's clean twin) of its own scene seed;
  ``val`` and ``test`` are mixed sequences (the generator's default 9% dirty, in short runs) of
  other seeds, so no test scene was seen in training.
- ``drive-clean``: the same synthetic driving in every split, with nothing corrupted (labels all 0),
  on scene seeds of its own: the clean-only sequence on which a cut must remove almost nothing
  (issue 29). Its frames are those of the mixed sequence of the same seed wherever that one is clean.

SPLIT is ``train`` (normal only), ``val`` or ``test`` (labelled, mixed); without it the command
line picks by role (``--train-data`` train, ``--val-data`` val, ``--data`` test). N makes a smaller
set: the split's first N images (digits; the first N frames for drive), again with the split's
share corrupted. The sets are fixed: their seeds are constants here, not ``--seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PREFIX = "builtin:"
SPLITS = ("train", "val", "test")
DIRTY_FRACTION = 0.10  # digits: share of noise-corrupted images in val and test
DIGITS_NOISE_SIGMA = (0.15, 0.35)  # digits: std of the added noise (0-1 scale), drawn per image
DIGITS_SPLIT = (0.6, 0.2, 0.2)  # train / val / test shares of the 1797 digits
DIGITS_SEED = 0
DRIVE_FRAMES = {"train": 2000, "val": 500, "test": 1000}
DRIVE_SEEDS = {"train": 101, "val": 102, "test": 103}
DRIVE_CLEAN_SEEDS = {"train": 111, "val": 112, "test": 113}  # scenes no drive split uses
DRIVE_RUN_LENGTH = (8, 30)  # short corrupted runs: every kind appears in a test split of 1000 frames
# Image size when --image-size is not given: the digits are tiny, the driving scene has detail.
DEFAULT_SIZE = {"digits": 32, "drive": 64, "drive-clean": 64}


@dataclass(frozen=True)
class BuiltinSpec:
    name: str
    split: str
    n: int | None  # None: the whole split

    def __str__(self) -> str:
        return f"{PREFIX}{self.name}:{self.split}" + (f":{self.n}" if self.n is not None else "")


def is_builtin(path: str | None) -> bool:
    return bool(path) and str(path).startswith(PREFIX)


def parse(path: str, split: str = "test") -> BuiltinSpec:
    """``builtin:NAME[:SPLIT][:N]``, ``split`` standing in for a missing SPLIT. Bad names: ``ValueError``."""
    parts = str(path)[len(PREFIX) :].split(":")
    name, n = parts[0], None
    for part in parts[1:]:
        if part.isdigit() and n is None:
            n = int(part)
        elif part in SPLITS:
            split = part
        else:
            raise ValueError(f"expected builtin:NAME[:SPLIT][:N] with SPLIT one of {', '.join(SPLITS)}")
    if name not in DEFAULT_SIZE:
        raise ValueError(f"unknown built-in data set {name!r}; known: {', '.join(DEFAULT_SIZE)}")
    if n is not None and n < 1:
        raise ValueError("N must be >= 1")
    return BuiltinSpec(name, split, n)


def with_split(path: str | None, split: str) -> str | None:
    """``path`` with its SPLIT made explicit (``split`` when it had none); other paths unchanged."""
    return str(parse(path, split)) if is_builtin(path) else path


@dataclass
class BuiltinData:
    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N,) uint8, 1 = corrupted
    kinds: np.ndarray  # (N,) int8, -1 clean, else an index into kind_names
    kind_names: tuple[str, ...]
    description: str


def load_builtin(path: str, image_size: int) -> BuiltinData:
    spec = parse(path)
    return (_digits if spec.name == "digits" else _drive)(spec, image_size)


def _digits(spec: BuiltinSpec, size: int) -> BuiltinData:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    raw = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8), ink = 1
    order = np.random.default_rng(DIGITS_SEED).permutation(len(raw))
    bounds = np.cumsum([0, *(round(f * len(raw)) for f in DIGITS_SPLIT[:2])]).tolist() + [len(raw)]
    j = SPLITS.index(spec.split)
    rows = order[bounds[j] : bounds[j + 1]][: spec.n]
    x = torch.nn.functional.interpolate(
        torch.from_numpy(raw[rows])[:, None], size=(size, size), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    labels = np.zeros(len(rows), np.uint8)
    if spec.split != "train":
        rng = np.random.default_rng([DIGITS_SEED, j])
        dirty = rng.choice(len(rows), round(DIRTY_FRACTION * len(rows)), replace=False)
        sigma = rng.uniform(*DIGITS_NOISE_SIGMA, size=(len(dirty), 1, 1)).astype(np.float32)
        x[dirty] += sigma * rng.standard_normal((len(dirty), size, size), dtype=np.float32)
        labels[dirty] = 1
    grey = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    images = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
    kinds = np.where(labels == 1, 0, -1).astype(np.int8)
    what = "normal only" if spec.split == "train" else f"{int(labels.sum())} noise-corrupted"
    return BuiltinData(images, labels, kinds, ("noise",), f"{spec}: scikit-learn digits, {what}")


def _drive(spec: BuiltinSpec, size: int) -> BuiltinData:
    from cae_fast.data.synth import KINDS, SynthSpec, generate

    clean = spec.split == "train" or spec.name == "drive-clean"
    seeds = DRIVE_CLEAN_SEEDS if spec.name == "drive-clean" else DRIVE_SEEDS
    synth = SynthSpec(
        n_frames=spec.n or DRIVE_FRAMES[spec.split],
        size=size,
        seed=seeds[spec.split],
        kinds=KINDS,
        run_length=DRIVE_RUN_LENGTH,
        **({"dirty_fraction": 0.0} if clean else {}),
    )
    data = generate(synth)
    what = "clean" if clean else f"{int(data.labels.sum())} corrupted ({', '.join(KINDS)})"
    description = f"{spec}: synthetic driving, {what}"
    return BuiltinData(data.images, data.labels, data.kinds, tuple(KINDS), description)
