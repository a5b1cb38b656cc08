"""Argument checks shared by the compiled and reference paths, so both fail with the same
one-line message instead of an error from deep inside a kernel."""

from __future__ import annotations

import torch

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_pair(op: str, x: torch.Tensor, y: torch.Tensor, image_batch: bool) -> None:
    """What every frame-vs-reconstruction op needs: same shape, a float dtype shared by both, one
    device; ``image_batch``: exactly ``[B, C, H, W]``."""
    if x.shape != y.shape or (image_batch and x.dim() != 4):
        layout = "[B, C, H, W] of the same shape" if image_batch else "the same shape"
        raise ValueError(f"{op}: x and y must be {layout}, got {tuple(x.shape)} and {tuple(y.shape)}")
    for name, t in (("x", x), ("y", y)):
        if t.dtype not in _FLOATS:
            raise TypeError(f"{op}: {name} must be float16/bfloat16/float32/float64, got {t.dtype}")
    if x.dtype != y.dtype:
        raise TypeError(f"{op}: x and y must have the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"{op}: x and y are on different devices ({x.device}, {y.device})")


def check_pcc_mse(x: torch.Tensor, y: torch.Tensor) -> None:
    _check_pair("pcc_mse", x, y, image_batch=False)
    if x.dim() < 2:
        raise ValueError(f"pcc_mse: expected [B, ...] with at least 2 dims, got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"pcc_mse: empty input of shape {tuple(x.shape)}")


def check_nn_ref(z: torch.Tensor, h_ref: torch.Tensor, exclude: torch.Tensor | None) -> None:
    if z.dim() != 2 or h_ref.dim() != 2:
        raise ValueError(
            f"nn_ref: expected z [B, D] and h_ref [M, D], got {tuple(z.shape)} and {tuple(h_ref.shape)}"
        )
    if z.shape[1] != h_ref.shape[1]:
        raise ValueError(f"nn_ref: latent sizes differ: z has D={z.shape[1]}, h_ref has D={h_ref.shape[1]}")
    if h_ref.shape[0] == 0:
        raise ValueError("nn_ref: h_ref is empty (M = 0)")
    for name, t in (("z", z), ("h_ref", h_ref)):
        if t.dtype not in _FLOATS:
            raise TypeError(f"nn_ref: {name} must be a floating tensor, got {t.dtype}")
    if z.dtype != h_ref.dtype:
        raise TypeError(f"nn_ref: z and h_ref must have the same dtype, got {z.dtype} and {h_ref.dtype}")
    if z.device != h_ref.device:
        raise ValueError(f"nn_ref: z and h_ref are on different devices ({z.device}, {h_ref.device})")
    if exclude is not None:
        if exclude.dtype != torch.int64 or exclude.shape != (z.shape[0],):
            raise ValueError(
                f"nn_ref: exclude must be int64 of shape ({z.shape[0]},), "
                f"got {exclude.dtype} {tuple(exclude.shape)}"
            )
        if exclude.device != z.device:
            raise ValueError("nn_ref: exclude is on a different device than z")
        if h_ref.shape[0] < 2:
            raise ValueError("nn_ref: exclude needs h_ref with at least 2 rows (M = 1 leaves no match)")


def check_frame_stats(x: torch.Tensor, y: torch.Tensor) -> None:
    _check_pair("frame_stats", x, y, image_batch=True)
    if x.shape[2] < 7 or x.shape[3] < 7:
        raise ValueError(
            f"frame_stats: frames must be at least 7x7 (the SSIM window), got {tuple(x.shape[2:])}"
        )


def check_patch_mse(x: torch.Tensor, y: torch.Tensor, patch: int) -> None:
    _check_pair("patch_mse", x, y, image_batch=True)
    if not 1 <= patch <= min(x.shape[2], x.shape[3]):
        raise ValueError(f"patch_mse: patch must be in [1, {min(x.shape[2], x.shape[3])}], got {patch}")


def check_patch_detail(x: torch.Tensor, y: torch.Tensor, patch: int) -> None:
    _check_pair("patch_detail", x, y, image_batch=True)
    if not 1 <= patch <= min(x.shape[2], x.shape[3]):
        raise ValueError(f"patch_detail: patch must be in [1, {min(x.shape[2], x.shape[3])}], got {patch}")
