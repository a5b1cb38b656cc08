"""Peers for every detection table: what a user could run instead of cae_fast in ten lines.

PyOD's IsolationForest and ECOD on 16 x 16 thumbnails (flattened RGB, 0-1), fitted on the frames
they score (unsupervised, like cae_fast on its own data), with PyOD's defaults: their decision is
PyOD's ``labels_`` (its default contamination, 10%, flagged). Needs the ``[bench]`` extra.
``lapvar`` and the paper-exact recipe are rows of the tool itself (``--score lapvar``, ``--paper``):
see ``benchmarks.external.runner``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

THUMB = 16
SEED = 0


def thumbnails(images: np.ndarray, size: int = THUMB) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, size*size*3) float32 in [0, 1], each frame area-averaged."""
    n, h, w, _ = images.shape
    if h % size == 0 and w % size == 0:  # exact block means
        x = images.reshape(n, size, h // size, size, w // size, 3).mean(axis=(2, 4), dtype=np.float32)
    else:
        x = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BOX)) for f in images])
    return (np.asarray(x, np.float32) / 255.0).reshape(n, -1)


@dataclass
class PeerResult:
    score: np.ndarray  # (N,) higher = dirtier
    is_clean: np.ndarray  # (N,) bool: the peer's own decision
    seconds: float  # thumbnails, fit and score


def _pyod(make: Callable[[], object], images: np.ndarray) -> PeerResult:
    t0 = time.perf_counter()
    x = thumbnails(images)
    model = make()
    model.fit(x)
    score = np.asarray(model.decision_scores_, np.float64)  # PyOD: higher = more outlying
    is_clean = np.asarray(model.labels_) == 0
    return PeerResult(score, is_clean, time.perf_counter() - t0)


def iforest(images: np.ndarray) -> PeerResult:
    from pyod.models.iforest import IForest

    return _pyod(lambda: IForest(random_state=SEED), images)


def ecod(images: np.ndarray) -> PeerResult:
    from pyod.models.ecod import ECOD

    return _pyod(ECOD, images)


PEERS: dict[str, Callable[[np.ndarray], PeerResult]] = {"iforest": iforest, "ecod": ecod}
