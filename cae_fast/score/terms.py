"""Per-frame scores from one pass over the frames and their reconstructions (the median filter
over the frame index that turns them into the paper's ``PCC_med`` is in ``cae_fast.score.median``).

Scores live in a registry: each name maps to a function of a ``Batch`` (frames, reconstructions,
latents, and the reference set H_ref when asked for) that may compute several scores at once
(``pcc`` and ``mse`` come from one fused ``ops.pcc_mse``), and each function runs once per batch
however many of its scores are asked for. The scores computed over the whole sequence from these
(robust z, the terms, ``combined``) are in ``cae_fast.score.combine``; ``score_frames`` runs both.
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
from cae_fast.score.combine import COMBINED, LAP_EPS, TERMS, TILE_GRID
from cae_fast.score.lens import persistence as persistence_of
from cae_fast.score.shots import find_shots


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


def _frame_stats(b: Batch) -> dict[str, torch.Tensor]:
    st = ops.frame_stats(b.x, b.recon)
    ssim, lap_x, lap_y, lap_mean_x = st[:, 0], st[:, 1], st[:, 2], st[:, 3]
    # The half-resolution frame's detail: the same Laplacian energy (laplacian.h) read as one whole-frame
    # tile by patch_detail, which skips the SSIM that frame_stats would compute and throw away.
    half = torch.nn.functional.avg_pool2d(b.x, 2)
    lap_half = ops.patch_detail(half, half, half.shape[-1])[:, 0, 0, 0].double()
    return {
        "ssim": ssim,
        # log(detail of the reconstruction / detail of the frame). The CAE reproduces the detail a
        # typical scene has; a frame that lost detail (wet-lens blur, fog, glare, motion blur) sits
        # above the crowd, one that gained it (drop rims, noise) below: corruptions push it both ways.
        "lost_detail": torch.log((lap_y + LAP_EPS) / (lap_x + LAP_EPS)),
        # The no-model baseline a user tries first: variance of the Laplacian (low = blurred).
        "lapvar": lap_x - lap_mean_x * lap_mean_x,
        # log(detail at full resolution / detail at half resolution), no network: blur lowers it,
        # noise raises it, and a plainer or busier scene moves both scales alike.
        "fine_detail": torch.log((lap_x + LAP_EPS) / (lap_half + LAP_EPS)),
    }


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
    "fine_detail": _frame_stats,
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

# Per-frame scores a user can pick (--score). patch_err and tile_rgb are intermediate maps, and the
# detail ratios are two-sided (a frame can be too sharp or too soft): they only enter the combined scores.
INGREDIENTS = frozenset({"patch_err", "tile_rgb", "lost_detail", "lost_detail_tiles", "fine_detail"})
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
