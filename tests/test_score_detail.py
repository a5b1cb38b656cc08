"""The detail-based scores: SSIM, the detail ratio, the Laplacian baseline, and the combined score."""

import numpy as np
import pytest
import torch

from cae_fast.config import Config
from cae_fast.model.cae import CAE
from cae_fast.score.combine import (
    COMBINED,
    TILE_GRID,
    added_structure,
    bad_tiles,
    combined,
    loudest,
    robust_z,
)
from cae_fast.score.terms import SCORE_NAMES, score_frames


def test_robust_z_known_values_and_zero_mad():
    s = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD 1 -> scale 1.4826
    np.testing.assert_allclose(robust_z(s), (s - 3.0) / 1.4826)
    flat = np.array([5.0, 5.0, 5.0, 5.0, 9.0])  # MAD 0: falls back to the mean absolute deviation
    z = robust_z(flat)
    assert np.isfinite(z).all() and z[-1] > 0 and np.all(z[:4] == 0)


def test_loudest_flags_both_directions_of_detail_and_low_ssim():
    rng = np.random.default_rng(0)
    n = 200
    scores = {
        "ssim": 0.9 + 0.01 * rng.standard_normal(n),
        "lapvar": np.exp(0.2 * rng.standard_normal(n)) * 1e-3,
        "lost_detail": 0.01 * rng.standard_normal(n),
        "lost_detail_tiles": 0.01 * rng.standard_normal(n),
        "patch_err": np.exp(0.1 * rng.standard_normal((n, 16))) * 1e-3,
    }
    scores["lost_detail"][10] = 0.5  # lost detail (blur)
    scores["lost_detail"][20] = -0.5  # gained detail (drops, noise)
    scores["ssim"][30] = 0.5  # structure the model cannot reproduce
    scores["patch_err"][40, 3:6] = 0.05  # a few tiles covered (mud)
    scores["lost_detail_tiles"][50] = 0.5  # most tiles lost detail, a few gained it (a wet lens with drops)
    c = loudest(scores)
    assert set(np.argsort(c)[-5:]) == {10, 20, 30, 40, 50}


def test_combined_adds_up_the_evidence_of_several_terms():
    rng = np.random.default_rng(1)
    n = 400
    z = {  # unit-normal clean terms, already on a robust-z-like scale
        "added_structure": rng.standard_normal(n),
        "lost_detail": rng.standard_normal(n),
        "lost_detail_tiles": rng.standard_normal(n),
        "bad_tiles": rng.standard_normal(n),
        "stuck_colour": rng.standard_normal(n),
        "fine_detail": rng.standard_normal(n),
        "ssim": np.full(n, 0.9),
        "lapvar": np.full(n, 1e-3),
    }
    z["added_structure"][7], z["bad_tiles"][7] = 2.5, 2.5  # two failure modes part of the way (weak drops)
    z["added_structure"][9], z["bad_tiles"][9] = 3.0, 0.0  # one, somewhat louder (an odd clean frame)
    for name in ("lost_detail", "lost_detail_tiles", "stuck_colour", "fine_detail"):
        z[name][[7, 9]] = np.median(z[name])  # neither frame off in detail or on the lens
    both, one = combined(z), loudest(z)
    assert one[9] > one[7]  # the loudest term alone prefers the single loud one
    assert both[7] > both[9]  # summed evidence prefers the frame that is off on two counts
    # the definition, written out: root-sum-square of the positive oriented robust z's, re-standardised
    parts = [
        robust_z(z["added_structure"]),
        np.abs(robust_z(z["lost_detail"])),
        robust_z(z["bad_tiles"]),
        robust_z(z["stuck_colour"]),
        np.abs(robust_z(z["fine_detail"])),
    ]
    np.testing.assert_allclose(both, robust_z(np.sqrt((np.clip(np.stack(parts), 0, None) ** 2).sum(0))))
    judged = [parts[0], parts[1], np.abs(robust_z(z["lost_detail_tiles"])), parts[2]]
    # loudest, the trimming's score, still reads the tile ratio, and no model-free term
    np.testing.assert_allclose(one, np.max(judged, axis=0))
    z["lost_detail_tiles"][9] = 50.0  # the tile ratio no longer enters the default score
    np.testing.assert_allclose(combined(z), both)


def _detail_and_ssim(n: int, seed: int) -> dict[str, np.ndarray]:
    """Clean frames whose 1 - SSIM grows with their detail (busy scenery reconstructs worse)."""
    rng = np.random.default_rng(seed)
    log_detail = rng.uniform(-9.0, -5.0, n)
    log_err = -2.0 + 0.5 * (log_detail + 7.0) + 0.1 * (log_detail + 7.0) ** 2 + 0.05 * rng.standard_normal(n)
    return {"ssim": 1.0 - np.exp(log_err), "lapvar": np.exp(log_detail)}


