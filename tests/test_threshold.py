import numpy as np
import pytest
from scipy import ndimage

from cae_fast import config
from cae_fast.config import LONG_FILTER_GATE, Config
from cae_fast.decide.rules import THRESHOLDS, apply_threshold, paper_rule


def test_paper_constants():
    assert (config.LATENT_DIM, config.IMAGE_SIZE, config.M_REF, config.LAMBDA_REF) == (256, 224, 1024, 1.0)
    assert (config.LR, config.EPOCHS, config.BATCH_SIZE, config.MEDIAN_K) == (5e-4, 100, 32, 101)
    assert config.DELTA_MARGIN == 0.05


def test_paper_rule_on_one_minus_pcc_is_the_published_median_minus_margin():
    pcc_med = np.array([0.9, 0.95, 0.8, 0.99, 0.7, 0.93], np.float32)
    t = paper_rule(1 - pcc_med, 0.05)  # the pcc score is 1 - PCC: higher = dirtier
    published = pcc_med >= np.median(pcc_med) - 0.05
    np.testing.assert_array_equal(t.is_clean, published)
    assert t.is_clean.tolist() == [True, True, False, True, False, True]
    assert t.delta == pytest.approx(1 - (float(np.median(pcc_med)) - 0.05))


def test_frame_exactly_at_delta_is_clean():
    pcc_med = np.array([0.5, 0.5, 0.5])
    assert paper_rule(pcc_med, 0.0).is_clean.all()


def test_registry_uses_config_margin():
    score_med = np.linspace(0, 1, 11)
    t = apply_threshold("paper", score_med, Config(delta_margin=0.2))
    assert t.delta == pytest.approx(0.7)
    assert "paper" in THRESHOLDS
    with pytest.raises(ValueError, match="unknown threshold"):
        apply_threshold("nope", score_med, Config())


# ---- the other rules, filter scales, segments and warnings ---------------------------------------

from cae_fast.decide.rules import (  # noqa: E402
    below_median_z,
    decide,
    dirty_z,
    fixed_rule,
    format_segments,
    paper_view,
    removed_segments,
)
from cae_fast.score.combine import robust_z  # noqa: E402
from cae_fast.score.median import median_filter_1d  # noqa: E402


def _series(n: int = 600, seed: int = 0) -> np.ndarray:
    """A PCC-like score around 0.9: a slow scene-driven wave plus frame noise."""
    t = np.arange(n)
    return 0.9 + 0.01 * np.sin(2 * np.pi * t / 300) + 0.002 * np.random.default_rng(seed).standard_normal(n)


def test_mad_rule_is_one_sided_robust_z_beyond_k():
    s = 1 - _series()  # higher = dirtier
    s[100], s[200] = 0.15, 0.05  # one dirtier, one cleaner than the crowd
    med = np.median(s)
    z = (s - med) / (1.4826 * np.median(np.abs(s - med)))
    t = apply_threshold("mad", s, Config(threshold="mad", mad_k=3.0, stand_out=0))
    np.testing.assert_allclose(t.stat, z)
    np.testing.assert_array_equal(t.is_clean, z <= 3.0)
    assert not t.is_clean[100] and t.is_clean[200]  # only the dirty tail


def test_contamination_removes_the_top_fraction():
    s = np.random.default_rng(1).permutation(np.linspace(0.5, 1.0, 200))  # distinct values
    t = apply_threshold("contamination", s, Config(threshold="contamination", contamination=0.05))
    assert (~t.is_clean).sum() == 10
    assert set(np.flatnonzero(~t.is_clean)) == set(np.argsort(s)[-10:])  # the 10 highest
    with pytest.raises(ValueError, match="contamination"):
        apply_threshold("contamination", s, Config(threshold="contamination"))


