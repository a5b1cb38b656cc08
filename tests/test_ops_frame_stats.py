"""frame_stats: SSIM parity with scikit-image, Laplacian statistics with scipy, edge cases."""

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


def test_laplacian_columns_match_scipy(frame_stats):
    x, y = _pair(dtype=torch.float64)
    got = frame_stats(x, y).numpy()
    for i in range(x.shape[0]):
        gx, gy = x[i].mean(0).numpy(), y[i].mean(0).numpy()
        lx = ndimage.laplace(gx)[1:-1, 1:-1]
        ly = ndimage.laplace(gy)[1:-1, 1:-1]
        lr = ndimage.laplace(gx - gy)[1:-1, 1:-1]
        np.testing.assert_allclose(got[i, COL["lap_x"]], (lx**2).mean(), rtol=1e-10)
        np.testing.assert_allclose(got[i, COL["lap_y"]], (ly**2).mean(), rtol=1e-10)
        np.testing.assert_allclose(got[i, COL["lap_mean_x"]], lx.mean(), atol=1e-12)
        np.testing.assert_allclose(got[i, COL["lap_r"]], (lr**2).mean(), rtol=1e-10)


def test_blur_lowers_detail_energy(frame_stats):
    x, _ = _pair(b=1, h=48, w=48, dtype=torch.float64)
    blurred = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    stats = frame_stats(torch.cat([x, blurred]), torch.cat([x, x]))
    assert stats[1, COL["lap_x"]] < 0.2 * stats[0, COL["lap_x"]]
    assert stats[0, COL["lap_r"]] == 0.0 and stats[1, COL["lap_r"]] > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precision_inputs(frame_stats, dtype):
    x, y = _pair(dtype=dtype)
    got = frame_stats(x, y)
    want = reference.frame_stats(x.double(), y.double())
    assert got.dtype == torch.float64 and got.shape == (3, 5)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_non_contiguous_and_constant(frame_stats):
    x = torch.rand(2, 20, 20, 3).permute(0, 3, 1, 2)
    y = torch.full_like(x, 0.5)
    got = frame_stats(x, y)
    torch.testing.assert_close(
        got, reference.frame_stats(x.contiguous(), y.contiguous()), rtol=1e-6, atol=1e-9
    )
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
