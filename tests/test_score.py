import numpy as np
import pytest
import scipy.ndimage
import torch

from cae_fast import ops
from cae_fast.config import Config
from cae_fast.model.cae import CAE
from cae_fast.score.median import MEDIAN_MODES, effective_k, median_filter_1d
from cae_fast.score.terms import score_frames


@pytest.mark.parametrize("mode", MEDIAN_MODES)
@pytest.mark.parametrize("n,k", [(1, 1), (7, 1), (7, 3), (7, 7), (50, 5), (200, 101), (1000, 21)])
def test_median_filter_matches_scipy(mode, n, k):
    rng = np.random.default_rng(n * 31 + k)
    x = rng.normal(size=n).astype(np.float32)
    x[rng.integers(0, n, n // 5)] = 0.5  # ties
    expected = scipy.ndimage.median_filter(x, size=k, mode=mode, cval=0.25)
    got = median_filter_1d(x, k, mode, cval=0.25)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, expected)


def test_median_filter_chunked_long_signal(monkeypatch):
    import cae_fast.score.median as median

    monkeypatch.setattr(median, "_MEDIAN_ROWS", 97)  # many chunks, one ragged
    x = np.random.default_rng(1).random(1000)
    np.testing.assert_array_equal(median_filter_1d(x, 11), scipy.ndimage.median_filter(x, 11, mode="reflect"))


def test_median_filter_rejects_even_or_too_long():
    with pytest.raises(ValueError, match="odd"):
        median_filter_1d(np.zeros(10), 4)
    with pytest.raises(ValueError, match="exceeds"):
        median_filter_1d(np.zeros(3), 5)
    with pytest.raises(ValueError, match="mode"):
        median_filter_1d(np.zeros(10), 3, mode="bogus")


def test_effective_k_shrinks_to_largest_odd_with_warning():
    assert effective_k(500, 101) == 101
    assert effective_k(101, 101) == 101
    with pytest.warns(UserWarning, match="k = 49"):
        assert effective_k(50, 101) == 49
    with pytest.warns(UserWarning, match="k = 7"):
        assert effective_k(7, 101) == 7


def test_score_frames_equals_pcc_mse_of_reconstruction(tiny_frames):
    images, _ = tiny_frames
    torch.manual_seed(0)
    model = CAE(32, 16).eval()
    cfg = Config(score_batch=7)  # ragged batches
    scores = score_frames(model, images, cfg, torch.device("cpu"))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        pcc, mse = ops.pcc_mse(x, model(x)[0])
    assert scores["pcc"].dtype == np.float32 and scores["pcc"].shape == (len(images),)
    np.testing.assert_allclose(scores["pcc"], 1 - pcc.numpy(), rtol=0, atol=1e-6)  # higher = dirtier
    np.testing.assert_allclose(scores["mse"], mse.numpy(), rtol=1e-5, atol=1e-8)
