"""Frames to latents in eval mode, shared by training (H_ref) and scoring (H_ref, latent score)."""

from __future__ import annotations

import numpy as np
import torch

from cae_fast import dist
from cae_fast.config import Config
from cae_fast.data import FrameDataset, to_float
from cae_fast.model.cae import CAE


def autocast_for(cfg: Config, device: torch.device) -> torch.autocast:
    """bfloat16 autocast on CUDA when ``cfg.amp``; a no-op context elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda")


@torch.no_grad()
def encode_frames(
    model: CAE, images: np.ndarray, indices: torch.Tensor, cfg: Config, device: torch.device
) -> torch.Tensor:
    """Latents of ``images[indices]`` in eval mode, float32 ``[len(indices), latent_dim]``.

    Under torchrun each rank encodes its contiguous share of ``indices`` and the latents are
    all-gathered in the order of ``indices``: every rank ends with the same H_ref."""
    was_training = model.training
    model.eval()
    dataset = FrameDataset(images)
    start, stop = dist.share(len(indices))
    out = [torch.empty((0, model.latent_dim), device=device)]
    for chunk in indices[start:stop].split(cfg.score_batch):
        with autocast_for(cfg, device):
            out.append(model.encode(to_float(dataset.__getitems__(chunk.tolist()), device)).float())
    model.train(was_training)
    return dist.gather_rows(torch.cat(out), len(indices))
