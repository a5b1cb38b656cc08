"""The fused ops, one place that knows whether the compiled extension exists.

Every op here runs its compiled kernel (``cae_fast._C``: C++ on CPU, CUDA on GPU)
when the extension loaded, else its pure-PyTorch twin in ``reference``. The choice is made
once, at import, and said once; ``backend()`` reports it. ``CAE_FAST_BACKEND=reference`` forces
the reference path (used by the tests that compare the two). On a device type CI never ran
(CUDA), each compiled op is checked against its reference on first use (``selfcheck``).
"""

from __future__ import annotations

import os
import warnings

import torch

from cae_fast.ops import reference, selfcheck
from cae_fast.ops._checks import (
    check_frame_stats,
    check_nn_ref,
    check_patch_detail,
    check_patch_mse,
    check_pcc_mse,
)
from cae_fast.ops.reference import FRAME_STATS

__all__ = [
    "FRAME_STATS",
    "backend",
    "backends_used",
    "frame_stats",
    "load_error",
    "nn_ref",
    "patch_detail",
    "patch_mse",
    "pcc_mse",
    "reference",
]


def _load() -> tuple[bool, str | None]:
    if os.environ.get("CAE_FAST_BACKEND", "").strip().lower() == "reference":
        return False, "CAE_FAST_BACKEND=reference"
    try:
        from cae_fast import _C  # noqa: F401  (loading the .so registers torch.ops.cae_fast)
    except ImportError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    try:
        from cae_fast.ops import _register  # noqa: F401  (fake impls + autograd)
    except RuntimeError as exc:  # a stale build that lacks an op this source knows
        return False, f"stale extension, rebuild it: {exc}"
    return True, None


_COMPILED, _LOAD_ERROR = _load()
if not _COMPILED and _LOAD_ERROR != "CAE_FAST_BACKEND=reference":
    warnings.warn(
        "cae_fast: compiled ops unavailable, using the pure-PyTorch reference ops "
        f"(slower, same results). Reason: {_LOAD_ERROR}",
        RuntimeWarning,
        stacklevel=2,
    )


def backend() -> str:
    """Which implementation runs: 'compiled-cuda' (CPU and CUDA kernels), 'compiled-cpu', or 'reference'."""
    if not _COMPILED:
        return "reference"
    has_cuda = torch._C._dispatch_has_kernel_for_dispatch_key("cae_fast::pcc_mse", "CUDA")
    return "compiled-cuda" if has_cuda else "compiled-cpu"


def backends_used() -> dict[str, str]:
    """Which backend each op that ran used: a compiled one, or the reference after a failed
    first-use check (``selfcheck``) or without the extension."""
    return selfcheck.ran()


def load_error() -> str | None:
    """Why the compiled extension is not used, or None when it is."""
    return _LOAD_ERROR


def pcc_mse(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PCC and MSE of ``x`` against ``y`` (shape ``[B, ...]``), one read of each.

    Returns float32 ``(pcc[B], mse[B])`` (float64 for float64 input). Sums are float64 around a
    per-image pivot, so nearly constant images stay accurate. An image with zero variance (in x
    or y) has PCC ``reference.PCC_OF_CONSTANT`` (0.0), never NaN. Not differentiable.
    """
    if not _COMPILED:
        selfcheck.note("pcc_mse", "reference")
        return reference.pcc_mse(x, y)
    check_pcc_mse(x, y)
    return selfcheck.pick("pcc_mse", x.device)(x, y)


def nn_ref(
    z: torch.Tensor, h_ref: torch.Tensor, exclude: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest neighbour of each latent ``z[B, D]`` in ``h_ref[M, D]``: ``(dist2[B], idx[B])``.

    ``dist2`` is the squared L2 distance (differentiable in ``z``: ``d dist2/dz = 2(z - h_ref[idx])``);
    ``idx`` the row of ``h_ref`` (int64, ties -> lowest index). ``exclude[i] >= 0`` names a row
    that ``z[i]`` may not match, so a frame that is also in H_ref does not match itself.
    ``h_ref`` never receives a gradient: H_ref is encoded without grad by design. The search is
    tiled over M, so the B x M matrix is never materialised.
    """
    if not _COMPILED:
        selfcheck.note("nn_ref", "reference")
        return reference.nn_ref(z, h_ref, exclude)
    check_nn_ref(z, h_ref, exclude)
    return selfcheck.pick("nn_ref", z.device)(z, h_ref, exclude)


def frame_stats(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-frame detail statistics of frames ``x`` against reconstructions ``y`` (``[B, C, H, W]``,
    0-1 scale): float64 ``[B, 4]`` with columns ``FRAME_STATS`` = (ssim, lap_x, lap_y,
    lap_mean_x). SSIM follows scikit-image's defaults (7x7 uniform window, data_range 1);
    the Laplacian columns are means over interior pixels of the channel-mean image (see
    ``reference.frame_stats``). One pass over each frame pair; not differentiable.
    """
    if not _COMPILED:
        selfcheck.note("frame_stats", "reference")
        return reference.frame_stats(x, y)
    check_frame_stats(x, y)
    return selfcheck.pick("frame_stats", x.device)(x, y)


def patch_mse(x: torch.Tensor, y: torch.Tensor, patch: int) -> torch.Tensor:
    """Local error map: mean squared residual of each ``patch x patch`` tile over all channels,
    ``[B, H//patch, W//patch]`` float32 (float64 for float64 input); sums in float64."""
    if not _COMPILED:
        selfcheck.note("patch_mse", "reference")
        return reference.patch_mse(x, y, patch)
    check_patch_mse(x, y, patch)
    return selfcheck.pick("patch_mse", x.device)(x, y, patch)


def patch_detail(x: torch.Tensor, y: torch.Tensor, patch: int) -> torch.Tensor:
    """Local detail maps: the mean squared Laplacian of the channel-mean image in each ``patch x
    patch`` tile, of frames ``x`` (``[:, 0]``) and reconstructions ``y`` (``[:, 1]``),
    ``[B, 2, H//patch, W//patch]`` float32 (float64 for float64 input); sums in float64."""
    if not _COMPILED:
        selfcheck.note("patch_detail", "reference")
        return reference.patch_detail(x, y, patch)
    check_patch_detail(x, y, patch)
    return selfcheck.pick("patch_detail", x.device)(x, y, patch)