def test_fixed_cuts_in_the_scores_units():
    s = np.array([0.7, 0.8, 0.9, 1.0])
    assert fixed_rule(s, 0.85).is_clean.tolist() == [True, True, False, False]
    t = apply_threshold("fixed", s, Config(threshold="fixed", fixed=0.8))
    assert t.delta == 0.8 and t.is_clean.tolist() == [True, True, False, False]


def test_detrending_finds_a_run_that_a_drift_hides():
    """PCC drifts down over the sequence; a 30-frame dip sits in the early, high part. Against the
    whole-sequence median the dip is still cleaner than the late frames; against a local baseline
    (rolling median over 151 frames) it stands out."""
    n = 1000
    s = np.linspace(0.95, 0.85, n) + 0.004 * np.random.default_rng(0).standard_normal(n)
    s[150:180] -= 0.02
    flat = decide(1 - s, "pcc", Config(threshold="mad", median_k=(5,)))
    assert flat.threshold.is_clean[150:180].all()
    local = decide(1 - s, "pcc", Config(threshold="mad", median_k=(5,), detrend=151))
    removed = ~local.threshold.is_clean
    assert removed[152:178].all() and removed.sum() - removed[145:185].sum() <= 5
    assert [152, 178] in [[max(a, 152), min(b, 178)] for a, b in local.segments.tolist()]
    assert "detrended over 151" in local.threshold.rule


