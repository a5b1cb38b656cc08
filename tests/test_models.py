"""The --arch registry: every network builds, trains through the one loop and comes back from its
checkpoint; the VAE's KL weight warms up as documented."""

from __future__ import annotations

import pytest
import torch

from cae_fast.config import Config
from cae_fast.model.cae import CAE
from cae_fast.model.zoo import ARCHS, VAE, build_model, hparams_of, kl_weight_at, n_parameters, rebuild
from cae_fast.train.loop import CHECKPOINT_NAME, load_checkpoint, load_model, train


def _cfg(**kw) -> Config:
    base = dict(image_size=16, latent_dim=8, channels=(8, 16), epochs=1, batch_size=8, m_ref=8)
    return Config(**{**base, "data": "x", "progress": False, **kw}).resolved()


@pytest.mark.parametrize("arch", list(ARCHS))
def test_each_arch_builds_and_takes_a_finite_train_step(arch):
    torch.manual_seed(0)
    model = build_model(_cfg(arch=arch))
    assert hparams_of(model)["arch"] == arch and n_parameters(model) > 0
    x = torch.rand(4, 3, 16, 16)
    recon, z = model(x)
    assert recon.shape == x.shape and z.shape == (4, 8)
    assert 0 <= recon.min() and recon.max() <= 1
    loss = (recon - x).pow(2).mean() + (model.aux_loss() if hasattr(model, "aux_loss") else 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss.backward()
    opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    model.eval()
    torch.testing.assert_close(model(x)[1], model.encode(x))  # scoring and H_ref see the same code


@pytest.mark.parametrize("arch", list(ARCHS))
def test_training_loop_and_checkpoint_rebuild_each_arch(tmp_path, tiny_frames, arch):
    images = tiny_frames[0][:, ::2, ::2]  # 16x16
    model, hist = train(images, _cfg(arch=arch, kl_warmup=0), tmp_path)
    assert len(hist) == 1 and hist[0].l_rec > 0
    assert (hist[0].l_aux > 0) == (arch == "vae")
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["hparams"]["arch"] == arch
    loaded = load_model(tmp_path / CHECKPOINT_NAME, torch.device("cpu"))
    assert type(loaded) is type(model)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model.eval()(x)[0])


def test_checkpoints_from_before_arch_are_caes():
    h = CAE(16, 8, (8, 16)).hparams()
    assert "arch" not in h and isinstance(rebuild(h), CAE) and type(rebuild(h)) is CAE
    with pytest.raises(ValueError, match="unknown architecture"):
        rebuild({**h, "arch": "transformer"})


def test_kl_warmup_is_a_linear_ramp_to_the_weight():
    assert kl_weight_at(0.0, 0.5, 4) == 0.0
    assert kl_weight_at(1.0, 0.5, 4) == pytest.approx(0.125)
    assert kl_weight_at(2.5, 0.5, 4) == pytest.approx(0.3125)
    assert kl_weight_at(4.0, 0.5, 4) == kl_weight_at(40.0, 0.5, 4) == 0.5
    assert kl_weight_at(0.0, 0.5, 0) == 0.5  # no warm-up: full weight at once
    vae = VAE(16, 8, (8, 16), kl_weight=0.2, kl_warmup=2)
    assert [vae.aux_weight(e) for e in (0, 1, 2, 3)] == pytest.approx([0.0, 0.1, 0.2, 0.2])


def test_vae_kl_is_zero_at_the_prior_and_eval_decodes_the_mean():
    vae = VAE(16, 4, (8, 16))
    with torch.no_grad():
        vae.to_latent.weight.zero_()
        vae.to_latent.bias.zero_()  # mu = 0, log-variance = 0: the prior itself
    vae(torch.rand(3, 3, 16, 16))
    assert vae.aux_loss().item() == pytest.approx(0.0, abs=1e-7)
    vae.eval()
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(vae(x)[0], vae(x)[0])  # no sampling when scoring
