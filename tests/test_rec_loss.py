"""``--rec-loss ssim``: 1 - SSIM as the training loss, with the score's SSIM definition (which is
scikit-image's default), differentiable and usable end to end from the command line."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from cae_fast.cli.flags import build_parser, config_from_args
from cae_fast.config import Config
from cae_fast.model.losses import REC_LOSSES, rec_loss
from cae_fast.train.loop import train


def _pair(
    b: int = 3, c: int = 3, h: int = 29, w: int = 34, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g)
    y = (0.6 * x + 0.4 * torch.rand(b, c, h, w, generator=g)).clamp(0, 1)
    return x, y


def _skimage_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().numpy(), b.double().numpy()
    if a.shape[0] == 1:
        return structural_similarity(a[0], b[0], data_range=1.0)
    return structural_similarity(a, b, channel_axis=0, data_range=1.0)


@pytest.mark.parametrize("c", [1, 3])
def test_ssim_loss_is_one_minus_skimage_ssim(c):
    x, y = _pair(c=c)
    want = np.mean([_skimage_ssim(a, b) for a, b in zip(x, y, strict=True)])
    loss = rec_loss("ssim")(y, x)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert loss.item() == pytest.approx(1.0 - want, abs=1e-5)
    # channels_last input (as training uses) gives the same value
    assert rec_loss("ssim")(y.to(memory_format=torch.channels_last), x).item() == pytest.approx(
        loss.item(), abs=1e-6
    )
    assert rec_loss("ssim")(x, x).item() == pytest.approx(0.0, abs=1e-5)


def test_ssim_loss_gradient_is_finite_and_descends():
    x, y = _pair()
    recon = y.clone().requires_grad_(True)
    opt = torch.optim.SGD([recon], lr=50.0)
    losses = []
    for _ in range(5):
        loss = rec_loss("ssim")(recon, x)
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(recon.grad).all() and recon.grad.abs().sum() > 0
        losses.append(loss.item())
        opt.step()
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


def test_unknown_rec_loss_raises():
    with pytest.raises(ValueError, match="unknown reconstruction loss 'l1'"):
        rec_loss("l1")
    assert set(REC_LOSSES) >= {"mse", "ssim"}


def test_cli_rec_loss_flag():
    parse = build_parser().parse_args
    assert config_from_args(parse(["--data", "builtin:digits"])).rec_loss == "mse"
    assert config_from_args(parse(["--data", "builtin:digits", "--rec-loss", "ssim"])).rec_loss == "ssim"
    with pytest.raises(SystemExit):
        parse(["--data", "builtin:digits", "--rec-loss", "l1"])


def test_training_with_ssim_loss_lowers_it(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    t = rng.random((48, 1, 1))
    images = (np.stack([xx * (0.5 + t / 2), yy + 0 * t, (xx + yy) / 2 * (1 - t / 2)], axis=-1) * 255).astype(
        np.uint8
    )
    cfg = Config(
        image_size=32,
        latent_dim=16,
        channels=(8, 16),
        epochs=2,
        batch_size=16,
        m_ref=16,
        trim_k=0.0,
        rec_loss="ssim",
        progress=False,
        data="x",
    ).resolved()
    _, hist = train(images, cfg, tmp_path)
    assert len(hist) == 2 and all(0.0 < h.l_rec <= 2.0 for h in hist)
    assert hist[1].l_rec < hist[0].l_rec
