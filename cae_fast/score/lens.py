"""The ``stuck_colour`` term: how far each place in a frame is from what that place usually looks
like, with no network involved. A camera on a vehicle sees sky at the top and road at the bottom of
every frame; what sits on the lens (mud, a water film, glare) changes the same places for as long as
it stays. A fixed overlay is also the easiest thing for the CAE to reproduce once it trains on it,
and the trimming judgement, made after two epochs, had already trusted most of the mud runs the
default then missed (docs/history.md, item 12, where the term is called ``lens``); the input still
shows them plainly against a running per-place baseline.

Inputs are the per-tile colour means of each frame (``tile_rgb``, ``(N, 3 * G * G)`` on the 0-1
scale, from the scoring pass), in frame order; ``score.combine.stuck_colour`` turns ``deviation`` into
robust z per tile position, as ``bad_tiles`` does with the CAE's tile errors, after ``persistent``
has kept of each tile's deviation only what lasts: what sits on the lens stays put for the whole
run, while a tree, a building or a car passing through a tile moves on within a few frames
(docs/history.md, item 18).
"""

from __future__ import annotations

import numpy as np

from cae_fast.score.median import median_filter_1d

# The baseline of each tile is its running median over LENS_WINDOW frames: long enough that a
# 120-frame run is a minority of every window, short enough to follow lighting drift. On the
# benchmark's 2,400-frame sequences 601 and 1,001 frames did equally well, 2,001 worse and the
# whole-sequence median worse still (lighting drifts); 301 (with frames averaged in 11s) worse.
# Within half a window of either end the window holds copies of the end frame ("nearest"), as
# measured; mirroring the ends instead lags behind a drift there.
LENS_WINDOW = 1001
# The running median is taken over every LENS_STRIDE-th frame: the same baseline at a fifth of
# the cost.
LENS_STRIDE = 5
# Floor on a tile's colour distance before the log (one grey level on the 0-1 scale).
LENS_EPS = 1.0 / 255.0


def baseline(tiles: np.ndarray, window: int = LENS_WINDOW, stride: int = LENS_STRIDE) -> np.ndarray:
    """Each column's running median over ``window`` frames (fewer when the sequence is shorter),
    taken on every ``stride``-th frame and held for the frames in between; same shape as ``tiles``."""
    n = tiles.shape[0]
    sub = tiles[::stride]
    k = max(window // stride, 1) | 1
    k = min(k, sub.shape[0] if sub.shape[0] % 2 else sub.shape[0] - 1)
    med = np.stack([median_filter_1d(col, k, "nearest") for col in sub.T], axis=1)
    return np.repeat(med, stride, axis=0)[:n]


def persistence(median_ks: tuple[int, ...], n: int) -> int:
    """The number of frames a deviation must last to count: the shortest median filter the cut
    uses (a run shorter than that is not looked for), shrunk to an odd number <= ``n``. 1 (no
    filter) for data that is not a sequence (``--median-k 1``): neighbours in index order mean
    nothing there."""
    k = min(median_ks) if median_ks else 1
    return max(1, min(k, n if n % 2 else n - 1))


def persistent(dev: np.ndarray, k: int) -> np.ndarray:
    """Each column (tile) of ``dev`` ``(N, tiles)`` replaced by its running median over ``k`` frames
    ("nearest" at the ends): a tile keeps a deviation only where it lasts about k / 2 frames or more."""
    if k <= 1:
        return dev
    return np.stack([median_filter_1d(col, k, "nearest") for col in np.asarray(dev).T], axis=1)


def deviation(tiles: np.ndarray) -> np.ndarray:
    """``(N, G * G)``: each tile's log colour distance from its running baseline (``baseline``),
    for ``tiles`` laid out as ``avg_pool2d(NCHW).flatten(1)`` (channel-major). Frames in order."""
    x = np.asarray(tiles, dtype=np.float64)
    n = x.shape[0]
    x = x.reshape(n, 3, -1)
    base = baseline(x.reshape(n, -1)).reshape(x.shape)
    return np.log(np.sqrt(((x - base) ** 2).sum(axis=1)) + LENS_EPS)