def test_added_structure_removes_the_detail_trend_and_keeps_the_corrupted_frames():
    s = _detail_and_ssim(400, 3)
    busiest = int(np.argmax(s["lapvar"]))  # clean, but with the worst 1 - SSIM of the clean frames
    dirty = np.array([10, 11, 12])
    s["ssim"][dirty] = 1.0 - (1.0 - s["ssim"][dirty]) * np.exp(0.6)  # 0.6 in log worse than the trend
    plain, excess = robust_z(1.0 - s["ssim"]), robust_z(added_structure(s))
    assert plain[busiest] > 2.0  # plain 1 - SSIM flags the busy clean frame ...
    assert excess[busiest] < 2.0  # ... the excess over the trend does not
    assert np.all(excess[dirty] > 5.0)
    assert set(np.argsort(excess)[-3:]) == set(dirty)
    # the fit is robust: a corrupted fifth of the frames does not bend it towards them
    bad = np.arange(0, 400, 5)
    s["ssim"][bad] = 1.0 - (1.0 - s["ssim"][bad]) * np.exp(0.6)
    z = robust_z(added_structure(s))
    assert np.median(z[bad]) > 5.0 and np.median(np.abs(np.delete(z, bad))) < 1.0


def test_added_structure_without_spread_of_detail_is_the_centred_log_error():
    s = {"ssim": np.array([0.9, 0.8, 0.95, 0.7]), "lapvar": np.full(4, 1e-3)}
    y = np.log(1.0 - s["ssim"] + 1e-6)
    np.testing.assert_allclose(added_structure(s), y - np.median(y))
    flat = _detail_and_ssim(50, 4)
    flat["lapvar"][:] = 2e-3
    assert np.isfinite(added_structure(flat)).all()


def test_local_is_relative_to_each_tile_position():
    rng = np.random.default_rng(1)
    n = 300
    # tile 0 always reconstructs 100x worse than tile 1 (sky vs road): that alone is not anomalous
    e = np.exp(0.1 * rng.standard_normal((n, 2))) * np.array([1e-2, 1e-4])
    e[7, 1] = 1e-3  # 10x worse than usual *for tile 1*, still 10x better than tile 0 always is
    s = bad_tiles({"patch_err": e})
    assert np.argmax(s) == 7


def test_score_frames_computes_every_score_in_one_pass():
    torch.manual_seed(0)
    images = (np.random.default_rng(1).random((12, 32, 32, 3)) * 255).astype(np.uint8)
    cfg = Config(data="x", image_size=32, channels=(8, 16), latent_dim=8, score_batch=5)
    model = CAE(image_size=32, latent_dim=8, channels=(8, 16))
    out = score_frames(model, images, cfg, torch.device("cpu"), SCORE_NAMES)
    ingredients = {"patch_err", "tile_rgb", "lost_detail", "lost_detail_tiles", "fine_detail"}
    assert set(out) == set(SCORE_NAMES) | ingredients
    assert out.pop("patch_err").shape == (12, TILE_GRID**2)
    tiles = out.pop("tile_rgb")  # channel-major tile colour means of the input frames, 0-1
    want = images.reshape(12, TILE_GRID, 4, TILE_GRID, 4, 3).mean(axis=(2, 4)).transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(tiles, want.reshape(12, -1), atol=1e-6)
    for name, v in out.items():
        assert v.shape == (12,) and v.dtype == np.float32 and np.isfinite(v).all(), name
    np.testing.assert_allclose(out["loudest"], loudest(out), rtol=1e-5)
    np.testing.assert_allclose(out["combined"], combined(out), rtol=1e-5)
    only = score_frames(model, images, cfg, torch.device("cpu"), ("loudest",))
    assert set(only) >= {"loudest"} and set(COMBINED["loudest"][0]) <= set(only)
    np.testing.assert_allclose(only["loudest"], out["loudest"], rtol=1e-6)
    # loudest's terms are kept beside it, equal to asking for them on their own
    for term in ("bad_tiles", "added_structure"):
        np.testing.assert_allclose(only[term], out[term], rtol=1e-6)


def test_every_score_leaves_scoring_higher_is_dirtier():
    """The paper's PCC, turned once at the scorer's boundary: the ``pcc`` score is 1 - Pearson's r of
    each frame with its reconstruction, here against numpy's own correlation."""
    torch.manual_seed(0)
    images = (np.random.default_rng(2).random((6, 32, 32, 3)) * 255).astype(np.uint8)
    cfg = Config(data="x", image_size=32, channels=(8, 16), latent_dim=8)
    model = CAE(image_size=32, latent_dim=8, channels=(8, 16)).eval()
    out = score_frames(model, images, cfg, torch.device("cpu"), ("pcc",))
    with torch.no_grad():
        recon = model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0)[0].numpy()
    x = images.transpose(0, 3, 1, 2).reshape(6, -1) / 255.0
    r = [np.corrcoef(a, b)[0, 1] for a, b in zip(x, recon.reshape(6, -1), strict=True)]
    np.testing.assert_allclose(out["pcc"], 1.0 - np.array(r), atol=2e-5)
    assert (
        "lost_detail" not in SCORE_NAMES and "lost_detail_tiles" not in SCORE_NAMES
    )  # two-sided: terms only


