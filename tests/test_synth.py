"""The labelled benchmark generator: determinism, layout of the corrupted runs, every kind visible."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cae_fast.data.synth import KINDS, SynthData, SynthSpec, generate, place_runs, save_montage


def _small(**kw) -> SynthSpec:
    base = dict(n_frames=160, size=64, dirty_fraction=0.25, run_length=(20, 30), seed=3)
    base.update(kw)
    return SynthSpec(**base)


def test_kinds_are_the_documented_ones():
    assert KINDS == ("raindrop", "mud", "fog", "glare", "motion_blur", "noise")


@pytest.mark.parametrize("size", [64, 96])
def test_shapes_and_dtypes(size):
    data = generate(_small(size=size, n_frames=60))
    assert isinstance(data, SynthData)
    assert data.images.shape == (60, size, size, 3) and data.images.dtype == np.uint8
    assert data.labels.shape == (60,) and data.labels.dtype == np.uint8
    assert data.kinds.shape == (60,) and data.kinds.dtype == np.int8
    assert data.order.dtype == np.int64 and np.array_equal(data.order, np.arange(60))
    assert set(np.unique(data.labels)) <= {0, 1}
    assert np.array_equal(data.labels, (data.kinds >= 0).astype(np.uint8))
    # frames are images, not constant fills
    assert data.images.std() > 20


def test_deterministic_for_a_seed():
    a, b = generate(_small(kinds=KINDS)), generate(_small(kinds=KINDS))
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels) and a.segments == b.segments
    c = generate(_small(kinds=KINDS, seed=4))
    assert not np.array_equal(a.images, c.images)


def test_runs_contiguous_in_range_and_spread():
    spec = SynthSpec(n_frames=4000, kinds=KINDS)
    n_dirty = round(spec.n_frames * spec.dirty_fraction)
    not_at_end = 0
    for seed in range(6):
        segs = place_runs(dataclasses.replace(spec, seed=seed), np.random.default_rng(seed))
        assert sum(e - s for s, e, _ in segs) == n_dirty
        assert all(20 <= e - s <= 200 for s, e, _ in segs)
        assert all(e1 < s2 for (_, e1, _), (s2, _, _) in zip(segs, segs[1:], strict=False))  # ordered, apart
        assert [k for _, _, k in segs][: len(KINDS)] == list(KINDS)  # runs cycle through the kinds
        not_at_end += segs[0][0] < spec.n_frames - n_dirty
    assert not_at_end == 6

    data = generate(SynthSpec(n_frames=2000, kinds=("raindrop", "fog"), seed=1))
    labels = data.labels.astype(bool)
    for s, e, kind in data.segments:
        assert labels[s:e].all() and (data.kinds[s:e] == KINDS.index(kind)).all()
        assert s == 0 or not labels[s - 1]
        assert e == 2000 or not labels[e]
    assert labels.sum() == sum(e - s for s, e, _ in data.segments)


def test_dirty_fraction_close_to_requested():
    data = generate(SynthSpec(n_frames=1000, size=32))
    assert abs(data.labels.mean() - 1600 / 17600) < 0.002
    assert generate(_small(dirty_fraction=0.0)).labels.sum() == 0


def test_too_few_dirty_frames_make_one_short_run():
    segs = place_runs(SynthSpec(n_frames=100, dirty_fraction=0.05), np.random.default_rng(0))
    assert len(segs) == 1 and segs[0][1] - segs[0][0] == 5


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_changes_the_frames_it_corrupts(kind):
    spec = _small(kinds=(kind,))
    dirty, clean = generate(spec), generate(dataclasses.replace(spec, dirty_fraction=0.0))
    # separate random streams: the clean twin is the same video frame for frame
    mask = dirty.labels.astype(bool)
    assert mask.sum() == 40
    assert np.array_equal(dirty.images[~mask], clean.images[~mask])
    diff = np.abs(dirty.images[mask].astype(np.int16) - clean.images[mask]).mean(axis=(1, 2, 3))
    assert diff.min() > 2.0, f"{kind}: some corrupted frames barely differ ({diff.min():.2f})"


def _laplacian_energy(images: np.ndarray) -> np.ndarray:
    g = images.astype(np.float32).mean(axis=-1)
    lap = 4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]
    return lap.var(axis=(1, 2))


def test_rain_balance_trades_drops_for_wet_film():
    spec = _small(sensor_noise=0.0)
    clean = generate(dataclasses.replace(spec, dirty_fraction=0.0)).images
    results = {}
    for balance in (0.0, 1.0):
        data = generate(dataclasses.replace(spec, rain_balance=balance))
        mask = data.labels.astype(bool)
        changed = (np.abs(data.images[mask].astype(np.int16) - clean[mask]) > 6).any(-1).mean(axis=(1, 2))
        sharp = _laplacian_energy(data.images[mask]) / _laplacian_energy(clean[mask])
        results[balance] = changed, sharp
    drops_changed, drops_sharp = results[0.0]
    film_changed, film_sharp = results[1.0]
    assert drops_changed.max() < 0.6  # drops only: the frame is untouched between them
    assert film_changed.mean() > drops_changed.mean()
    assert (film_sharp < 0.8).all()  # the film removes detail everywhere
    assert drops_sharp.mean() > film_sharp.mean()


def test_shuffled_variant_is_a_permutation_with_labels_following():
    spec = _small(kinds=("raindrop", "glare"))
    video = generate(spec)
    shuffled = generate(dataclasses.replace(spec, shuffle=True))
    order = shuffled.order
    assert sorted(order.tolist()) == list(range(spec.n_frames))
    assert not np.array_equal(order, np.arange(spec.n_frames))
    assert np.array_equal(shuffled.images, video.images[order])
    assert np.array_equal(shuffled.labels, video.labels[order])
    assert np.array_equal(shuffled.kinds, video.kinds[order])
    assert shuffled.segments == video.segments  # segments stay in video order


def test_writes_into_a_preallocated_memmap(tmp_path):
    spec = _small(n_frames=50)
    out = np.lib.format.open_memmap(tmp_path / "frames.npy", mode="w+", dtype=np.uint8, shape=(50, 64, 64, 3))
    data = generate(spec, out=out)
    assert data.images is out
    assert np.array_equal(np.asarray(out), generate(spec).images)
    with pytest.raises(ValueError):
        generate(spec, out=np.empty((49, 64, 64, 3), np.uint8))


@pytest.mark.parametrize(
    "bad",
    [
        dict(kinds=("rain",)),
        dict(kinds=()),
        dict(dirty_fraction=1.5),
        dict(run_length=(30, 20)),
        dict(size=8),
        dict(size=2048),
    ],
)
def test_rejects_bad_specs(bad):
    with pytest.raises(ValueError):
        SynthSpec(**bad)


def test_montage_has_a_row_per_kind(tmp_path):
    from PIL import Image

    data = generate(_small(kinds=("raindrop", "mud"), n_frames=200))
    path = tmp_path / "m.png"
    save_montage(data, path, n_clean=8, n_dirty=8)
    w, h = Image.open(path).size
    assert h == 3 * (128 + 4)  # one clean row, one raindrop row, one mud row
    assert w > 8 * 128
