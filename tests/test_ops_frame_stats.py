"""frame_stats: SSIM against scikit-image, the Laplacian columns against scipy, known answers, edge cases."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from cae_fast import ops
from cae_fast.ops import reference

IMPLS = {"dispatch": ops.frame_stats, "reference": reference.frame_stats}
COL = {name: i for i, name in enumerate(ops.FRAME_STATS)}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def frame_stats(request):
    return IMPLS[request.param]


def _pair(b=3, c=3, h=29, w=34, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g, dtype=torch.float64)
    y = (0.6 * x + 0.4 * torch.rand(b, c, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def test_ssim_matches_skimage(frame_stats):
    x, y = _pair(dtype=torch.float64)
    got = frame_stats(x, y)[:, COL["ssim"]].numpy()
    want = [
        structural_similarity(a.numpy(), b.numpy(), channel_axis=0, data_range=1.0)
        for a, b in zip(x, y, strict=True)
    ]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_ssim_single_channel_and_identity(frame_stats):
    x, y = _pair(c=1, dtype=torch.float64)
    got = frame_stats(x, y)[:, COL["ssim"]].numpy()
    want = [
        structural_similarity(a[0].numpy(), b[0].numpy(), data_range=1.0) for a, b in zip(x, y, strict=True)
    ]
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(frame_stats(x, x)[:, COL["ssim"]].numpy(), 1.0, atol=1e-12)


def _oracle(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The columns from scikit-image (SSIM) and scipy (the Laplacian), frame by frame in float64."""
    out = []
    for a, b in zip(x.double().numpy(), y.double().numpy(), strict=True):
        ssim = structural_similarity(a, b, channel_axis=0, data_range=1.0)
        lx = ndimage.laplace(a.mean(0))[1:-1, 1:-1]
        ly = ndimage.laplace(b.mean(0))[1:-1, 1:-1]
        out.append([ssim, (lx**2).mean(), (ly**2).mean(), lx.mean()])
    return np.array(out)


def test_laplacian_columns_match_scipy(frame_stats):
    x, y = _pair(dtype=torch.float64)
    got = frame_stats(x, y).numpy()
    assert got.shape == (3, len(ops.FRAME_STATS))
    want = _oracle(x, y)
    for name in ("lap_x", "lap_y"):
        np.testing.assert_allclose(got[:, COL[name]], want[:, COL[name]], rtol=1e-10)
    np.testing.assert_allclose(got[:, COL["lap_mean_x"]], want[:, COL["lap_mean_x"]], atol=1e-12)


def test_known_answers(frame_stats):
    # A 0/1 checkerboard: every interior Laplacian is +-4, so lap_x = 16; a linear ramp has none.
    i, j = np.indices((12, 15))
    board = torch.from_numpy((i + j) % 2 == 0).double().expand(1, 3, 12, 15)
    ramp = torch.from_numpy(0.01 * i + 0.02 * j).expand(1, 3, 12, 15)
    # Two constant frames a and b: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01)^2.
    a = torch.full((1, 2, 9, 9), 0.3, dtype=torch.float64)
    b = torch.full((1, 2, 9, 9), 0.7, dtype=torch.float64)
    got = frame_stats(torch.cat([board, ramp]), torch.cat([ramp, ramp]))
    np.testing.assert_allclose(got[:, COL["lap_x"]].numpy(), [16.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(got[:, COL["lap_y"]].numpy(), [0.0, 0.0], atol=1e-12)
    n_plus = ((i + j)[1:-1, 1:-1] % 2 == 1).sum()  # interior pixels at 0: Laplacian +4
    assert got[0, COL["lap_mean_x"]].item() == pytest.approx((4 * n_plus - 4 * (130 - n_plus)) / 130)
    ssim = frame_stats(a, b)[0, COL["ssim"]].item()
    assert ssim == pytest.approx((2 * 0.21 + 1e-4) / (0.09 + 0.49 + 1e-4), rel=1e-12)


def test_blur_lowers_detail_energy(frame_stats):
    x, _ = _pair(b=1, h=48, w=48, dtype=torch.float64)
    blurred = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    stats = frame_stats(torch.cat([x, blurred]), torch.cat([x, x]))
    assert stats[1, COL["lap_x"]] < 0.2 * stats[0, COL["lap_x"]]
    assert stats[0, COL["lap_x"]] == stats[0, COL["lap_y"]] == stats[1, COL["lap_y"]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precision_inputs(frame_stats, dtype):
    # Computed in float64 from the values the low-precision tensors hold.
    x, y = _pair(dtype=dtype)
    got = frame_stats(x, y)
    assert got.dtype == torch.float64 and got.shape == (3, len(ops.FRAME_STATS))
    np.testing.assert_allclose(got.numpy(), _oracle(x, y), rtol=1e-6, atol=1e-9)


def test_non_contiguous_and_constant(frame_stats):
    x = torch.rand(2, 20, 20, 3).permute(0, 3, 1, 2)
    y = torch.full_like(x, 0.5)
    got = frame_stats(x, y)
    np.testing.assert_allclose(got.numpy(), _oracle(x, y), rtol=1e-6, atol=1e-9)
    assert torch.isfinite(got).all()
    assert (got[:, COL["lap_y"]] == 0).all()


@pytest.mark.parametrize(
    "x, y, exc, msg",
    [
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 9), ValueError, "same shape"),
        (torch.rand(3, 8, 8), torch.rand(3, 8, 8), ValueError, r"\[B, C, H, W\]"),
        (torch.rand(2, 3, 6, 8), torch.rand(2, 3, 6, 8), ValueError, "at least 7x7"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8).double(), TypeError, "same dtype"),
    ],
)
def test_bad_arguments(frame_stats, x, y, exc, msg):
    with pytest.raises(exc, match=msg):
        frame_stats(x, y)