def test_short_run_survives_the_short_filter_and_scales_combine_by_max():
    s = _series(800)
    s[300:320] -= 0.05  # 20 frames: a 101-frame median filter erases them
    cfg = Config(threshold="mad", median_k=(101,), stand_out=0)  # the cut itself
    assert decide(1 - s, "pcc", cfg).threshold.is_clean[300:320].all()
    both = decide(1 - s, "pcc", Config(threshold="mad", median_k=(21, 101), stand_out=0))
    assert not both.threshold.is_clean[302:318].any() and both.ks == (21, 101)
    z21, z101 = [dirty_z([median_filter_1d(1 - s, k)]) for k in (21, 101)]
    # the long filter counts only where the short one already sees something (z > LONG_FILTER_GATE)
    np.testing.assert_allclose(both.stat, np.maximum(z21, np.where(z21 > LONG_FILTER_GATE, z101, z21)))
    assert decide(1 - s, "pcc", Config(threshold="mad", median_k=(101, 21))).ks == (21, 101)
    # score_med (the score's units) is the dirtiest filtered value: the lower PCC of the two.
    lower = np.minimum(median_filter_1d(s, 21), median_filter_1d(s, 101))
    np.testing.assert_allclose(both.score_med, 1 - lower, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_default_filter_keeps_a_runs_clean_neighbours_that_a_long_one_drags_over_the_cut(seed):
    """A 48-frame corrupted run, 32 nearly ordinary frames, then a mildly unusual clean stretch (as
    on the benchmark's 64² seed 202, docs/history.md item 19): a 101-frame window over the gap is
    mostly run and stretch, so its median holds the gap above the cut; the default 21-frame filter
    lets the gap go back."""
    rng = np.random.default_rng(seed)
    s = 0.9 + 0.002 * rng.standard_normal(1000)
    s[300:348] -= 0.05
    s[348:380] -= 0.001
    s[380:440] -= 0.003
    default = ~decide(1 - s, "pcc", Config(threshold="mad")).threshold.is_clean
    two = ~decide(1 - s, "pcc", Config(threshold="mad", median_k=(21, 101))).threshold.is_clean
    assert default[302:346].all() and two[302:346].all()
    assert default[350:378].mean() < 0.35 < 0.5 < two[350:378].mean()


def test_decide_with_one_filter_length_is_the_published_pipeline():
    s = _series(300)
    s[100:160] -= 0.1
    d = decide(1 - s, "pcc", Config(median_k=(101,), threshold="paper"))
    med = ndimage.median_filter(s, size=101, mode="reflect")  # PCC_med, by an independent filter
    np.testing.assert_allclose(d.score_med, 1 - med, atol=1e-12)
    assert 1 - d.threshold.delta == pytest.approx(np.median(med) - 0.05)
    np.testing.assert_array_equal(d.threshold.is_clean, med >= np.median(med) - 0.05)


def test_below_median_z_is_widened_less_by_the_corrupted_share():
    """The trimming's unit (item 21): the same clean frames with 0, 9% or 20% corrupted ones far
    above them. The whole sequence's MAD grows with the corrupted share, so a fixed cut in its units
    leaves out a different share of the clean frames; the spread below the median grows too (the
    median itself moves up) but by about half as much."""
    clean = np.random.default_rng(0).standard_normal(8000)
    mad, below = [], []
    for share in (0.0, 0.09, 0.2):
        n_dirty = round(share * len(clean) / (1 - share))
        s = np.concatenate([clean, 8.0 + np.random.default_rng(1).standard_normal(n_dirty)])
        z = robust_z(s)
        mad.append(1.4826 * np.median(np.abs(s - np.median(s))))
        below.append(mad[-1] * z[0] / below_median_z(z)[0])  # the unit in the data's own terms
    assert mad[2] / mad[1] > 1.2 and below[2] / below[1] < 1.13
    assert mad[1] / mad[0] > 1.13 and below[1] / below[0] < 1.12
    z = robust_z(clean)  # no corruption: about the robust z itself
    np.testing.assert_allclose(below_median_z(z), z, rtol=0.05)
    assert below_median_z(np.array([0.0, 0.0, 3.0])).tolist() == [0.0, 0.0, 3.0]  # nothing below: as is


def test_paper_view_is_the_published_rule_whatever_the_runs_settings():
    """Shown beside the tool's own decision: k = 101 and the 0.05 margin, not the run's filter or
    margin; a run of 60 frames 0.1 below survives that filter and is removed, nothing else."""
    s = _series(600)
    s[200:260] -= 0.1
    d = paper_view(1 - s, "reflect")
    med = ndimage.median_filter(s, size=101, mode="reflect")  # PCC_med, by an independent filter
    assert d.ks == (101,) and d.score == "pcc" and d.threshold.rule == "paper: median(pcc_med) + 0.05"
    assert 1 - d.threshold.delta == pytest.approx(np.median(med) - 0.05)
    np.testing.assert_array_equal(d.is_clean, med >= np.median(med) - 0.05)
    assert d.segments.tolist() == [[200, 260]]
    short = paper_view(s[:50], "reflect")  # a sequence shorter than the filter shrinks it
    assert short.ks == (49,)


def test_segments_are_runs_of_removed_frames_with_their_peak():
    is_clean = np.array([1, 0, 0, 1, 1, 0, 1, 0, 0, 0], bool)
    stat = np.array([0.9, 0.5, 0.4, 0.9, 0.9, 0.6, 0.9, 0.3, 0.2, 0.35])
    segs, peaks = removed_segments(is_clean, stat)
    assert segs.tolist() == [[1, 3], [5, 6], [7, 10]] and segs.dtype == np.int64
    np.testing.assert_allclose(peaks, [0.5, 0.6, 0.35])
    segs, peaks = removed_segments(~is_clean, stat)  # the complement
    assert segs.tolist() == [[0, 1], [3, 5], [6, 7]]
    np.testing.assert_allclose(peaks, [0.9, 0.9, 0.9])
    empty, _ = removed_segments(np.ones(4, bool), np.zeros(4))
    assert empty.shape == (0, 2)


def test_paper_rule_that_removes_nothing_says_so():
    s = _series(400)
    s[100:200] -= 0.01  # dirtier, but far less than the 0.05 margin
    d = decide(1 - s, "pcc", Config(median_k=(21,), threshold="paper"))
    assert d.threshold.is_clean.all() and len(d.segments) == 0
    assert len(d.warnings) == 1 and "removed no frames" in d.warnings[0] and "robust SDs" in d.warnings[0]
    assert format_segments(d) == ["removed segments: none"]


def test_segments_list_where_they_are_and_how_much_training_saw():
    s = _series(400)
    s[100:160] -= 0.05  # a dip in PCC: a dirtier run
    d = decide(1 - s, "pcc", Config(threshold="mad", median_k=(5,), stand_out=0))
    assert not d.threshold.is_clean[105:155].any()
    # a dip of 5 noise SDs on a wave peaks at z ~4: the run is told it may be only the tail
    assert [w.split(" (")[0] for w in d.warnings] == ["no frame stands out far from the rest"]
    lines = format_segments(d)
    assert "removed segments: 1" in lines[0] and "100" in lines[1] and "trained on" not in lines[1]
    seen = np.arange(400) < 130  # the network trained on the first 30 frames of the segment
    a, b = d.segments[0]
    share = np.mean(seen[a:b])
    assert 0 < share < 1 and format_segments(d, trained_on=seen)[1] == f"{lines[1]}, {share:.0%} trained on"


def test_nothing_is_removed_from_pure_noise_and_the_run_says_so():
    """A robust z of Gaussian noise has the normal tail: a cut at 2.25 alone removes its share
    (1 - Phi(2.25) = 1.22%) though nothing is wrong. No frame of 20,000 reaches z 6 (the chance is
    2e-5): with --stand-out 6 nothing stands out, nothing is removed, and the run says so."""
    from scipy.stats import norm

    s = np.random.default_rng(3).standard_normal(20_000)
    cut_alone = decide(s, "x", Config(threshold="mad", median_k=(1,), stand_out=0))
    assert (~cut_alone.is_clean).mean() == pytest.approx(norm.sf(2.25), abs=0.002)
    d = decide(s, "x", Config(threshold="mad", median_k=(1,), stand_out=6.0))
    assert d.is_clean.all() and len(d.segments) == 0
    top = (s.max() - np.median(s)) / (1.4826 * np.median(np.abs(s - np.median(s))))
    assert 3.5 < top < 4.5  # the largest of 20,000 normal draws
    assert d.warnings == [f"nothing stands out: the highest robust z is {top:.2f}, not above --stand-out 6, "
                          "so no frame was removed"]  # fmt: skip


def test_a_run_that_stands_out_is_cut_as_before_with_its_tail():
    """A run far out (z ~ 10) is enough: the guard stays out of the way, and the cut at 2.25
    removes that run and the noise's own tail exactly as with the guard off."""
    s = np.random.default_rng(4).standard_normal(5_000)
    s[2_000:2_040] += 10.0
    on = decide(s, "x", Config(threshold="mad", median_k=(1,), stand_out=6.0))
    off = decide(s, "x", Config(threshold="mad", median_k=(1,), stand_out=0))
    np.testing.assert_array_equal(on.is_clean, off.is_clean)
    assert not on.is_clean[2_000:2_040].any() and on.warnings == []
    contamination = decide(s, "x", Config(threshold="contamination", contamination=0.01, median_k=(1,)))
    assert (~contamination.is_clean).sum() == 50  # only the mad rule has the guard


def test_a_cut_without_the_guard_says_when_nothing_stands_out_and_keeps_its_decision():
    """With --stand-out off (the default) the decision is the cut's; the run is only told, in one
    line, that no frame reached z 6, so what went may be the tail (here: pure noise, all of it)."""
    s = np.random.default_rng(3).standard_normal(20_000)
    d = decide(s, "x", Config(threshold="mad", median_k=(1,)))
    n = int((~d.is_clean).sum())
    assert n == int((d.stat > 2.25).sum()) > 0
    assert len(d.warnings) == 1 and f"the {n} removed frame(s) may be only the tail" in d.warnings[0]
    s[:50] += 20.0  # a run far out: no such line
    assert decide(s, "x", Config(threshold="mad", median_k=(1,))).warnings == []
