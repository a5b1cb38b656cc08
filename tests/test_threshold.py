import numpy as np
import pytest

from cae_fast import config
from cae_fast.config import Config
from cae_fast.threshold import THRESHOLDS, apply_threshold, paper_rule


def test_paper_constants():
    assert (config.LATENT_DIM, config.IMAGE_SIZE, config.M_REF, config.LAMBDA_REF) == (256, 224, 1024, 1.0)
    assert (config.LR, config.EPOCHS, config.BATCH_SIZE, config.MEDIAN_K) == (5e-4, 100, 32, 101)
    assert config.DELTA_MARGIN == 0.05


def test_paper_rule_is_median_minus_margin():
    pcc_med = np.array([0.9, 0.95, 0.8, 0.99, 0.7, 0.93], np.float32)
    t = paper_rule(pcc_med, 0.05)
    assert t.delta == pytest.approx(float(np.median(pcc_med)) - 0.05)
    np.testing.assert_array_equal(t.is_clean, pcc_med >= t.delta)
    assert t.is_clean.tolist() == [True, True, False, True, False, True]


def test_frame_exactly_at_delta_is_clean():
    pcc_med = np.array([0.5, 0.5, 0.5])
    assert paper_rule(pcc_med, 0.0).is_clean.all()


def test_registry_uses_config_margin():
    pcc_med = np.linspace(0, 1, 11)
    t = apply_threshold("paper", pcc_med, Config(delta_margin=0.2))
    assert t.delta == pytest.approx(0.3)
    assert "paper" in THRESHOLDS
    with pytest.raises(ValueError, match="unknown threshold"):
        apply_threshold("nope", pcc_med, Config())
