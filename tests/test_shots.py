"""Shots (cae_fast.score.shots) on real photographs panned as video: the cuts are known, a corruption
with a hard onset is not a cut, and a clean scene that is simply more detailed is not flagged."""

import numpy as np
import pytest
from skimage import data, transform

from cae_fast.score.combine import combined
from cae_fast.score.shots import find_shots, shot_relative

GRID = 8


def _pan(photo: np.ndarray, n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` frames of a ``size`` box sliding slowly across ``photo``: one shot."""
    photo = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, axis=2)
    h, w = photo.shape[:2]
    box = min(h, w) // 2
    rng = np.random.default_rng(seed)
    y0, x0 = rng.integers(0, h - box), rng.integers(0, w - box - n)
    out = [transform.resize(photo[y0 : y0 + box, x0 + i : x0 + i + box], (size, size)) for i in range(n)]
    return (np.stack(out) * 255).astype(np.uint8)


def _tiles(frames: np.ndarray) -> np.ndarray:
    """Tile colour means on an 8 x 8 grid, channel-major, 0-1: an independent numpy twin of tile_rgb."""
    n, s = frames.shape[:2]
    t = frames.reshape(n, GRID, s // GRID, GRID, s // GRID, 3).mean(axis=(2, 4)) / 255.0
    return t.transpose(0, 3, 1, 2).reshape(n, -1)


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    return np.concatenate(
        [_pan(data.astronaut(), 60), _pan(data.coffee(), 50, seed=1), _pan(data.camera(), 40)]
    )


def _fog(frames: np.ndarray, seed: int = 3) -> np.ndarray:
    """A thick, uneven haze (one pattern for the run, as on a lens): strong enough to break the layout."""
    rng = np.random.default_rng(seed)
    haze = transform.resize(rng.random((3, 3)), frames.shape[1:3], order=3)[None, ..., None]
    return (frames * 0.25 + 255 * 0.75 * haze).clip(0, 255).astype(np.uint8)


def test_cuts_are_found_where_the_photo_changes(video):
    shot = find_shots(_tiles(video), min_len=10)
    assert np.flatnonzero(np.diff(shot)).tolist() == [59, 109]  # a new shot at frames 60 and 110
    assert find_shots(_tiles(video), min_len=51).max() == 0  # shots of 50 and 40 frames are too short


def test_a_corruption_onset_inside_a_shot_is_not_a_cut(video):
    dirty = video.copy()
    dirty[20:35] = _fog(dirty[20:35])
    t = _tiles(dirty)
    step = np.sum((t[1:] - t[1:].mean(1, keepdims=True)) * (t[:-1] - t[:-1].mean(1, keepdims=True)), 1)
    step /= np.linalg.norm(t[1:] - t[1:].mean(1, keepdims=True), axis=1)
    step /= np.linalg.norm(t[:-1] - t[:-1].mean(1, keepdims=True), axis=1)
    assert step[19] < 0.5 and step[34] < 0.5  # the haze breaks the layout at both ends...
    shot = find_shots(t, min_len=10)
    assert np.flatnonzero(np.diff(shot)).tolist() == [59, 109]  # ...but the content went on under it


def test_shot_relative_subtracts_each_shots_own_median():
    x = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 60.0])
    shot = np.array([0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(shot_relative(x, shot), [-1.0, 0.0, 1.0, -10.0, 0.0, 40.0])
    np.testing.assert_array_equal(shot_relative(x, None), x)


def test_a_more_detailed_clean_scene_is_not_dirtier_within_its_own_shot():
    """Two clean shots whose terms sit at different levels (one scene simply reconstructs worse):
    read against the whole sequence, the whole second scene stands out; read per shot, no frame
    does. A corrupted stretch inside the second shot still stands out."""
    rng = np.random.default_rng(0)
    n = 400
    level = np.r_[np.zeros(300), np.full(100, 6.0)]  # the minority scene's level
    scores = {
        name: level + rng.standard_normal(n) for name in ("added_structure", "bad_tiles", "stuck_colour")
    }
    scores |= {name: rng.standard_normal(n) for name in ("lost_detail", "lost_detail_tiles", "fine_detail")}
    whole = combined(scores)
    per_shot = combined({**scores, "shot": np.repeat([0, 1], [300, 100])})
    assert np.median(whole[300:]) > 4.0  # the scene itself is "dirty" against the sequence
    assert np.median(per_shot[300:]) < 1.0
    dirty = {k: v.copy() for k, v in scores.items()}
    for name in ("added_structure", "bad_tiles"):
        dirty[name][340:360] += 8.0
    per_shot = combined({**dirty, "shot": np.repeat([0, 1], [300, 100])})
    assert per_shot[340:360].min() > np.quantile(np.delete(per_shot, np.s_[340:360]), 0.99)


def test_one_long_shot_has_no_cut():
    single = _pan(data.astronaut(), 80)
    assert find_shots(_tiles(single), min_len=21).tolist() == [0] * 80


@pytest.mark.parametrize(
    "shots, median_k, has_shot", [(True, (21,), True), (True, (1,), False), (False, (21,), False)]
)
def test_score_frames_finds_shots_only_when_asked_and_in_order(video, shots, median_k, has_shot):
    import torch

    from cae_fast.config import Config
    from cae_fast.model.cae import CAE
    from cae_fast.score.terms import score_frames

    torch.manual_seed(0)
    cfg = Config(data="x", image_size=64, channels=(8, 16), latent_dim=8, shots=shots, median_k=median_k)
    out = score_frames(
        CAE(image_size=64, latent_dim=8, channels=(8, 16)), video, cfg, torch.device("cpu"), ("combined",)
    )
    assert ("shot" in out) == has_shot
    if has_shot:
        assert np.flatnonzero(np.diff(out["shot"])).tolist() == [59, 109]  # the cuts, from the fused tile_rgb
