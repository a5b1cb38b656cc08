"""The networks ``--arch`` picks by name. One training loop and one set of scores serve them all.

Every model maps ``[B, 3, S, S]`` in [0, 1] to ``(reconstruction, latent)``, has ``encode`` (the
latent that L_ref and H_ref compare) and ``hparams()`` (what a checkpoint needs to rebuild it). A
model may bring its own loss term: ``aux_loss()`` (the value from its last forward) and
``aux_weight(epoch)`` (its weight at a fractional epoch); the trainer adds
``aux_weight * aux_loss`` to ``L_rec + lambda L_ref`` and knows nothing else about it.

- ``cae``: the paper's convolutional autoencoder (``model.CAE``, BatchNorm after each conv stage).
- ``cae-bn``: the same with BatchNorm on the bottleneck too (the latent and its projection back),
  so the latent code is normalised batch-wise as well.
- ``fcn``: a fully connected autoencoder on the flattened image, the course projects' baseline.
- ``vae``: the CAE's encoder and decoder as a variational autoencoder; its KL term is warmed up
  from 0 so that it cannot swamp the reconstruction at the start (the collapse users report).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cae_fast.config import ENCODER_CHANNELS, FCN_HIDDEN, KL_WARMUP, KL_WEIGHT, LATENT_DIM, Config
from cae_fast.model.cae import CAE


class CAEBN(CAE):
    """The CAE with BatchNorm1d after the latent projection and after its way back."""

    arch = "cae-bn"

    def __init__(
        self, image_size: int, latent_dim: int = LATENT_DIM, channels: tuple[int, ...] = ENCODER_CHANNELS
    ) -> None:
        super().__init__(image_size, latent_dim, channels)
        flat = self.from_latent.out_features
        self.to_latent = nn.Sequential(self.to_latent, nn.BatchNorm1d(latent_dim))
        self.from_latent = nn.Sequential(self.from_latent, nn.BatchNorm1d(flat), nn.LeakyReLU(0.2))


class FCN(nn.Module):
    """Flattened image -> ``hidden`` -> latent -> ``hidden`` -> image, LeakyReLU between, sigmoid out."""

    arch = "fcn"

    def __init__(self, image_size: int, latent_dim: int = LATENT_DIM, hidden: int = FCN_HIDDEN) -> None:
        super().__init__()
        self.image_size, self.latent_dim, self.hidden = image_size, latent_dim, hidden
        pixels = 3 * image_size * image_size
        self.encoder = nn.Sequential(
            nn.Linear(pixels, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, pixels), nn.Sigmoid()
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(z.shape[0], 3, self.image_size, self.image_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z

    def hparams(self) -> dict:
        return {"image_size": self.image_size, "latent_dim": self.latent_dim, "hidden": self.hidden}


def kl_weight_at(epoch: float, weight: float, warmup: float) -> float:
    """The KL weight after ``epoch`` (fractional) epochs: a linear ramp from 0 to ``weight`` over
    ``warmup`` epochs, then constant. ``warmup`` 0 means the full weight from the first step."""
    if warmup <= 0:
        return float(weight)
    return float(weight) * min(1.0, max(0.0, epoch) / warmup)


class VAE(CAE):
    """The CAE's networks with a Gaussian latent: the encoder gives a mean and a log-variance.

    Training decodes a sample ``mu + sigma * eps``; eval mode (scoring, H_ref) decodes the mean,
    so scores are deterministic. ``encode`` returns the mean. The KL term is per pixel value (the
    KL of an image divided by 3*S*S), the same normalisation as the per-value mean of L_rec, so
    ``kl_weight`` reads as beta / (2 sigma_pixel^2) relative to it, not as a raw sum over the code.
    """

    arch = "vae"

    def __init__(
        self,
        image_size: int,
        latent_dim: int = LATENT_DIM,
        channels: tuple[int, ...] = ENCODER_CHANNELS,
        kl_weight: float = KL_WEIGHT,
        kl_warmup: float = KL_WARMUP,
    ) -> None:
        super().__init__(image_size, latent_dim, channels)
        self.to_latent = nn.Linear(self.to_latent.in_features, 2 * latent_dim)  # mean and log-variance
        self.kl_weight, self.kl_warmup = kl_weight, kl_warmup
        self._kl = torch.zeros(())

    def _moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_latent(self.encoder(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)  # exp() stays finite whatever the early steps do

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._moments(x)[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self._moments(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        kl_per_image = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1.0 - logvar.float()).sum(dim=1)
        self._kl = kl_per_image.mean() / x[0].numel()
        return self.decode(z), mu

    def aux_loss(self) -> torch.Tensor:
        """The KL of the last forward, per pixel value."""
        return self._kl

    def aux_weight(self, epoch: float) -> float:
        return kl_weight_at(epoch, self.kl_weight, self.kl_warmup)


@dataclass(frozen=True)
class Arch:
    cls: type[nn.Module]
    options: tuple[str, ...]  # Config fields its constructor takes besides image_size and latent_dim


ARCHS: dict[str, Arch] = {
    "cae": Arch(CAE, ("channels",)),
    "fcn": Arch(FCN, ()),
    "cae-bn": Arch(CAEBN, ("channels",)),
    "vae": Arch(VAE, ("channels", "kl_weight", "kl_warmup")),
}


def build_model(cfg: Config) -> nn.Module:
    """A freshly initialised network of ``cfg.arch`` for ``cfg``'s image size and latent size."""
    try:
        arch = ARCHS[cfg.arch]
    except KeyError:
        raise ValueError(f"unknown architecture {cfg.arch!r}; known: {', '.join(ARCHS)}") from None
    return arch.cls(cfg.image_size, cfg.latent_dim, **{k: getattr(cfg, k) for k in arch.options})


def hparams_of(model: nn.Module) -> dict:
    """``model.hparams()`` with its architecture's name, as checkpoints store it."""
    return {"arch": getattr(model, "arch", "cae"), **model.hparams()}


def rebuild(hparams: dict) -> nn.Module:
    """The (untrained) network a checkpoint's ``hparams`` describe; checkpoints from before
    ``--arch`` existed have no ``arch`` and are CAEs."""
    h = dict(hparams)
    name = h.pop("arch", "cae")
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}")
    return ARCHS[name].cls(**h)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
