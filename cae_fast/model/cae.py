"""The convolutional autoencoder: strided-conv encoder -> linear latent -> mirrored decoder.

Each encoder stage halves the image (4x4 kernel, stride 2, padding 1) and each decoder stage
doubles it back with the transposed conv of the same shape, so the image size must be a
multiple of the total stride (16 for the default four stages). The output goes through a
sigmoid because frames are compared in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from cae_fast.config import ENCODER_CHANNELS, LATENT_DIM


def total_stride(channels: tuple[int, ...] = ENCODER_CHANNELS) -> int:
    return 2 ** len(channels)


def check_image_size(image_size: int, channels: tuple[int, ...] = ENCODER_CHANNELS) -> None:
    """Raise ``ValueError`` naming the valid sizes when the network cannot take ``image_size``."""
    stride = total_stride(channels)
    if image_size >= stride and image_size % stride == 0:
        return
    below = max(stride, image_size // stride * stride)
    near = sorted({below, below + stride if below <= image_size else below})
    examples = " or ".join(map(str, near))
    raise ValueError(
        f"image size {image_size} is not valid for the network: it must be a positive multiple of "
        f"{stride} (the encoder's total stride), e.g. {examples}"
    )


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2))


class CAE(nn.Module):
    """Input and output: ``[B, 3, S, S]`` float in [0, 1]. ``encode`` gives the latent ``[B, latent_dim]``."""

    def __init__(
        self, image_size: int, latent_dim: int = LATENT_DIM, channels: tuple[int, ...] = ENCODER_CHANNELS
    ) -> None:
        super().__init__()
        check_image_size(image_size, channels)
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.channels = tuple(channels)
        self._grid = image_size // total_stride(channels)
        widths = (3, *channels)
        self.encoder = nn.Sequential(*(_down(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        flat = channels[-1] * self._grid * self._grid
        self.to_latent = nn.Linear(flat, latent_dim)
        self.from_latent = nn.Linear(latent_dim, flat)
        rev = widths[::-1]
        ups = [_up(a, b) for a, b in zip(rev[:-2], rev[1:-1], strict=True)]
        # The last stage maps to RGB without normalisation; the sigmoid keeps it in [0, 1].
        ups.append(nn.Sequential(nn.ConvTranspose2d(rev[-2], 3, 4, 2, 1), nn.Sigmoid()))
        self.decoder = nn.Sequential(*ups)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.encoder(x).flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(z.shape[0], self.channels[-1], self._grid, self._grid)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(reconstruction, latent)``: training needs both."""
        z = self.encode(x)
        return self.decode(z), z

    def hparams(self) -> dict:
        """What a checkpoint needs to rebuild this network."""
        return {"image_size": self.image_size, "latent_dim": self.latent_dim, "channels": list(self.channels)}
