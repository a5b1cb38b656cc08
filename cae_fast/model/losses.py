"""Training losses: ``L = L_rec + lambda * L_ref``.

``L_rec`` is the pixel MSE between frame and reconstruction (the paper) or ``1 - SSIM``.
``L_ref`` is the mean over the batch of the squared L2 distance from each latent to its nearest
neighbour in H_ref, the latents of M_ref reference frames (fused ``ops.nn_ref``; H_ref gets no
gradient).
Reconstruction losses live in a registry, by name (``--rec-loss``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cae_fast import ops
from cae_fast.ops.reference import _SSIM_C1, _SSIM_C2, SSIM_WIN

RecLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (recon.float() - x.float()).pow(2).mean()


def _ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-window SSIM of ``x`` against ``y``, the score's definition (``reference.frame_stats``).

    Not ``reference.frame_stats`` itself: that one runs in float64, also computes the Laplacian
    columns, and ``ops.frame_stats`` may dispatch to the compiled op, which has no backward.
    The constants are imported so the two definitions cannot drift apart.
    """
    c = x.shape[1]
    box = torch.full((c, 1, SSIM_WIN, SSIM_WIN), 1.0 / SSIM_WIN**2, dtype=x.dtype, device=x.device)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, box, groups=c)  # 'valid' windows, per channel

    ux, uy = mean(x), mean(y)
    n = SSIM_WIN**2
    cov = n / (n - 1)  # sample covariance, as scikit-image's default
    vx = cov * (mean(x * x) - ux * ux)
    vy = cov * (mean(y * y) - uy * uy)
    vxy = cov * (mean(x * y) - ux * uy)
    return ((2 * ux * uy + _SSIM_C1) * (2 * vxy + _SSIM_C2)) / (
        (ux * ux + uy * uy + _SSIM_C1) * (vx + vy + _SSIM_C2)
    )


def ssim_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``1 - mean SSIM`` over windows, channels and batch; float32 even under autocast."""
    # Under autocast conv2d would run in half precision, where the E[x^2] - E[x]^2 variances
    # cancel badly; float32 keeps them well inside C2 = 9e-4.
    with torch.autocast(recon.device.type, enabled=False):
        return 1.0 - _ssim_map(recon.float(), x.float()).mean()


REC_LOSSES: dict[str, RecLoss] = {"mse": mse_loss, "ssim": ssim_loss}


def rec_loss(name: str) -> RecLoss:
    try:
        return REC_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown reconstruction loss {name!r}; known: {', '.join(REC_LOSSES)}") from None


# How latents are compared in L_ref. "none": the paper's literal squared L2, which the network
# can satisfy by shrinking every latent (collapse: watch mean ||z|| in the log). "l2": both sides
# projected on the unit sphere first, so only directions count and shrinking gains nothing.
REF_NORMS = ("none", "l2")


def ref_loss(
    z: torch.Tensor, h_ref: torch.Tensor, exclude: torch.Tensor | None = None, norm: str = "none"
) -> torch.Tensor:
    """Mean squared distance of each latent to its nearest H_ref row (``exclude``: see ``ops.nn_ref``)."""
    z, h_ref = z.float(), h_ref.float()
    if norm == "l2":
        z = torch.nn.functional.normalize(z, dim=1)
        h_ref = torch.nn.functional.normalize(h_ref, dim=1)
    elif norm != "none":
        raise ValueError(f"unknown ref norm {norm!r}; known: {', '.join(REF_NORMS)}")
    dist2, _idx = ops.nn_ref(z, h_ref, exclude)
    return dist2.mean()
