"""patch_mse: the local error map, against a float64 numpy oracle."""

import numpy as np
import pytest
import torch

from cae_fast import ops
from cae_fast.ops import reference

IMPLS = {"dispatch": ops.patch_mse, "reference": reference.patch_mse}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def patch_mse(request):
    return IMPLS[request.param]


def _oracle(x: torch.Tensor, y: torch.Tensor, p: int) -> np.ndarray:
    r = (x.double().numpy() - y.double().numpy()) ** 2
    b, c, h, w = r.shape
    gh, gw = h // p, w // p
    r = r[:, :, : gh * p, : gw * p].reshape(b, c, gh, p, gw, p)
    return r.mean(axis=(1, 3, 5))


@pytest.mark.parametrize(
    "shape, p", [((3, 3, 16, 16), 8), ((2, 3, 20, 22), 8), ((1, 1, 7, 9), 3), ((2, 3, 5, 5), 1)]
)
def test_matches_numpy(patch_mse, shape, p):
    g = torch.Generator().manual_seed(sum(shape) + p)
    x, y = torch.rand(*shape, generator=g), torch.rand(*shape, generator=g)
    got = patch_mse(x, y, p)
    assert got.dtype == torch.float32 and got.shape == (shape[0], shape[2] // p, shape[3] // p)
    np.testing.assert_allclose(got.numpy(), _oracle(x, y, p), rtol=1e-6)


def test_localises_a_corrupted_tile(patch_mse):
    x = torch.rand(1, 3, 32, 32)
    y = x.clone()
    y[:, :, 8:16, 24:32] += 0.5
    got = patch_mse(x, y, 8)[0]
    assert got[1, 3] == pytest.approx(0.25, rel=1e-6)
    got[1, 3] = 0
    assert torch.all(got == 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_dtypes_and_non_contiguous(patch_mse, dtype):
    x = torch.rand(2, 12, 12, 3).permute(0, 3, 1, 2).to(dtype)
    y = torch.rand(2, 3, 12, 12).to(dtype)
    got = patch_mse(x, y, 4)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    np.testing.assert_allclose(got.double().numpy(), _oracle(x, y, 4), rtol=1e-6)


@pytest.mark.parametrize(
    "x, y, p, exc, msg",
    [
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 9), 4, ValueError, "same shape"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), 9, ValueError, "patch must be"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), 0, ValueError, "patch must be"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8).double(), 4, TypeError, "same dtype"),
    ],
)
def test_bad_arguments(patch_mse, x, y, p, exc, msg):
    with pytest.raises(exc, match=msg):
        patch_mse(x, y, p)
