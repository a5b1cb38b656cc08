"""The external benchmark's generator (``benchmarks.external``): labels, runs, persistence of lens
dirt, splits and the cache. The corruptions come from ``imagecorruptions`` (the ``[bench]``
extra); tests that apply them skip without it."""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

# benchmarks/ is not an installed package: see test_detection_benchmark.py.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from benchmarks.external import corrupt, photos, sequences  # noqa: E402
from benchmarks.external.sequences import generate, spec_named  # noqa: E402

needs_library = pytest.mark.skipif(not corrupt.available(), reason="imagecorruptions not installed")


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.r_[0, labels.astype(int), 0]))
    return list(zip(edges[::2], edges[1::2], strict=True))


@pytest.fixture(scope="module")
def shots():
    spec = replace(spec_named("shots"), n=600)
    return generate("dev", spec), generate("dev", spec, corrupted=False)


@needs_library
def test_labels_are_exactly_the_frames_the_library_changed(shots):
    dirty, twin = shots
    changed = (dirty.images != twin.images).any(axis=(1, 2, 3))
    np.testing.assert_array_equal(changed, dirty.labels == 1)
    runs = _runs(dirty.labels)
    assert len(runs) == len(corrupt.KINDS)  # one run per kind, none touching another
    for start, stop in runs:
        assert len(set(dirty.kinds[start:stop])) == 1 and len(set(dirty.severity[start:stop])) == 1
        assert dirty.severity[start] in corrupt.SEVERITIES


@needs_library
def test_onset_is_hard(shots):
    dirty, twin = shots
    for start, stop in _runs(dirty.labels):
        diff = np.abs(dirty.images[start:stop].astype(np.int16) - twin.images[start:stop]).mean(
            axis=(1, 2, 3)
        )
        assert diff[0] >= 0.7 * np.median(diff), (corrupt.KINDS[dirty.kinds[start]], diff[:3])


@needs_library
def test_lens_dirt_keeps_its_pattern_for_the_whole_run(shots):
    dirty, twin = shots
    (start, stop), *_ = [r for r in _runs(dirty.labels) if corrupt.KINDS[dirty.kinds[r[0]]] == "spatter"]

    def marks(frame: np.ndarray, clean: np.ndarray) -> np.ndarray:
        return np.abs(frame.astype(np.int16) - clean).max(-1) > 25

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return (a & b).sum() / max(1, (a | b).sum())

    first = marks(dirty.images[start], twin.images[start])
    assert first.mean() > 0.01
    assert iou(first, marks(dirty.images[stop - 1], twin.images[stop - 1])) > 0.8
    # The measure tells two patterns apart: the same frame dirtied with another seed (frames are
    # corrupted at capture size, then reduced, as in the generator).
    spec = dirty.spec
    shots_ = sequences._layout(spec, sequences._rng("dev", spec, "camera"))[0]
    shot, t = [(s, t) for s in shots_ for t in range(s.n)][start]
    other = corrupt.corrupt(photos.render(shot, t), "spatter", int(dirty.severity[start]), seed=12345)
    assert iou(first, marks(photos.reduce(other, spec.size), twin.images[start])) < 0.5


def test_minority_stretch_is_one_clean_block_of_other_scenery():
    seq = generate("dev", replace(spec_named("minority"), n=600), corrupted=False)
    block = np.flatnonzero(seq.minority)
    assert len(block) == round(sequences.MINORITY_SHARE * len(seq.labels))
    assert np.all(np.diff(block) == 1)
    assert not seq.labels[block].any() and seq.labels.sum() > 0
    img = seq.images.astype(np.int16)
    greyness = np.abs(img[..., 0] - img[..., 2]).mean(axis=(1, 2))  # the other light is grey
    assert greyness[block].max() < greyness[~seq.minority].min()


def test_each_split_holds_every_kind_at_every_severity():
    for split in sequences.SPLITS:
        pairs = set()
        for spec in sequences.SEQUENCES:
            if spec.layout in ("shots", "drive", "minority"):
                _, minority = sequences._layout(spec, sequences._rng(split, spec, "camera"))
                runs = sequences._runs(spec, sequences._rng(split, spec, "runs"), minority)
                pairs |= {(k, sev) for _s, _n, k, sev, _seed in runs}
        assert pairs == {(k, s) for k in range(len(corrupt.KINDS)) for s in corrupt.SEVERITIES}


def test_splits_are_deterministic_and_share_no_frame():
    spec = replace(spec_named("clean"), n=120)
    dev = generate("dev", spec)
    np.testing.assert_array_equal(dev.images, generate("dev", spec).images)
    test = generate("test", spec)
    seen = {f.tobytes() for f in dev.images}
    assert not any(f.tobytes() in seen for f in test.images)
    assert dev.shot.max() >= 1  # there are cuts


@needs_library
def test_shuffled_set_is_single_frames_of_every_kind_and_severity():
    seq = generate("dev", replace(spec_named("shuffled"), n=300))
    assert seq.labels.mean() == pytest.approx(sequences.SHUFFLED_DIRTY)
    pairs = {(int(k), int(s)) for k, s in zip(seq.kinds, seq.severity, strict=True) if k >= 0}
    assert pairs == {(k, s) for k in range(len(corrupt.KINDS)) for s in corrupt.SEVERITIES}
    np.testing.assert_array_equal(np.sort(seq.order), np.arange(300))
    assert not np.array_equal(seq.order, np.arange(300))


def test_cache_is_reused(tmp_path, monkeypatch):
    spec = replace(spec_named("clean"), n=40)
    path, reused = sequences.load("dev", spec, tmp_path)
    assert not reused and path.is_file()
    with np.load(path) as z:
        assert z["images"].shape == (40, spec.size, spec.size, 3) and z["labels"].shape == (40,)

    def fail(*_a, **_k):
        raise AssertionError("generated again")

    monkeypatch.setattr(sequences, "generate", fail)
    again, reused = sequences.load("dev", spec, tmp_path)
    assert reused and again == path


