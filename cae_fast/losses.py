"""Training losses: ``L = L_rec + lambda * L_ref``.

``L_rec`` is the pixel MSE between frame and reconstruction. ``L_ref`` is the mean over the
batch of the squared L2 distance from each latent to its nearest neighbour in H_ref, the
latents of M_ref reference frames (fused ``ops.nn_ref``; H_ref gets no gradient).
Reconstruction losses live in a registry so that others (e.g. SSIM) can be added by name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cae_fast import ops

RecLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (recon.float() - x.float()).pow(2).mean()


REC_LOSSES: dict[str, RecLoss] = {"mse": mse_loss}


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
