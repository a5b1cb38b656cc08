"""pcc_mse: parity with numpy in float64, accuracy where one-pass float sums cancel, edge cases."""

import numpy as np
import pytest
import torch

from cae_fast import ops
from cae_fast.ops import reference

IMPLS = {"dispatch": ops.pcc_mse, "reference": reference.pcc_mse}


def _numpy_pcc_mse(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    xs = x.double().reshape(x.shape[0], -1).numpy()
    ys = y.double().reshape(y.shape[0], -1).numpy()
    pcc = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(xs, ys, strict=True)])
    mse = ((xs - ys) ** 2).mean(1)
    return pcc, mse


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def pcc_mse(request):
    return IMPLS[request.param]


def test_random_images_match_numpy(pcc_mse):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 40, 36, generator=g)
    y = 0.6 * x + 0.4 * torch.rand(6, 3, 40, 36, generator=g)
    pcc, mse = pcc_mse(x, y)
    want_pcc, want_mse = _numpy_pcc_mse(x, y)
    assert pcc.dtype == torch.float32 and pcc.shape == (6,)
    np.testing.assert_allclose(pcc.double().numpy(), want_pcc, atol=1e-6, rtol=0)
    np.testing.assert_allclose(mse.double().numpy(), want_mse, rtol=1e-6)


def test_nearly_constant_images_stay_accurate(pcc_mse):
    # mean 0.9, std 1e-3: one-pass float32 sums of squares lose every significant digit here.
    g = torch.Generator().manual_seed(1)
    x = 0.9 + 1e-3 * torch.randn(4, 3, 224, 224, generator=g)
    y = 0.9 + 1e-3 * torch.randn(4, 3, 224, 224, generator=g) + 0.5 * (x - 0.9)
    pcc, mse = pcc_mse(x, y)
    want_pcc, want_mse = _numpy_pcc_mse(x, y)
    np.testing.assert_allclose(pcc.double().numpy(), want_pcc, atol=1e-6, rtol=0)
    np.testing.assert_allclose(mse.double().numpy(), want_mse, rtol=1e-5)
    # The naive one-pass float32 formula really does fail on this input (so the test has teeth).
    xf, yf = x.reshape(4, -1), y.reshape(4, -1)
    n = xf.shape[1]
    naive = (xf * yf).sum(1) / n - xf.mean(1) * yf.mean(1)
    naive = (
        naive
        / torch.sqrt((xf * xf).sum(1) / n - xf.mean(1) ** 2)
        / torch.sqrt((yf * yf).sum(1) / n - yf.mean(1) ** 2)
    )
    assert not np.allclose(naive.double().numpy(), want_pcc, atol=1e-3)


def test_float64_input_gives_float64(pcc_mse):
    x = torch.rand(3, 50, dtype=torch.float64)
    y = torch.rand(3, 50, dtype=torch.float64)
    pcc, mse = pcc_mse(x, y)
    assert pcc.dtype == torch.float64
    np.testing.assert_allclose(pcc.numpy(), _numpy_pcc_mse(x, y)[0], atol=1e-12)


def test_constant_image_is_defined_not_nan(pcc_mse):
    x = torch.rand(3, 3, 8, 8)
    y = x.clone()
    x[1] = 0.5  # constant input
    y[2] = 0.25  # constant reconstruction
    pcc, mse = pcc_mse(x, y)
    assert torch.isfinite(pcc).all()
    assert pcc[0] == pytest.approx(1.0, abs=1e-6)
    assert pcc[1] == reference.PCC_OF_CONSTANT and pcc[2] == reference.PCC_OF_CONSTANT
    assert mse[1] == pytest.approx(((x[1] - y[1]) ** 2).mean().item(), rel=1e-6)


def test_perfect_anticorrelation(pcc_mse):
    x = torch.rand(2, 100)
    pcc, _ = pcc_mse(x, 1.0 - x)
    np.testing.assert_allclose(pcc.numpy(), [-1.0, -1.0], atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_float_of_same_values(pcc_mse, dtype):
    x = torch.rand(5, 3, 16, 16).to(dtype)
    y = (0.7 * x.float() + 0.3 * torch.rand(5, 3, 16, 16)).to(dtype)
    pcc, mse = pcc_mse(x, y)
    want_pcc, want_mse = _numpy_pcc_mse(x.float(), y.float())
    assert pcc.dtype == torch.float32
    np.testing.assert_allclose(pcc.numpy(), want_pcc, atol=1e-6)
    np.testing.assert_allclose(mse.numpy(), want_mse, rtol=1e-5)


def test_non_contiguous_input(pcc_mse):
    base_x = torch.rand(4, 20, 20, 3)
    base_y = torch.rand(4, 20, 20, 3)
    x, y = base_x.permute(0, 3, 1, 2), base_y.permute(0, 3, 1, 2)  # NHWC viewed as NCHW
    assert not x.is_contiguous()
    pcc, mse = pcc_mse(x, y)
    want_pcc, want_mse = _numpy_pcc_mse(x.contiguous(), y.contiguous())
    np.testing.assert_allclose(pcc.numpy(), want_pcc, atol=1e-6)
    np.testing.assert_allclose(mse.numpy(), want_mse, rtol=1e-6)


def test_tiny_and_large_batches(pcc_mse):
    x, y = torch.rand(1, 2), torch.rand(1, 2)  # two elements: PCC is +-1
    assert abs(pcc_mse(x, y)[0].item()) == pytest.approx(1.0, abs=1e-6)
    x, y = torch.rand(5000, 7), torch.rand(5000, 7)  # many tiny images, odd length (tail path)
    pcc, mse = pcc_mse(x, y)
    want_pcc, want_mse = _numpy_pcc_mse(x, y)
    np.testing.assert_allclose(pcc.numpy(), want_pcc, atol=1e-6)
    np.testing.assert_allclose(mse.numpy(), want_mse, rtol=1e-6)


def test_one_image_split_across_chunks(pcc_mse):
    x = torch.rand(1, 3, 300, 301)  # larger than one CPU chunk, not a multiple of any block
    y = x.roll(1, dims=3)
    pcc, mse = pcc_mse(x, y)
    want_pcc, want_mse = _numpy_pcc_mse(x, y)
    np.testing.assert_allclose(pcc.numpy(), want_pcc, atol=1e-6)
    np.testing.assert_allclose(mse.numpy(), want_mse, rtol=1e-6)


@pytest.mark.parametrize(
    "x, y, exc, msg",
    [
        (torch.rand(2, 3), torch.rand(2, 4), ValueError, "same shape"),
        (torch.rand(0, 3), torch.rand(0, 3), ValueError, "empty"),
        (torch.rand(3), torch.rand(3), ValueError, "at least 2 dims"),
        (torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.int64), TypeError, "float16"),
        (torch.rand(2, 3), torch.rand(2, 3, dtype=torch.float64), TypeError, "same dtype"),
    ],
)
def test_bad_arguments_give_one_clear_error(pcc_mse, x, y, exc, msg):
    with pytest.raises(exc, match=msg):
        pcc_mse(x, y)
