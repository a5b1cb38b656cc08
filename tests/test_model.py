import pytest
import torch

from cae_fast.model.cae import CAE, check_image_size, total_stride


@pytest.mark.parametrize("size", [32, 64, 96])
def test_shapes_and_range(size):
    model = CAE(size, latent_dim=256)
    x = torch.rand(2, 3, size, size)
    recon, z = model(x)
    assert recon.shape == x.shape and z.shape == (2, 256)
    assert recon.min() >= 0 and recon.max() <= 1  # sigmoid output, comparable to frames in [0, 1]
    assert torch.equal(model.decode(model.encode(x)), model(x)[0])


def test_paper_size_and_latent():
    model = CAE(224)
    assert model.latent_dim == 256 and model.hparams() == {
        "image_size": 224,
        "latent_dim": 256,
        "channels": [32, 64, 128, 256],
    }


@pytest.mark.parametrize("size", [0, 8, 40, 100, 225])
def test_invalid_size_names_valid_sizes(size):
    with pytest.raises(ValueError, match="multiple of 16") as info:
        CAE(size)
    msg = str(info.value)
    assert str(size) in msg
    if size > 16:
        assert str(size // 16 * 16) in msg and str(size // 16 * 16 + 16) in msg


def test_stride_follows_depth():
    assert total_stride((8, 16)) == 4
    check_image_size(12, (8, 16))
    model = CAE(12, 8, (8, 16))
    assert model(torch.rand(1, 3, 12, 12))[0].shape == (1, 3, 12, 12)


def test_gradients_reach_the_encoder():
    model = CAE(32, 16)
    recon, z = model(torch.rand(4, 3, 32, 32))
    (recon.mean() + z.pow(2).mean()).backward()
    assert model.encoder[0][0].weight.grad is not None and model.encoder[0][0].weight.grad.abs().sum() > 0