@needs_library
def test_corrupt_leaves_numpy_as_it_found_it():
    img = np.full((corrupt.CAPTURE, corrupt.CAPTURE, 3), 128, np.uint8)
    np.random.seed(7)
    expected = np.random.random()
    np.random.seed(7)
    corrupt.corrupt(img, "fog", 3, seed=1)
    assert np.random.random() == expected
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        assert "float_" not in np.__dict__  # the fog shim does not outlive its call


def test_judge_separates_ranking_from_decision():
    from benchmarks.external.metrics import judge

    labels = np.array([0] * 8 + [1] * 4, np.uint8)
    kinds = np.array([-1] * 8 + [0, 0, 1, 1], np.int8)
    seq = {"labels": labels, "kinds": kinds, "severity": np.where(kinds >= 0, 3, 0),
           "minority": np.r_[np.zeros(6, bool), np.ones(2, bool), np.zeros(4, bool)]}  # fmt: skip
    score = np.r_[np.arange(8.0), 20, 21, 2.5, 22]  # one dirty frame ranks below five clean ones
    is_clean = np.r_[np.ones(7, bool), False, False, True, True, False]  # a minority frame lost
    r = judge(seq, score, None, is_clean)
    assert r["roc_auc"] == pytest.approx((3 * 8 + 3) / 32)  # 27 of 32 (dirty, clean) pairs in order
    assert np.isnan(r["roc_auc_filtered"])
    assert r["dirty_removed"] == 0.5 and r["clean_kept"] == 7 / 8 and r["minority_kept"] == 0.5
    spatter, fog = r["per_kind"][corrupt.KINDS[0]], r["per_kind"][corrupt.KINDS[1]]
    assert spatter["roc_auc"] == 1.0 and spatter["removed"] == 0.5
    assert fog["roc_auc"] == pytest.approx(11 / 16) and fog["by_severity"] == {"3": {"n": 2, "removed_n": 1}}
    clean_only = judge({**seq, "labels": np.zeros(12, np.uint8), "kinds": np.full(12, -1, np.int8)},
                       score, None, is_clean)  # fmt: skip
    assert np.isnan(clean_only["roc_auc"]) and clean_only["removed"] == 3 / 12


def test_the_test_split_stays_closed_without_a_written_rule():
    from benchmarks.external import runner

    for split in ("test", "test2", "test3"):  # every test split stays closed without a written adoption rule
        with pytest.raises(SystemExit):
            runner.parse_args(["--split", split])
    assert runner.parse_args(["--split", "dev"]).split == "dev"


def test_pyod_peers_find_frames_unlike_the_rest():
    pytest.importorskip("pyod")
    from benchmarks import peers

    rng = np.random.default_rng(0)
    images = (rng.normal(120, 10, (200, 32, 32, 3))).clip(0, 255).astype(np.uint8)
    odd = rng.choice(200, 10, replace=False)
    images[odd] = 250  # white-out frames
    labels = np.zeros(200, np.uint8)
    labels[odd] = 1
    from benchmarks.external.metrics import ranking

    for name, peer in peers.PEERS.items():
        res = peer(images)
        assert ranking(labels, res.score)[0] > 0.99, name
        assert (~res.is_clean)[odd].all(), name


def test_the_simulator_drives_on_the_road_and_each_seed_is_its_own_track():
    from benchmarks.external import race

    if not race.available():
        pytest.skip("gymnasium[box2d] not installed")
    a = race.track_frames(3, 150, size=64)
    np.testing.assert_array_equal(a[:10], race.track_frames(3, 10, size=64))
    assert not np.array_equal(a[:10], race.track_frames(4, 10, size=64))
    px = a.astype(np.int16)
    grey = (np.abs(px[..., 0] - px[..., 1]) < 15) & (px[..., 0] > 80) & (px[..., 0] < 130)
    ahead = grey[:, 20:40, 24:40].mean(axis=(1, 2))  # the road just ahead of the car
    assert (ahead > 0.3).mean() > 0.9
    assert np.abs(np.diff(px, axis=0)).mean() > 0.5  # it moves


def test_the_runner_reads_a_tool_run_through_its_command_line(tmp_path, tiny_frames):
    """The lapvar row end to end (CLI subprocess, filter_result.npz): its score (higher = dirtier,
    as every score the tool writes) must fall as an independent variance of the Laplacian (scipy)
    rises."""
    import argparse

    from scipy import ndimage
    from scipy.stats import spearmanr

    from benchmarks.external import runner

    images, labels = tiny_frames
    n = len(labels)
    data = tmp_path / "tiny.npz"
    np.savez(data, images=images, labels=labels)
    seq = {"labels": labels, "kinds": np.where(labels == 1, 0, -1), "severity": labels * 3,
           "minority": np.zeros(n, bool)}  # fmt: skip
    spec = sequences.SequenceSpec("tiny", images.shape[1], n, "shots")
    args = argparse.Namespace(paper_epochs=1, threads=1)
    r = runner.row_result("lapvar", seq, data, spec, tmp_path / "work", args)
    assert r["score"] == "lapvar" and r["n"] == n and 0.0 <= r["roc_auc"] <= 1.0
    with np.load(tmp_path / "work" / "tiny" / "lapvar" / "filter_result.npz") as z:
        dirt = z["lapvar"].astype(np.float64)
    grey = images.astype(np.float64).mean(-1) / 255.0
    lap_var = np.array([ndimage.laplace(g)[1:-1, 1:-1].var() for g in grey])
    assert spearmanr(dirt, lap_var)[0] < -0.8
