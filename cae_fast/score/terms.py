"""Per-frame scores from one pass over the frames and their reconstructions (the median filter
over the frame index that turns them into the paper's ``PCC_med`` is in ``cae_fast.score.median``).

Scores live in a registry: each name maps to a function of a ``Batch`` (frames, reconstructions,
latents, and the reference set H_ref when asked for) that may compute several scores at once
(``pcc`` and ``mse`` come from one fused ``ops.pcc_mse``), and each function runs once per batch
however many of its scores are asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cae_fast import dist, ops
from cae_fast.config import Config
from cae_fast.data import FrameDataset, to_float
from cae_fast.data.cache import release_rows
from cae_fast.model.cae import CAE
from cae_fast.model.encode import encode_frames
from cae_fast.score.lens import deviation as colour_deviation
from cae_fast.score.lens import persistence as persistence_of
from cae_fast.score.lens import persistent as lasting
from cae_fast.score.shots import find_shots, shot_relative


@dataclass(frozen=True)
class Reference:
    """H_ref for scoring: the eval-mode latents ``h`` ``[M, D]`` (float32, on the scoring device)
    of ``M = min(m_ref, N)`` frames of the scored sequence, and for each of the ``N`` frames the
    row of ``h`` that is the frame itself (``exclude_of``, int64 on the CPU, -1 when the frame is
    not in H_ref), so a frame never matches itself. ``exclude_of`` is None when ``M < 2``: a
    single reference row leaves nothing else to match, and it then scores 0 against itself."""

    h: torch.Tensor
    exclude_of: torch.Tensor | None


def reference_set(model: CAE, images: np.ndarray, cfg: Config, device: torch.device) -> Reference:
    """Encode H_ref: ``min(cfg.m_ref, N)`` frames drawn with ``torch.Generator().manual_seed(cfg.seed)``
    (``randperm(N)[:M]``, sorted), the same on every torchrun rank (``encode_frames`` all-gathers)."""
    n = images.shape[0]
    m_ref = cfg.m_ref if cfg.m_ref is not None else cfg.resolved().m_ref
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))[: min(m_ref, n)].sort().values
    h = encode_frames(model, images, rows, cfg, device).float().contiguous()
    exclude_of = None
    if len(rows) >= 2:
        exclude_of = torch.full((n,), -1, dtype=torch.int64)
        exclude_of[rows] = torch.arange(len(rows))
    return Reference(h, exclude_of)


@dataclass(frozen=True)
class Batch:
    """What a scorer sees of frames ``rows`` (``start:stop`` of the sequence): the frames ``x`` and
    reconstructions ``recon`` (float32 NCHW, 0-1), the latents ``z`` (float32 ``[B, D]``, eval
    mode) and H_ref (``ref``: only when a score in ``REF_SCORES`` is asked for, else None)."""

    x: torch.Tensor
    recon: torch.Tensor
    z: torch.Tensor
    rows: slice
    ref: Reference | None = None


BatchScorer = Callable[[Batch], dict[str, torch.Tensor]]


def _pcc_mse(b: Batch) -> dict[str, torch.Tensor]:
    pcc, mse = ops.pcc_mse(b.x, b.recon)
    return {"pcc": pcc, "mse": mse}


# Floor on a Laplacian energy (0-1 pixel scale): keeps the log ratio finite for flat frames.
LAP_EPS = 1e-6


def _frame_stats(b: Batch) -> dict[str, torch.Tensor]:
    st = ops.frame_stats(b.x, b.recon)
    ssim, lap_x, lap_y, lap_mean_x = st[:, 0], st[:, 1], st[:, 2], st[:, 3]
    return {
        "ssim": ssim,
        # log(detail of the reconstruction / detail of the frame). The CAE reproduces the detail a
        # typical scene has; a frame that lost detail (wet-lens blur, fog, glare, motion blur) sits
        # above the crowd, one that gained it (drop rims, noise) below: corruptions push it both ways.
        "lost_detail": torch.log((lap_y + LAP_EPS) / (lap_x + LAP_EPS)),
        # The no-model baseline a user tries first: variance of the Laplacian (low = blurred).
        "lapvar": lap_x - lap_mean_x * lap_mean_x,
    }


# The tile maps are a TILE_GRID x TILE_GRID grid of tiles, whatever the frame size.
TILE_GRID = 8
# A frame's bad_tiles score is the mean of its WORST_TILES most unusual tiles: one tile is noisy,
# a mud splat or a drop covers a few.
WORST_TILES = 4
# Floor on a tile's mean squared error before the log (0-1 pixel scale).
TILE_EPS = 1e-6


def _patch(b: Batch) -> dict[str, torch.Tensor]:
    patch = max(1, b.x.shape[-1] // TILE_GRID)
    return {"patch_err": ops.patch_mse(b.x, b.recon, patch).flatten(1)}


def _tile_rgb(b: Batch) -> dict[str, torch.Tensor]:
    # Not a fused op of ours: ATen's avg_pool2d already reads each frame once, on CPU and CUDA.
    patch = max(1, b.x.shape[-1] // TILE_GRID)
    return {"tile_rgb": torch.nn.functional.avg_pool2d(b.x, patch).flatten(1)}


def _lost_detail_tiles(b: Batch) -> dict[str, torch.Tensor]:
    """The median over the tiles of log(detail of the reconstruction / detail of the frame).

    The whole-frame ``lost_detail`` adds up the frame: on a wet lens the film that blurs every
    tile and the drops that add sharp rims to a few of them cancel there (benchmark, 64² and 96²).
    The median tile ignores the few tiles a drop, a splat or a small object sits on, and sees
    the blur of the rest."""
    patch = max(1, b.x.shape[-1] // TILE_GRID)
    d = ops.patch_detail(b.x, b.recon, patch).flatten(2).double()
    ratio = torch.log((d[:, 1] + LAP_EPS) / (d[:, 0] + LAP_EPS))
    return {"lost_detail_tiles": ratio.median(dim=1).values}


def _latent(b: Batch) -> dict[str, torch.Tensor]:
    """The latent distance to H_ref: squared L2 from each frame's latent to its nearest H_ref
    row other than the frame itself (fused ``ops.nn_ref``). Higher = dirtier."""
    exclude = None if b.ref.exclude_of is None else b.ref.exclude_of[b.rows].to(b.z.device)
    dist2, _idx = ops.nn_ref(b.z, b.ref.h, exclude)
    return {"latent": dist2}


SCORERS: dict[str, BatchScorer] = {
    "pcc": _pcc_mse,
    "mse": _pcc_mse,
    "ssim": _frame_stats,
    "lost_detail": _frame_stats,
    "lapvar": _frame_stats,
    "patch_err": _patch,  # (N, TILE_GRID**2) tile error map, the input of "bad_tiles"
    "tile_rgb": _tile_rgb,  # (N, 3 * TILE_GRID**2) tile colour means, the input of "stuck_colour"
    "lost_detail_tiles": _lost_detail_tiles,
    "latent": _latent,
}
# Scores that need H_ref: it is encoded once, before the pass, only when one of them is asked for.
REF_SCORES = frozenset({"latent"})
# Every score leaves this module as higher = dirtier. The three raw measurements that grow with
# likeness or sharpness are turned around here, once, after the combined scores have used them raw:
# pcc -> 1 - PCC, ssim -> 1 - SSIM, lapvar -> minus the variance of the Laplacian (sharper = cleaner).
# Affine flips leave every median filter and robust z cut where it was (docs/method.md).
TO_DIRTINESS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pcc": lambda v: 1.0 - v,
    "ssim": lambda v: 1.0 - v,
    "lapvar": np.negative,
}

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
    return np.stack(
        [
            _z(scores, scores["added_structure"] if "added_structure" in scores else added_structure(scores)),
            np.abs(_z(scores, scores["lost_detail"])),
            np.abs(_z(scores, scores["lost_detail_tiles"])),
            _z(scores, scores["bad_tiles"] if "bad_tiles" in scores else bad_tiles(scores)),
        ]
    )


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
    positive ``network_terms`` and of the model-free ``stuck_colour`` term, in robust z units over the
    sequence. Higher = dirtier.

    A corrupted frame often raises two terms part of the way (a weak raindrop run: added_structure and
    bad_tiles) while a clean frame that looks odd mostly raises one; the largest term alone weighs both
    the same. Measured against ``loudest`` on the same networks (docs/history.md, item 6; the
    record's names are older: the mapping is in docs/method.md). ``stuck_colour`` sees what sits on
    the lens even where the network learned to reproduce it (item 12); it is left out of
    ``loudest``, which was measured without it. ``persist`` as for ``stuck_colour``: one already in
    ``scores`` was computed with the same one (``score_frames``)."""
    z = np.maximum(network_terms(scores), 0.0)
    z = np.concatenate([z, np.maximum(_z(scores, _stuck_colour(scores, persist)), 0.0)[None]])
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
    "combined": (_ALL_TERMS, combined),
}
# Combined scores that are terms of another: kept beside it, so a user sees which term flagged a frame.
TERMS: dict[str, tuple[str, ...]] = {
    "loudest": ("bad_tiles", "added_structure"),
    "trim_score": ("bad_tiles", "added_structure", "loudest", "stuck_colour"),
    "combined": ("bad_tiles", "added_structure", "stuck_colour"),
}
# Per-frame scores a user can pick (--score). patch_err and tile_rgb are intermediate maps, and the
# detail ratios are two-sided (a frame can be too sharp or too soft): they only enter the combined scores.
INGREDIENTS = frozenset({"patch_err", "tile_rgb", "lost_detail", "lost_detail_tiles"})
SCORE_NAMES = tuple(n for n in (*SCORERS, *COMBINED) if n not in INGREDIENTS)