def test_unknown_score_is_rejected():
    cfg = Config(data="x", image_size=32, channels=(8, 16), latent_dim=8)
    model = CAE(image_size=32, latent_dim=8, channels=(8, 16))
    with pytest.raises(ValueError, match="unknown score"):
        score_frames(model, np.zeros((2, 32, 32, 3), np.uint8), cfg, torch.device("cpu"), ("nope",))


def test_lost_detail_tiles_sees_a_blurred_frame_that_sharp_spots_hide_from_the_whole_frame_ratio():
    from cae_fast.score.terms import Batch, _frame_stats, _lost_detail_tiles

    g = torch.Generator().manual_seed(3)
    sharp = torch.rand(1, 3, 64, 64, generator=g)  # what the network reproduces: typical detail
    blurred = torch.nn.functional.avg_pool2d(sharp, 5, stride=1, padding=2, count_include_pad=False)
    wet = blurred.clone()
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    for i, j in ((8, 8), (8, 40), (32, 16)):  # sharp "drops" in 3 of the 64 tiles
        wet[:, :, i : i + 8, j : j + 8] = checker.float()
    b = Batch(torch.cat([sharp, wet]), torch.cat([sharp, sharp]), torch.zeros(2, 1), slice(0, 2))
    whole, tiles = _frame_stats(b)["lost_detail"], _lost_detail_tiles(b)["lost_detail_tiles"]
    assert abs(float(tiles[0])) < 1e-6 and abs(float(whole[0])) < 1e-6  # a perfect reconstruction
    assert abs(float(whole[1])) < 0.5  # the rims make up, over the whole frame, for the lost detail
    assert float(tiles[1]) > 2.0  # the median tile lost it: the reconstruction has e^2 x more


def test_combined_is_the_same_whether_or_not_stuck_colour_was_already_computed():
    """The default score's stuck_colour term must not depend on what happens to be in the dict: with the
    sequence's persistence it equals the one score_frames computes beside it."""
    torch.manual_seed(0)
    images = (np.random.default_rng(4).random((40, 32, 32, 3)) * 255).astype(np.uint8)
    images[20:30, :16] = 255  # something on the lens for ten frames
    cfg = Config(data="x", image_size=32, channels=(8, 16), latent_dim=8, median_k=(7,))
    model = CAE(image_size=32, latent_dim=8, channels=(8, 16))
    out = score_frames(model, images, cfg, torch.device("cpu"), ("combined",))
    without = {k: v for k, v in out.items() if k not in ("stuck_colour", "combined")}
    np.testing.assert_allclose(combined(without, persist=7), out["combined"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(combined(without, persist=1), out["combined"], atol=1e-3)


def test_fine_detail_reads_blur_and_noise_and_not_how_detailed_or_bright_the_scene_is():
    """Known directions, from scipy's own filters: a blur takes the finest scale first, noise adds to
    it, and a plainer (lower-contrast) or darker version of the same scene keeps the balance."""
    from scipy import ndimage

    from cae_fast.score.terms import Batch, _frame_stats

    rng = np.random.default_rng(5)
    # a natural-looking scene: smoothed noise at several scales, so every scale has detail
    scene = sum(ndimage.gaussian_filter(rng.standard_normal((64, 64)), s) * s for s in (1, 2, 4, 8))
    scene = 0.5 + 0.12 * scene / scene.std()
    frames = {
        "sharp": scene,
        "blurred": ndimage.gaussian_filter(scene, 1.2),
        "noisy": scene + 0.03 * rng.standard_normal(scene.shape),
        "plain": 0.5 + 0.4 * (scene - 0.5),  # the same scene with 40% of its contrast
        "darker": 0.6 * scene,
    }
    x = torch.from_numpy(np.clip(np.stack(list(frames.values())), 0, 1)).float()[:, None].repeat(1, 3, 1, 1)
    got = _frame_stats(Batch(x, x, torch.zeros(5, 1), slice(0, 5)))["fine_detail"].tolist()
    fine = dict(zip(frames, got, strict=True))
    assert fine["blurred"] < fine["sharp"] - 0.5
    assert fine["noisy"] > fine["sharp"] + 0.5
    assert abs(fine["plain"] - fine["sharp"]) < 0.05 and abs(fine["darker"] - fine["sharp"]) < 0.05
