"""Keeping ordinary frames (--keep-ordinary): flagged frames that look like the training frames
without the network are kept; every corruption kind of the benchmark looks unusual to it."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from cae_fast.cli.flags import build_parser, config_from_args
from cae_fast.config import GROW_RUNS_GATE, GROW_RUNS_Z, KEEP_ORDINARY_C, Config
from cae_fast.data.synth import KINDS, SynthSpec, generate
from cae_fast.decide.postprocess import NEEDS, decide_frames, grow_runs, keep_ordinary, unusualness
from cae_fast.decide.rules import decide
from cae_fast.model.zoo import build_model
from cae_fast.score.combine import robust_z
from cae_fast.score.terms import score_frames


def test_no_corruption_kind_looks_ordinary_but_many_clean_frames_do():
    spec = SynthSpec(n_frames=1200, size=32, kinds=KINDS, seed=3, dirty_fraction=0.2, run_length=(40, 80))
    data = generate(spec)
    cfg = Config(data="x", image_size=32, channels=(8, 16), latent_dim=8, progress=False).resolved()
    torch.manual_seed(0)
    net = build_model(cfg).eval()  # untrained: what keep_ordinary reads does not involve it
    scores = score_frames(net, data.images, cfg, torch.device("cpu"), NEEDS)
    r = unusualness(scores, data.kinds == -1)
    assert r.shape == (1200,) and np.isfinite(r).all()
    for j, kind in enumerate(KINDS):
        assert (r[data.kinds == j] <= KEEP_ORDINARY_C).mean() < 0.02, kind
    assert (r[data.kinds == -1] <= KEEP_ORDINARY_C).mean() > 0.4
    np.testing.assert_allclose(unusualness({**scores, "tile_rgb": None}, data.kinds == -1), r)  # lens given


def _decision(raw: np.ndarray):
    cfg = Config(data="x", median_k=(1,), mad_k=2.25).resolved()
    return decide(raw, "combined", cfg), cfg


def test_keep_ordinary_keeps_ordinary_flagged_frames_and_nothing_else():
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, 400)
    raw[100:140] += 8  # a corrupted run
    raw[250:270] += 8  # rare clean scenery the network reconstructs badly
    typical = np.full(400, 0.3)
    typical[100:140] = 5.0
    d, _ = _decision(raw)
    assert not d.is_clean[250:270].any() and not d.is_clean[100:140].any()
    v = keep_ordinary(d, typical, 1.0)
    ordinary = typical <= 1.0
    np.testing.assert_array_equal(v.is_clean, d.is_clean | ordinary)
    assert not v.is_clean[100:140].any() and v.is_clean[250:270].all()
    assert v.segments.tolist() == [[100, 140]]
    # keep_ordinary changes which frames go, never the scores a ranking is computed on
    assert np.array_equal(v.stat, d.stat) and np.array_equal(v.score_med, d.score_med)
    n_kept = int((~d.is_clean & ordinary).sum())  # the scenery, and any noise frame over the cut
    assert n_kept >= 20 and f"; {n_kept} flagged frame(s) kept" in v.threshold.rule
    assert "--keep-ordinary" in v.threshold.rule
    assert d.is_clean.sum() < v.is_clean.sum()  # the input decision is left as it was
    np.testing.assert_array_equal(v.arrays()["unusualness"], typical)  # saved in filter_result.npz
    assert "unusualness" not in d.arrays()


def test_decide_frames_keeps_ordinary_frames_only_with_the_mad_rule():
    rng = np.random.default_rng(1)
    n = 300
    scores = {"combined": rng.normal(0, 1, n), "lapvar": np.exp(rng.normal(-5, 0.1, n))}
    scores["stuck_colour"] = rng.normal(0, 1, n)
    scores["combined"][50:80] += 9  # flagged, but ordinary without the network: keep_ordinary keeps it
    _, cfg = _decision(scores["combined"])
    off = decide_frames(scores, replace(cfg, keep_ordinary=0.0))
    on = decide_frames(scores, replace(cfg, keep_ordinary=1.0))
    assert not off.is_clean[50:80].any()
    assert on.is_clean[50:80].sum() > off.is_clean[50:80].sum()
    # unusualness is saved whenever it was read: by keep_ordinary, by grow_runs alone, not when neither is on
    want = unusualness(scores)
    np.testing.assert_array_equal(on.arrays()["unusualness"], want)
    np.testing.assert_array_equal(off.arrays()["unusualness"], want)  # grow_runs on by default
    assert "unusualness" not in decide_frames(scores, replace(cfg, keep_ordinary=0.0, grow_runs=0.0)).arrays()
    pcc = 1 - rng.uniform(0, 0.1, n)
    paper = decide_frames({**scores, "pcc": pcc}, replace(cfg, score="pcc", threshold="paper"))
    assert "--keep-ordinary" not in paper.threshold.rule
    with pytest.raises(ValueError, match="robust z removed above its cut"):
        keep_ordinary(paper, np.zeros(n), 1.0)


def test_warnings_describe_the_decision_after_keep_ordinary():
    rng = np.random.default_rng(2)
    n = 300
    # Every flagged frame looks ordinary without the network: keep_ordinary keeps them all, and the
    # warning that nothing was removed must say so rather than describe the cut before it.
    scores = {"combined": rng.normal(0, 1, n), "lapvar": np.exp(rng.normal(-5, 0.1, n))}
    scores["stuck_colour"] = np.zeros(n)
    scores["combined"][50:80] += 9
    _, cfg = _decision(scores["combined"])
    off = decide_frames(scores, replace(cfg, keep_ordinary=0.0))
    on = decide_frames(scores, replace(cfg, keep_ordinary=100.0))
    assert not off.is_clean.all() and not any("removed no frames" in w for w in off.warnings)
    assert on.is_clean.all()
    assert any("removed no frames" in w for w in on.warnings)


def test_grow_runs_grows_removed_stretches_over_unusual_neighbours_only():
    raw = np.zeros(400)
    raw[100:120] = 10.0  # the part of a run the network sees
    raw[120:150] = 1.5  # the rest of that run: above GROW_RUNS_Z, under the cut
    raw[60:100] = 1.5  # a clean margin before it, as weak
    raw[300:330] = 1.5  # an unusual stretch touching no removed frame
    typical = np.full(400, 0.5)
    typical[100:150] = typical[300:330] = 5.0  # corrupted frames look unusual without the network
    d, _ = _decision(raw)
    assert not d.is_clean[100:120].any() and d.is_clean[120:150].all()
    e = grow_runs(d, typical, GROW_RUNS_Z)
    removed = np.flatnonzero(~e.is_clean)
    assert removed.min() == 100 and removed.max() == 149 and len(removed) == 50
    assert e.segments.tolist() == [[100, 150]]
    assert np.array_equal(e.stat, d.stat) and np.array_equal(e.score_med, d.score_med)  # scores untouched
    np.testing.assert_array_equal(e.stat[:100], d.stat[:100])
    assert "30 frame(s) added" in e.threshold.rule and "--grow-runs" in e.threshold.rule
    assert grow_runs(d, typical, 2.0) is d  # 1.5 is under that z: nothing to add
    typical[120:150] = GROW_RUNS_GATE  # not above the gate
    assert grow_runs(d, typical, GROW_RUNS_Z) is d
    paper = decide_frames({"pcc": 1 - raw / 100}, replace(_decision(raw)[1], score="pcc", threshold="paper"))
    with pytest.raises(ValueError, match="--grow-runs needs a robust z"):
        grow_runs(paper, typical, GROW_RUNS_Z)


@pytest.mark.parametrize(
    "field, flag, default",
    [("grow_runs", "--grow-runs", GROW_RUNS_Z), ("keep_ordinary", "--keep-ordinary", KEEP_ORDINARY_C),
     ("grow_runs", "--extend", GROW_RUNS_Z), ("keep_ordinary", "--veto", KEEP_ORDINARY_C)],  # old names
)  # fmt: skip
@pytest.mark.parametrize(
    "argv, expected",
    [([], None), (["{flag}", "0"], 0.0), (["{flag}", "1.5"], 1.5), (["--paper"], 0.0),
     (["--train-data", "builtin:digits"], 0.0), (["--paper", "{flag}", "0.5"], 0.5)],
)  # fmt: skip
def test_grow_runs_and_keep_ordinary_flags_and_where_they_are_off(
    field, flag, default, argv, expected, tmp_path
):
    argv = [a.format(flag=flag) for a in argv]
    args = build_parser().parse_args(["--data", "builtin:digits", "--out", str(tmp_path / "r"), *argv])
    assert getattr(config_from_args(args), field) == (default if expected is None else expected)


def test_the_old_flag_names_are_accepted_but_not_listed():
    help_text = build_parser().format_help()
    assert "--keep-ordinary" in help_text and "--grow-runs" in help_text
    assert "--veto" not in help_text and "--extend" not in help_text


def test_robust_z_against_a_reference_set():
    s = np.array([0.0, 1.0, 2.0, 3.0, 100.0, 200.0])
    ref = np.array([True, True, True, True, False, False])
    # median 1.5 and MAD 1.0 of the first four, whatever the other two are
    np.testing.assert_allclose(robust_z(s, ref), (s - 1.5) / 1.4826)
    np.testing.assert_allclose(robust_z(s), robust_z(s, np.ones(6, bool)))
