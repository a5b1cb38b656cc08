"""The model-free ``stuck_colour`` term (``score.lens``): a tile's colour distance from its running
per-place baseline."""

import numpy as np
import pytest
import torch
from scipy.ndimage import median_filter

from cae_fast.config import Config
from cae_fast.model.zoo import build_model
from cae_fast.score.combine import TILE_GRID, combined, loudest, robust_z, stuck_colour, trim_score
from cae_fast.score.lens import LENS_STRIDE, LENS_WINDOW, baseline, deviation, persistence, persistent
from cae_fast.score.terms import score_frames

SIZE = 4 * TILE_GRID  # 4-pixel tiles


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
    return torch.nn.functional.avg_pool2d(x, SIZE // TILE_GRID).flatten(1).numpy()


def test_lens_finds_a_splat_fixed_on_the_lens_over_moving_scenery():
    frames = _drive(1500)
    run = np.arange(700, 780)
    frames[run, :, 20:28, 4:12] = np.array([0.2, 0.14, 0.08])[:, None, None]  # mud on the road
    score = stuck_colour({"tile_rgb": _tiles(frames)})
    assert score.shape == (1500,)
    clean = np.delete(score, run)
    assert score[run].min() > np.quantile(clean, 0.995)  # every mud frame above the clean tail


def test_lens_is_a_term_of_the_default_score():
    frames = _drive(600, seed=1)
    frames[300:340, :, 16:24, 8:16] *= 0.3
    s = {"tile_rgb": _tiles(frames)}
    terms = {
        name: np.zeros(600)
        for name in ("added_structure", "lost_detail", "lost_detail_tiles", "bad_tiles", "fine_detail")
    }
    z = combined({**terms, **s})
    np.testing.assert_allclose(z, robust_z(np.maximum(robust_z(stuck_colour(s)), 0.0)))
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
        tiles = np.random.default_rng(n).random((n, 3 * TILE_GRID**2)).astype(np.float32)
        assert deviation(tiles).shape == (n, TILE_GRID**2)
        assert np.isfinite(stuck_colour({"tile_rgb": tiles})).all()
    flat = np.full((50, 3 * TILE_GRID**2), 0.5, np.float32)
    np.testing.assert_array_equal(stuck_colour({"tile_rgb": flat}), np.zeros(50))


def _passing_objects(frames: np.ndarray, seed: int) -> None:
    """Clean scenery that changes one place for a few frames: a dark object crossing a tile every
    ~8 frames, somewhere in the frame (a car, a tree, a building going by)."""
    rng = np.random.default_rng(seed)
    for start in range(0, len(frames) - 4, 8):
        y, x = rng.integers(0, SIZE - 8, 2)
        frames[start : start + rng.integers(2, 5), :, y : y + 8, x : x + 8] = rng.uniform(0.0, 0.2, (3, 1, 1))


def test_persistent_lens_keeps_a_fixed_splat_and_drops_what_passes_by():
    frames = _drive(1500, seed=3)
    _passing_objects(frames, seed=4)
    run = np.arange(700, 760)
    frames[run, :, 20:28, 4:12] = np.array([0.25, 0.2, 0.12])[:, None, None]  # mud, paler than the cars
    tiles = {"tile_rgb": _tiles(frames)}
    clean = np.setdiff1d(np.arange(1500), run)
    inner = run[10:-10]  # a 21-frame median needs 11 frames of the run on each side
    every_frame, lasting = stuck_colour(tiles), stuck_colour(tiles, persist=21)
    # Frame by frame, the cars going by look as unusual as the mud ...
    assert every_frame[inner].min() < np.quantile(every_frame[clean], 0.99)
    # ... kept only where it lasts, the mud stands above every clean frame.
    assert lasting[inner].min() > lasting[clean].max()


def test_persistent_is_a_running_median_per_tile_and_persistence_the_shortest_filter():
    dev = np.random.default_rng(5).normal(size=(200, 6))
    np.testing.assert_allclose(persistent(dev, 21), median_filter(dev, size=(21, 1), mode="nearest"))
    assert persistent(dev, 1) is dev
    assert persistence((21, 101), 2400) == 21
    assert persistence((101,), 2400) == 101
    assert persistence((1,), 2400) == 1  # not a video: frames have no neighbours
    assert persistence((21, 101), 10) == 9 and persistence((21,), 8) == 7


@pytest.mark.parametrize("median_k, persist", [((21, 101), 21), ((1,), 1), ((5,), 5)])
def test_score_frames_keeps_lens_deviations_as_long_as_the_shortest_filter(median_k, persist):
    cfg = Config(image_size=32, latent_dim=16, channels=(8, 16), median_k=median_k, progress=False, data="x")
    torch.manual_seed(0)
    model = build_model(cfg.resolved()).eval()
    images = (np.random.default_rng(6).random((40, 32, 32, 3)) * 255).astype(np.uint8)
    got = score_frames(model, images, cfg.resolved(), torch.device("cpu"), ("stuck_colour", "tile_rgb"))
    np.testing.assert_allclose(
        got["stuck_colour"], stuck_colour({"tile_rgb": got["tile_rgb"]}, persist=persist), rtol=1e-6
    )


def test_the_trimming_score_adds_a_lasting_splat_the_network_terms_miss():
    frames = _drive(600, seed=7)
    _passing_objects(frames, seed=8)
    run = np.arange(300, 360)
    frames[run, :, 20:28, 4:12] = np.array([0.25, 0.2, 0.12])[:, None, None]
    rng = np.random.default_rng(9)
    # the network reproduces the splat: its terms are noise, the run no louder than any frame
    scores = {
        name: rng.normal(size=600)
        for name in ("added_structure", "lost_detail", "lost_detail_tiles", "bad_tiles")
    }
    scores["tile_rgb"] = _tiles(frames)
    net, both = loudest(scores), trim_score(scores, persist=21)
    np.testing.assert_allclose(both, np.maximum(net, robust_z(stuck_colour(scores, persist=21))))
    inner = run[10:-10]
    assert np.median(net[inner]) < 2.0 < both[inner].min()  # the splat now leaves training (item 20)
    # frames not in order (--median-k 1): loudest alone, as measured without stuck_colour (docs item 13)
    np.testing.assert_array_equal(trim_score(scores, persist=1), net)
