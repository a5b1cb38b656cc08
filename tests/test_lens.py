"""The model-free ``lens`` term: a tile's colour distance from its running per-place baseline."""

import numpy as np
import torch

from cae_fast.lens import LENS_STRIDE, LENS_WINDOW, baseline, deviation
from cae_fast.score import LOCAL_GRID, combo_rss, lens, robust_z

SIZE = 4 * LOCAL_GRID  # 4-pixel tiles


def _drive(n: int, seed: int = 0) -> np.ndarray:
    """(N, 3, S, S) 0-1 frames: a steady sky over a road whose texture scrolls by every frame,
    with a slow lighting drift over the whole sequence."""
    rng = np.random.default_rng(seed)
    road = rng.uniform(0.2, 0.6, (3, SIZE // 2, SIZE + n))
    frames = np.empty((n, 3, SIZE, SIZE))
    gain = np.linspace(0.8, 1.1, n)
    for i in range(n):
        frames[i, :, : SIZE // 2] = np.array([0.5, 0.7, 0.9])[:, None, None]
        frames[i, :, SIZE // 2 :] = road[:, :, i : i + SIZE]
        frames[i] *= gain[i]
    return frames + rng.normal(0, 0.01, frames.shape)


def _tiles(frames: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(frames).float()
    return torch.nn.functional.avg_pool2d(x, SIZE // LOCAL_GRID).flatten(1).numpy()


def test_lens_finds_a_splat_fixed_on_the_lens_over_moving_scenery():
    frames = _drive(1500)
    run = np.arange(700, 780)
    frames[run, :, 20:28, 4:12] = np.array([0.2, 0.14, 0.08])[:, None, None]  # mud on the road
    score = lens({"tile_rgb": _tiles(frames)})
    assert score.shape == (1500,)
    clean = np.delete(score, run)
    assert score[run].min() > np.quantile(clean, 0.995)  # every mud frame above the clean tail


def test_lens_is_in_the_default_score_but_not_in_the_judgements():
    frames = _drive(600, seed=1)
    frames[300:340, :, 16:24, 8:16] *= 0.3
    s = {"tile_rgb": _tiles(frames)}
    terms = {name: np.zeros(600) for name in ("ssim_excess", "detail_ratio", "tile_detail", "local")}
    z = combo_rss({**terms, **s})
    np.testing.assert_allclose(z, robust_z(np.maximum(robust_z(lens(s)), 0.0)))
    assert set(np.argsort(z)[-40:]) == set(range(300, 340))


def test_baseline_is_the_running_median_held_between_strided_frames():
    rng = np.random.default_rng(2)
    n = 3 * LENS_WINDOW
    x = rng.normal(0, 0.01, (n, 2)) + np.linspace(0, 1, n)[:, None]  # noise on a drifting light
    b = baseline(x)
    assert b.shape == x.shape
    assert np.abs(b - x)[LENS_WINDOW:-LENS_WINDOW].max() < 0.06  # it follows the drift (x spans 1)
    i = 1500  # far from the ends: the median of every LENS_STRIDE-th frame within the window
    lo = (i // LENS_STRIDE) * LENS_STRIDE
    half = LENS_WINDOW // LENS_STRIDE // 2
    want = np.median(x[::LENS_STRIDE][lo // LENS_STRIDE - half : lo // LENS_STRIDE + half + 1], axis=0)
    np.testing.assert_allclose(b[i], want)
    np.testing.assert_array_equal(b[lo : lo + LENS_STRIDE], np.repeat(b[lo][None], LENS_STRIDE, 0))


def test_lens_on_short_and_constant_sequences_is_finite():
    for n in (1, 2, 7):
        tiles = np.random.default_rng(n).random((n, 3 * LOCAL_GRID**2)).astype(np.float32)
        assert deviation(tiles).shape == (n, LOCAL_GRID**2)
        assert np.isfinite(lens({"tile_rgb": tiles})).all()
    flat = np.full((50, 3 * LOCAL_GRID**2), 0.5, np.float32)
    np.testing.assert_array_equal(lens({"tile_rgb": flat}), np.zeros(50))
