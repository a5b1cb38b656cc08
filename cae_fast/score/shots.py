"""Shots: stretches of frames that show the same content, so that a frame is judged against its own
scene rather than against the whole sequence (docs/external.md, "Shot-aware scoring").

A cut is where the coarse layout of consecutive frames stops correlating: the Pearson correlation
of their tile colour means (``tile_rgb``, an 8 x 8 x 3 thumbnail) falls below ``SHOT_CUT``. A
corruption with a hard onset can do that too (fog, frost), but the content goes on under it: the
frame before such a segment and the frame after it still correlate (``SHOT_BRIDGE``), so that
segment is an insertion and its two boundaries are dropped. A corrupted run then stays a level
shift inside the shot it happened in, where the shot's median (``shot_relative``) shows it.
"""

from __future__ import annotations

import numpy as np

from cae_fast.config import SHOT_BRIDGE, SHOT_CUT


def _unit(t: np.ndarray) -> np.ndarray:
    t = t - t.mean(axis=-1, keepdims=True)
    return t / (np.linalg.norm(t, axis=-1, keepdims=True) + 1e-12)


def find_shots(
    tile_rgb: np.ndarray, min_len: int = 1, cut: float = SHOT_CUT, bridge: float = SHOT_BRIDGE
) -> np.ndarray:
    """``(N, T)`` tile colour means of frames in order -> ``(N,)`` int32 shot number, 0 first, one
    more at each cut. A segment between two cuts whose outer neighbours correlate at ``bridge`` or
    more is merged back into the shot around it. A shot shorter than ``min_len`` frames (the
    shortest median filter: a run shorter than that is not looked for) joins the one before it (the
    first one, the one after it): too few frames to be a baseline of their own."""
    t = _unit(np.asarray(tile_rgb, dtype=np.float64).reshape(len(tile_rgb), -1))
    n = len(t)
    if n < 2:
        return np.zeros(n, np.int32)
    step = np.einsum("ij,ij->i", t[1:], t[:-1])  # correlation of frame i+1 with frame i
    cuts = list(np.flatnonzero(step < cut) + 1)  # a cut just before these frames
    kept: list[int] = []
    i = 0
    while i < len(cuts):
        start = cuts[i]
        end = cuts[i + 1] if i + 1 < len(cuts) else None
        if end is not None and float(t[start - 1] @ t[end]) >= bridge:
            i += 2  # an insertion on content that went on: neither boundary is a cut
            continue
        kept.append(start)
        i += 1
    ends = [*kept[1:], n] if kept else []
    kept = [c for c, e in zip(kept, ends, strict=True) if e - c >= min_len]
    if kept and kept[0] < min_len:
        kept = kept[1:]
    starts = np.zeros(n, np.int32)
    starts[kept] = 1
    return np.cumsum(starts, dtype=np.int32)


def shot_relative(x: np.ndarray, shot: np.ndarray | None) -> np.ndarray:
    """``x`` minus the median of its shot (float64); ``x`` as it is when there are no shots. Shots
    are contiguous (``find_shots``), so each is one slice."""
    x = np.asarray(x, dtype=np.float64)
    if shot is None:
        return x
    out = np.empty_like(x)
    edges = np.r_[0, np.flatnonzero(np.diff(shot)) + 1, len(x)]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        out[a:b] = x[a:b] - np.median(x[a:b])
    return out
