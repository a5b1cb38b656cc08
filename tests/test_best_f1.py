"""The best-f1 cut: the F1 maximum over every possible cut, as scikit-learn scores it, applied in
the score's own units by the ``best-f1`` threshold rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from cae_fast.config import Config
from cae_fast.decide.rules import best_f1_cut, decide

DIRT = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.4, 0.05, 0.7, 0.3, 0.6, 0.4])
LABELS = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0])


def _brute_force(dirt, labels) -> float:
    """The best F1 over all cuts: flag every frame at or above each distinct value, or none."""
    return max(f1_score(labels, dirt >= v, zero_division=0) for v in [*np.unique(dirt), np.inf])


def test_cut_is_the_brute_force_f1_argmax_and_sklearn_agrees_at_it():
    cut, f1 = best_f1_cut(DIRT, LABELS)
    assert f1 == pytest.approx(_brute_force(DIRT, LABELS))
    assert f1_score(LABELS, DIRT > cut) == pytest.approx(f1)
    # flagging down to 0.35 catches all 5 dirty frames among 8 flagged: F1 10/13; the cut lies
    # midway between that value and the next one down, 0.3
    assert f1 == pytest.approx(10 / 13) and cut == pytest.approx(0.325)


def test_random_arrays_with_ties_match_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(50):
        labels = rng.integers(0, 2, 30)
        labels[:2] = (0, 1)
        dirt = rng.integers(0, 8, 30) + 2.0 * labels * rng.integers(0, 2, 30)  # many ties
        cut, f1 = best_f1_cut(dirt, labels)
        assert f1 == pytest.approx(_brute_force(dirt, labels))
        assert f1_score(labels, dirt > cut) == pytest.approx(f1)


def test_flag_everything_and_one_class_labels():
    dirt, labels = np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0])
    cut, f1 = best_f1_cut(dirt, labels)  # best: flag all (F1 0.8) over flagging 3 only (0)
    assert cut < 1.0 and f1 == pytest.approx(0.8)
    with pytest.raises(ValueError, match="both"):
        best_f1_cut(dirt, np.zeros(3))


@pytest.mark.parametrize("score", ["pcc", "mse"])
def test_the_rule_removes_what_is_dirtier_than_the_cut(score):
    raw = np.linspace(0.0, 1.0, 11)
    cfg = Config(data="x", score=score, median_k=(1,), threshold="best-f1", best_f1_cut=0.55)
    d = decide(raw, score, cfg)
    np.testing.assert_array_equal(~d.is_clean, raw > 0.55)
    assert d.threshold.rule.startswith("best-f1")
    with pytest.raises(ValueError, match="needs labels"):
        decide(raw, score, Config(data="x", score=score, median_k=(1,), threshold="best-f1"))