@torch.no_grad()
def score_frames(
    model: CAE,
    images: np.ndarray,
    cfg: Config,
    device: torch.device,
    names: tuple[str, ...] = ("pcc", "mse"),
) -> dict[str, np.ndarray]:
    """Scores ``names`` for every frame of uint8 ``images`` ``(N, S, S, 3)``: float32 arrays ``(N,)``,
    every one higher = dirtier (``TO_DIRTINESS``).

    Under torchrun each rank scores its contiguous share of the frames and the per-frame scores
    are all-gathered back in frame order (every rank gets them all) before the scores computed
    over the whole sequence (``COMBINED``) and any median filter. H_ref (``reference_set``) is
    drawn from and encoded on the scored frames, once before the pass, when a score needs it."""
    unknown = [n for n in names if n not in SCORERS and n not in COMBINED]
    if unknown:
        raise ValueError(f"unknown score(s) {unknown}; known: {', '.join(SCORE_NAMES)}")
    wanted = list(names)
    names = tuple(dict.fromkeys(d for n in names for d in (COMBINED[n][0] if n in COMBINED else (n,))))
    scorers = list(dict.fromkeys(SCORERS[n] for n in names))  # each distinct pass once, in order
    model.eval()
    dataset = FrameDataset(images)
    n = images.shape[0]
    first, last = dist.share(n)
    if n < dist.world():
        raise ValueError(f"{n} frames cannot be scored by {dist.world()} processes (fewer than one each)")
    ref = reference_set(model, images, cfg, device) if REF_SCORES.intersection(names) else None
    out: dict[str, np.ndarray] = {}
    for start in range(first, last, cfg.score_batch):
        stop = min(start + cfg.score_batch, last)
        x = to_float(dataset.__getitems__(list(range(start, stop))), device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
            recon, z = model(x)
        # Scores are measured in float32 whatever the network ran in, on NCHW-contiguous tensors:
        # one layout copy here instead of one inside every fused op (the network runs channels-last).
        batch = Batch(
            x.contiguous(), recon.float().contiguous(), z.float().contiguous(), slice(start, stop), ref
        )
        for scorer in scorers:
            for name, values in scorer(batch).items():
                if name in names:
                    v = values.float().cpu().numpy()
                    if name not in out:  # per-frame (N,) or per-frame maps (N, ...)
                        out[name] = np.empty((n, *v.shape[1:]), dtype=np.float32)
                    out[name][start:stop] = v
        release_rows(images, start, stop)
    if dist.active():
        _gather_scores(out, n, first, last)
    computed: dict[str, np.ndarray] = {}  # in float64 until every combined score is computed
    persist = {"persist": persistence_of(cfg.median_k, n)}
    if cfg.shots and persist["persist"] > 1 and "tile_rgb" in out:  # frames in order only
        out["shot"] = find_shots(out["tile_rgb"], min_len=persist["persist"])
    opts = {"stuck_colour": persist, "trim_score": persist, "combined": persist}
    for name, (_, fn) in COMBINED.items():  # terms come before the scores built from them
        if name in wanted or any(name in TERMS.get(w, ()) for w in wanted):
            computed[name] = fn({**out, **computed}, **opts.get(name, {}))
    out.update((name, v.astype(np.float32)) for name, v in computed.items())
    for name, flip in TO_DIRTINESS.items():
        if name in out:
            out[name] = flip(out[name]).astype(np.float32)
    return out


def _gather_scores(out: dict[str, np.ndarray], n: int, first: int, last: int) -> None:
    """Replace each of this rank's ``out[name][first:last]`` by the whole ``n`` rows from all ranks
    (``score_frames`` makes sure every rank scored at least one frame, so the names agree)."""
    for name in list(out):
        part = torch.from_numpy(np.ascontiguousarray(out[name][first:last]))
        out[name] = dist.gather_rows(part, n).numpy()
