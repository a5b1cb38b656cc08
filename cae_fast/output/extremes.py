"""The frames the report shows at both ends of the ranking, and their reconstructions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cae_fast.data import FrameDataset, to_float

N_EXTREMES = 4  # frames shown at each end of the ranking
EXTREME_GAP = 25  # frames between two shown from the same end (in stored order)


@dataclass
class Extremes:
    """Frames to show in the grid: ``indices`` (most anomalous first, then least), their images
    and reconstructions as float ``(K, S, S, 3)`` in [0, 1], and their raw scores."""

    indices: np.ndarray
    originals: np.ndarray
    recons: np.ndarray
    scores: np.ndarray
    n_most: int


def pick_extremes(
    dirt: np.ndarray, n: int = N_EXTREMES, gap: int = EXTREME_GAP
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` dirtiest frames (dirtiest first) and the ``n`` cleanest (cleanest first), at least
    ``gap`` frames apart at each end: neighbours in a video look alike, four copies of one moment
    would show less. The gap shrinks when the sequence is too short for it."""
    order = np.argsort(np.asarray(dirt), kind="stable")
    n = min(n, len(order))
    gap = min(gap, len(order) // (2 * n) if n else 0)
    return _spaced(order[::-1], n, gap), _spaced(order, n, gap)


def _spaced(ranked: np.ndarray, n: int, gap: int) -> np.ndarray:
    picked: list[int] = []
    for i in ranked.tolist():
        if all(abs(i - j) >= gap for j in picked):
            picked.append(i)
            if len(picked) == n:
                break
    return np.asarray(picked, np.int64)


@torch.no_grad()
def reconstruct(
    model, images: np.ndarray, indices: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``indices`` of uint8 ``images`` and the model's reconstructions, float HWC in [0, 1]."""
    model.eval()
    x = to_float(FrameDataset(images).__getitems__([int(i) for i in indices]), device)
    recon = model(x)[0].float().clamp(0, 1)
    to_hwc = lambda t: t.permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
    return to_hwc(x), to_hwc(recon)


def extremes_from_model(
    model, images: np.ndarray, dirt: np.ndarray, raw: np.ndarray, device: torch.device
) -> Extremes:
    """The most and least anomalous frames by per-frame dirtiness ``dirt``, reconstructed again by
    ``model`` (only these few frames: reconstructions of the whole set are never kept)."""
    most, least = pick_extremes(dirt)
    idx = np.concatenate([most, least])
    originals, recons = reconstruct(model, images, idx, device)
    return Extremes(idx, originals, recons, np.asarray(raw)[idx], len(most))
