"""The detail-based scores: SSIM, the detail ratio, the Laplacian baseline, and the combined score."""

import numpy as np
import pytest
import torch

from cae_fast.config import Config
from cae_fast.model import CAE
from cae_fast.score import COMBINED, DIRECTION, LOCAL_GRID, SCORE_NAMES, combo, local, robust_z, score_frames


def test_robust_z_known_values_and_zero_mad():
    s = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD 1 -> scale 1.4826
    np.testing.assert_allclose(robust_z(s), (s - 3.0) / 1.4826)
    flat = np.array([5.0, 5.0, 5.0, 5.0, 9.0])  # MAD 0: falls back to the mean absolute deviation
    z = robust_z(flat)
    assert np.isfinite(z).all() and z[-1] > 0 and np.all(z[:4] == 0)


def test_combo_flags_both_directions_of_detail_and_low_ssim():
    rng = np.random.default_rng(0)
    n = 200
    scores = {
        "ssim": 0.9 + 0.01 * rng.standard_normal(n),
        "detail_ratio": 0.01 * rng.standard_normal(n),
        "patch_err": np.exp(0.1 * rng.standard_normal((n, 16))) * 1e-3,
    }
    scores["detail_ratio"][10] = 0.5  # lost detail (blur)
    scores["detail_ratio"][20] = -0.5  # gained detail (drops, noise)
    scores["ssim"][30] = 0.5  # structure the model cannot reproduce
    scores["patch_err"][40, 3:6] = 0.05  # a few tiles covered (mud)
    c = combo(scores)
    assert set(np.argsort(c)[-4:]) == {10, 20, 30, 40}


def test_local_is_relative_to_each_tile_position():
    rng = np.random.default_rng(1)
    n = 300
    # tile 0 always reconstructs 100x worse than tile 1 (sky vs road): that alone is not anomalous
    e = np.exp(0.1 * rng.standard_normal((n, 2))) * np.array([1e-2, 1e-4])
    e[7, 1] = 1e-3  # 10x worse than usual *for tile 1*, still 10x better than tile 0 always is
    s = local({"patch_err": e})
    assert np.argmax(s) == 7
    assert DIRECTION["combo"] == -1


def test_score_frames_computes_every_score_in_one_pass():
    torch.manual_seed(0)
    images = (np.random.default_rng(1).random((12, 32, 32, 3)) * 255).astype(np.uint8)
    cfg = Config(data="x", image_size=32, channels=(8, 16), latent_dim=8, score_batch=5)
    model = CAE(image_size=32, latent_dim=8, channels=(8, 16))
    out = score_frames(model, images, cfg, torch.device("cpu"), SCORE_NAMES)
    assert set(out) == set(SCORE_NAMES) | {"patch_err"}
    assert out.pop("patch_err").shape == (12, LOCAL_GRID**2)
    for name, v in out.items():
        assert v.shape == (12,) and v.dtype == np.float32 and np.isfinite(v).all(), name
    np.testing.assert_allclose(out["combo"], combo(out), rtol=1e-5)
    only = score_frames(model, images, cfg, torch.device("cpu"), ("combo",))
    assert set(only) >= {"combo"} and set(COMBINED["combo"][0]) <= set(only)
    np.testing.assert_allclose(only["combo"], out["combo"], rtol=1e-6)


def test_unknown_score_is_rejected():
    cfg = Config(data="x", image_size=32, channels=(8, 16), latent_dim=8)
    model = CAE(image_size=32, latent_dim=8, channels=(8, 16))
    with pytest.raises(ValueError, match="unknown score"):
        score_frames(model, np.zeros((2, 32, 32, 3), np.uint8), cfg, torch.device("cpu"), ("nope",))
