"""Scores computed over the whole sequence from the per-frame ones (``score.terms`` measures those):
robust z, the terms that compare a frame with the others (``bad_tiles``, ``stuck_colour``,
``added_structure``), and the combined scores built from them (``combined``, the default;
``loudest``; ``trim_score``, the trimming's). Plain NumPy: no network, no torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cae_fast.score.lens import deviation as colour_deviation
from cae_fast.score.lens import persistent as lasting
from cae_fast.score.shots import shot_relative

# Floor on a Laplacian energy (0-1 pixel scale): keeps the log ratio finite for flat frames.
LAP_EPS = 1e-6

# The tile maps are a TILE_GRID x TILE_GRID grid of tiles, whatever the frame size.
TILE_GRID = 8
# A frame's bad_tiles score is the mean of its WORST_TILES most unusual tiles: one tile is noisy,
# a mud splat or a drop covers a few.
WORST_TILES = 4
# Floor on a tile's mean squared error before the log (0-1 pixel scale).
TILE_EPS = 1e-6

# MAD -> standard deviation for normal data.
MAD_TO_SIGMA = 1.4826


def robust_z(s: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """``(s - median) / (1.4826 * MAD)``, median and MAD over the whole sequence or over the frames
    of the bool mask ``reference``; a zero MAD falls back to the mean absolute deviation so a mostly
    constant score does not divide by zero."""
    s = np.asarray(s, dtype=np.float64)
    ref = s if reference is None else s[np.asarray(reference, bool)]
    med = np.median(ref)
    dev = np.abs(ref - med)
    scale = MAD_TO_SIGMA * np.median(dev)
    if not scale > 0:
        scale = float(dev.mean()) or 1.0
    return (s - med) / scale


def bad_tiles(scores: dict[str, np.ndarray]) -> np.ndarray:
    """How unusual a frame's worst tiles are *for their place in the image*: the log tile error
    in robust z units against the same tile position over the whole sequence, mean of the
    ``WORST_TILES`` largest. Sky and road differ in how well they reconstruct; an opaque splat on
    the road is unusual for the road even when its error is ordinary for the image as a whole.
    Higher = dirtier."""
    return _worst_tiles(np.log(scores["patch_err"].astype(np.float64) + TILE_EPS))


def stuck_colour(scores: dict[str, np.ndarray], persist: int = 1) -> np.ndarray:
    """The model-free term, a colour stuck on some place of the frame: each tile's colour distance
    from its running per-place baseline (``cae_fast.score.lens``), kept where it lasts ``persist``
    frames (``lens.persistent``; 1: every frame on its own), scored as ``bad_tiles`` scores tile
    errors. Higher = dirtier."""
    return _worst_tiles(lasting(colour_deviation(scores["tile_rgb"]), persist))


def _worst_tiles(e: np.ndarray) -> np.ndarray:
    """``(N, tiles)`` -> ``(N,)``: robust z of each tile against its own position over the
    sequence (a zero MAD counts as 1), mean of the ``WORST_TILES`` largest per frame."""
    med = np.median(e, axis=0)
    scale = MAD_TO_SIGMA * np.median(np.abs(e - med), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (e - med) / scale
    k = min(WORST_TILES, z.shape[1])
    return np.sort(z, axis=1)[:, -k:].mean(axis=1)


# Floor on 1 - SSIM before the log: a perfect reconstruction stays finite.
SSIM_EPS = 1e-6
# added_structure: degree of the fit of log(1 - SSIM) on log(detail), the rounds of refitting on the
# frames it fits, and how far (in robust SDs) a frame may lie from the fit to count in the next round.
EXCESS_DEGREE = 2
EXCESS_ROUNDS = 5
EXCESS_INLIER = 2.5


def added_structure(scores: dict[str, np.ndarray]) -> np.ndarray:
    """How much worse a frame reconstructs (1 - SSIM) than frames *as detailed as it* do: the
    residual of log(1 - SSIM) from a robust quadratic fit on the frame's own log Laplacian variance
    over the sequence. Higher = dirtier.

    A detailed stretch of clean road (foliage, many objects) reconstructs worse than open road,
    and plain 1 - SSIM flagged such stretches beside corrupted runs (benchmark: up to 70 clean
    frames before a fog run); a corruption makes a frame worse than its detail explains. The fit
    is refitted on its inliers, so the corrupted minority does not pull it, and evaluated with the
    detail clamped to the inliers' range: far outside it (heavy noise) the curve is not extrapolated.
    """
    y = np.log(1.0 - scores["ssim"].astype(np.float64) + SSIM_EPS)
    x = np.log(np.maximum(scores["lapvar"].astype(np.float64), 0.0) + LAP_EPS)
    n = len(y)
    if n < 4 * (EXCESS_DEGREE + 1) or np.ptp(x) == 0:
        return y - np.median(y)  # too few frames, or no spread of detail, to fit anything
    centre, spread = np.median(x), np.ptp(x)
    inlier = np.ones(n, bool)
    for _ in range(EXCESS_ROUNDS):
        lo, hi = x[inlier].min(), x[inlier].max()
        t = (np.clip(x, lo, hi) - centre) / spread
        design = np.vander(t, EXCESS_DEGREE + 1)
        coef = np.linalg.lstsq(design[inlier], y[inlier], rcond=None)[0]
        resid = y - design @ coef
        dev = np.abs(resid - np.median(resid[inlier]))
        scale = MAD_TO_SIGMA * np.median(dev[inlier])
        if not scale > 0:
            break
        nxt = dev <= EXCESS_INLIER * scale
        if nxt.sum() <= EXCESS_DEGREE + 1 or np.array_equal(nxt, inlier):
            break
        inlier = nxt
    return resid


def network_terms(scores: dict[str, np.ndarray]) -> np.ndarray:
    """``(4, N)`` robust z of each failure mode, oriented so that higher = dirtier: z(added_structure),
    |z(lost_detail)|, |z(lost_detail_tiles)|, z(bad_tiles).

    ``added_structure`` (1 - SSIM beyond what the frame's own detail explains) catches what adds
    structure the CAE cannot reproduce (drops, noise); the detail ratios, of the whole frame and
    of its median tile, catch what removes structure, which a plain reconstruction error scores as
    *cleaner* (the failure of the published reproduction); ``bad_tiles`` catches what covers part of
    the frame (mud, dirt). See docs/history.md, items 2 and 6.
    """
    return _oriented(scores, "added_structure", "lost_detail", "lost_detail_tiles", "bad_tiles")


def _oriented(scores: dict[str, np.ndarray], *names: str) -> np.ndarray:
    """``(len(names), N)``: the named network terms' robust z, oriented so that higher = dirtier
    (the detail ratios are two-sided: |z|)."""
    made = {"added_structure": added_structure, "bad_tiles": bad_tiles}
    rows = []
    for name in names:
        z = _z(scores, scores[name] if name in scores else made[name](scores))
        rows.append(np.abs(z) if name.startswith("lost_detail") else z)
    return np.stack(rows)


def _z(scores: dict[str, np.ndarray], term: np.ndarray) -> np.ndarray:
    """A term's robust z over the sequence, read against its own shot's median when the frames are
    in order (``scores["shot"]``): a scene that is simply more detailed, or reconstructs worse,
    than the others does not decide the verdict (docs/external.md, "Shot-aware scoring")."""
    return robust_z(shot_relative(term, scores.get("shot")))


def _stuck_colour(scores: dict[str, np.ndarray], persist: int) -> np.ndarray:
    return scores["stuck_colour"] if "stuck_colour" in scores else stuck_colour(scores, persist)


def loudest(scores: dict[str, np.ndarray]) -> np.ndarray:
    """How far a frame is from the crowd on its *worst* failure mode: the largest of
    ``network_terms``, in robust z units. Higher = dirtier. With ``stuck_colour``, the trimming
    judgement's score (``trim_score``): one loud term is reason enough to leave a frame out of training."""
    return network_terms(scores).max(axis=0)


def trim_score(scores: dict[str, np.ndarray], persist: int = 1) -> np.ndarray:
    """The trimming judgement's score (``TRIM_SCORE``): the larger of ``loudest`` and the robust z of
    the persistent ``stuck_colour``, for frames in order (``persist`` > 1); ``loudest`` alone otherwise.
    Higher = dirtier.

    A mud run the network's terms miss at the first judgement stays in training and is then
    reproduced (the failing mud runs of docs/history.md, item 19, were 41-100% trained on, the
    passing ones almost never); ``stuck_colour`` needs no network and sees it from the start
    (item 20). Frame by frame (``--median-k 1``) its clean tail is wide, and in the trimming it lost
    more than it won when it was not yet persistent (item 13), so unordered data keeps ``loudest``."""
    c = scores["loudest"] if "loudest" in scores else loudest(scores)
    if persist <= 1:
        return c
    return np.maximum(c, _z(scores, _stuck_colour(scores, persist)))


def combined(scores: dict[str, np.ndarray], persist: int = 1) -> np.ndarray:
    """The default score: the evidence of all failure modes together, the root-sum-square of the
    positive robust z of ``added_structure``, |z| of ``lost_detail``, z of ``bad_tiles``, the
    model-free ``stuck_colour`` and |z| of the model-free ``fine_detail``, in robust z units over the
    sequence. Higher = dirtier.

    A corrupted frame often raises two terms part of the way (a weak raindrop run: added_structure and
    bad_tiles) while a clean frame that looks odd mostly raises one; the largest term alone weighs both
    the same (docs/history.md, item 6). ``stuck_colour`` sees what sits on the lens even where the
    network learned to reproduce it (item 12). ``fine_detail``, the frame's balance between its
    finest scale and the next, reads blur and noise without reading how detailed the scene is; it
    replaced the median tile's detail ratio, which read a plainer scene as lost detail
    (docs/external.md, "The frame's own scale balance"). ``persist`` as for ``stuck_colour``: one
    already in ``scores`` was computed with the same one (``score_frames``)."""
    stuck = _z(scores, _stuck_colour(scores, persist))
    fine = np.abs(_z(scores, scores["fine_detail"]))
    z = np.concatenate([_oriented(scores, "added_structure", "lost_detail", "bad_tiles"), [stuck, fine]])
    z = np.maximum(z, 0.0)
    return robust_z(np.sqrt((z * z).sum(axis=0)))


# Scores computed from other scores over the whole sequence: name -> (inputs, function); the
# function takes the scores and, for the stuck_colour term and the scores that read it, the
# persistence the run's filter lengths give.
_ALL_TERMS = ("ssim", "lapvar", "lost_detail", "lost_detail_tiles", "patch_err", "tile_rgb")
COMBINED: dict[str, tuple[tuple[str, ...], Callable[..., np.ndarray]]] = {
    "bad_tiles": (("patch_err",), bad_tiles),
    "stuck_colour": (("tile_rgb",), stuck_colour),
    "added_structure": (("ssim", "lapvar"), added_structure),
    "loudest": (_ALL_TERMS, loudest),
    "trim_score": (_ALL_TERMS, trim_score),
    "combined": ((*_ALL_TERMS, "fine_detail"), combined),
}
# Combined scores that are terms of another: kept beside it, so a user sees which term flagged a frame.
TERMS: dict[str, tuple[str, ...]] = {
    "loudest": ("bad_tiles", "added_structure"),
    "trim_score": ("bad_tiles", "added_structure", "loudest", "stuck_colour"),
    "combined": ("bad_tiles", "added_structure", "stuck_colour"),
}
