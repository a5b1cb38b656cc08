"""Pure-PyTorch twins of the fused ops: the fallback when no compiled op is available, and the
oracle the compiled ops are tested against. Same signatures, same conventions, same results."""

from __future__ import annotations

import torch

from cae_fast.ops._checks import (
    check_frame_stats,
    check_nn_ref,
    check_patch_detail,
    check_patch_mse,
    check_pcc_mse,
)

# Zero-variance images get this PCC instead of NaN (csrc/common/moments.h: kPccOfConstant).
PCC_OF_CONSTANT = 0.0

# Rows of the B x M distance matrix materialised at once; keeps memory bounded for large M.
_NN_TILE_ELEMS = 1 << 24


def _out_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def pcc_mse(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image Pearson correlation and mean squared error of ``x`` against ``y``.

    ``x, y``: same shape ``[B, ...]``, floating point. Returns ``(pcc[B], mse[B])`` in float32
    (float64 for float64 input). Sums run in float64 around a per-image pivot, as the fused op.
    """
    check_pcc_mse(x, y)
    b = x.shape[0]
    xd = x.reshape(b, -1).to(torch.float64)
    yd = y.reshape(b, -1).to(torch.float64)
    mse = (xd - yd).pow(2).mean(1)
    xc = xd - xd.mean(1, keepdim=True)
    yc = yd - yd.mean(1, keepdim=True)
    vx = xc.pow(2).sum(1)
    vy = yc.pow(2).sum(1)
    ok = (vx > 0) & (vy > 0)
    pcc = (xc * yc).sum(1) / torch.sqrt(torch.where(ok, vx * vy, torch.ones_like(vx)))
    pcc = torch.where(ok, pcc.clamp(-1.0, 1.0), torch.full_like(pcc, PCC_OF_CONSTANT))
    out = _out_dtype(x.dtype)
    return pcc.to(out), mse.to(out)


def nn_ref(
    z: torch.Tensor, h_ref: torch.Tensor, exclude: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared L2 distance from each row of ``z`` to its nearest row of ``h_ref``, and its index.

    Ties go to the lowest index; ``exclude[i] >= 0`` forbids row ``exclude[i]`` for ``z[i]``.
    Differentiable in ``z`` only: ``h_ref`` is detached, as H_ref is encoded without grad.
    The search is tiled over ``h_ref`` so memory stays bounded for large M.
    """
    check_nn_ref(z, h_ref, exclude)
    h = h_ref.detach()
    b, m = z.shape[0], h.shape[0]
    tile = max(1, _NN_TILE_ELEMS // max(b, 1))
    best = torch.full((b,), float("inf"), dtype=torch.float64, device=z.device)
    idx = torch.zeros(b, dtype=torch.int64, device=z.device)
    rows = torch.arange(b, device=z.device)
    with torch.no_grad():
        zd = z.detach().to(torch.float64)
        for start in range(0, m, tile):
            hd = h[start : start + tile].to(torch.float64)
            d2 = torch.cdist(zd, hd).pow(2)
            if exclude is not None:
                local = exclude - start
                hit = (local >= 0) & (local < hd.shape[0])
                d2[rows[hit], local[hit]] = float("inf")
            val, arg = d2.min(1)  # min returns the first minimum: lowest index on ties
            better = val < best
            best = torch.where(better, val, best)
            idx = torch.where(better, arg + start, idx)
    diff = z - h[idx].to(z.dtype)
    dist2 = diff.pow(2).sum(1)
    return dist2, idx


def nn_ref_backward(
    grad_dist2: torch.Tensor, z: torch.Tensor, h_ref: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """Gradient of ``nn_ref``'s distances with respect to ``z``: ``2 g (z - h_ref[idx])``."""
    return 2.0 * grad_dist2.unsqueeze(1) * (z - h_ref[idx].to(z.dtype))


# Columns of frame_stats' output (csrc/common/frame_stats.h: FrameStat).
FRAME_STATS = ("ssim", "lap_x", "lap_y", "lap_mean_x")
SSIM_WIN = 7
_SSIM_C1, _SSIM_C2 = 0.01**2, 0.03**2
_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def frame_stats(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-frame detail statistics of ``x`` against ``y`` (``[B, C, H, W]``, values on a 0-1 scale).

    Returns float64 ``[B, 4]``, columns ``FRAME_STATS``: mean SSIM (scikit-image's default:
    7x7 uniform window, sample covariance, data_range 1, valid windows, mean over channels);
    mean squared 4-neighbour Laplacian of the channel-mean (gray) image of x and of y, over
    interior pixels; and the mean Laplacian of gray x (its variance is ``lap_x - lap_mean_x**2``).
    """
    check_frame_stats(x, y)
    xd, yd = x.to(torch.float64), y.to(torch.float64)
    c = x.shape[1]
    box = torch.full((c, 1, SSIM_WIN, SSIM_WIN), 1.0 / SSIM_WIN**2, dtype=torch.float64, device=x.device)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, box, groups=c)

    ux, uy = mean(xd), mean(yd)
    n = SSIM_WIN**2
    cov = n / (n - 1)
    vx = cov * (mean(xd * xd) - ux * ux)
    vy = cov * (mean(yd * yd) - uy * uy)
    vxy = cov * (mean(xd * yd) - ux * uy)
    s = ((2 * ux * uy + _SSIM_C1) * (2 * vxy + _SSIM_C2)) / (
        (ux * ux + uy * uy + _SSIM_C1) * (vx + vy + _SSIM_C2)
    )
    lap = torch.tensor(_LAPLACIAN, dtype=torch.float64, device=x.device).view(1, 1, 3, 3)
    gx, gy = xd.mean(1, keepdim=True), yd.mean(1, keepdim=True)
    lx = torch.nn.functional.conv2d(gx, lap).flatten(1)
    ly = torch.nn.functional.conv2d(gy, lap).flatten(1)
    return torch.stack([s.flatten(1).mean(1), lx.pow(2).mean(1), ly.pow(2).mean(1), lx.mean(1)], dim=1)


def patch_mse(x: torch.Tensor, y: torch.Tensor, patch: int) -> torch.Tensor:
    """Mean squared residual of each ``patch x patch`` tile over all channels: ``[B, H//patch, W//patch]``
    float32 (float64 for float64 input); a remainder strip at the bottom/right is left out."""
    check_patch_mse(x, y, patch)
    r = (x.to(torch.float64) - y.to(torch.float64)).pow(2).mean(1, keepdim=True)
    return torch.nn.functional.avg_pool2d(r, patch)[:, 0].to(_out_dtype(x.dtype))


def patch_detail(x: torch.Tensor, y: torch.Tensor, patch: int) -> torch.Tensor:
    """Detail of each ``patch x patch`` tile: the mean squared 4-neighbour Laplacian of the
    channel-mean image over the tile's interior pixels (those with four neighbours in the frame),
    of ``x`` (``[:, 0]``) and of ``y`` (``[:, 1]``): ``[B, 2, H//patch, W//patch]`` float32 (float64
    for float64 input). A remainder strip is left out; a tile without interior pixels is 0."""
    check_patch_detail(x, y, patch)
    b, _, h, w = x.shape
    gh, gw = h // patch, w // patch
    lap = torch.tensor(_LAPLACIAN, dtype=torch.float64, device=x.device).view(1, 1, 3, 3)
    gray = torch.cat([t.to(torch.float64).mean(1, keepdim=True) for t in (x, y)], 1)
    sq = torch.nn.functional.conv2d(gray.reshape(2 * b, 1, h, w), lap).pow(2)  # pixel (i+1, j+1)
    sq = torch.nn.functional.pad(sq, (1, 1, 1, 1))[..., : gh * patch, : gw * patch]
    inside = torch.nn.functional.pad(torch.ones_like(sq[:1, :, 1 : h - 1, 1 : w - 1]), (1, 1, 1, 1))
    inside = inside[..., : gh * patch, : gw * patch]
    total = torch.nn.functional.avg_pool2d(sq, patch, divisor_override=1)
    count = torch.nn.functional.avg_pool2d(inside, patch, divisor_override=1)
    out = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    return out.reshape(b, 2, gh, gw).to(_out_dtype(x.dtype))
