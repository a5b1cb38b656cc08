"""patch_detail: the per-tile detail maps, against a float64 numpy oracle."""

import numpy as np
import pytest
import torch

from cae_fast import ops
from cae_fast.ops import reference

IMPLS = {"dispatch": ops.patch_detail, "reference": reference.patch_detail}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def patch_detail(request):
    return IMPLS[request.param]


def _oracle(x: torch.Tensor, y: torch.Tensor, p: int) -> np.ndarray:
    """Pixel by pixel: each interior pixel's squared gray Laplacian goes to the tile it lies in."""
    b, _, h, w = x.shape
    gh, gw = h // p, w // p
    out = np.zeros((b, 2, gh, gw))
    for k, t in enumerate((x, y)):
        g = t.double().numpy().mean(axis=1)
        for n in range(b):
            total, count = np.zeros((gh, gw)), np.zeros((gh, gw))
            for i in range(1, h - 1):
                for j in range(1, w - 1):
                    if i // p < gh and j // p < gw:
                        lap = g[n, i - 1, j] + g[n, i + 1, j] + g[n, i, j - 1] + g[n, i, j + 1]
                        lap -= 4 * g[n, i, j]
                        total[i // p, j // p] += lap * lap
                        count[i // p, j // p] += 1
            out[n, k] = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return out


@pytest.mark.parametrize(
    "shape, p",
    [((3, 3, 16, 16), 8), ((2, 3, 20, 22), 8), ((1, 1, 7, 9), 3), ((2, 3, 5, 6), 1), ((1, 2, 9, 9), 9)],
)
def test_matches_numpy(patch_detail, shape, p):
    g = torch.Generator().manual_seed(sum(shape) + p)
    x, y = torch.rand(*shape, generator=g), torch.rand(*shape, generator=g)
    got = patch_detail(x, y, p)
    assert got.dtype == torch.float32 and got.shape == (shape[0], 2, shape[2] // p, shape[3] // p)
    np.testing.assert_allclose(got.numpy(), _oracle(x, y, p), rtol=1e-5, atol=1e-7)


def test_a_blurred_tile_loses_detail_and_a_spot_adds_it(patch_detail):
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 32, 32, generator=g)
    y = x.clone()
    y[:, :, 8:16, 8:16] = y[:, :, 8:16, 8:16].mean()  # flat: no detail left inside the tile
    y[:, :, 26, 26] += 1.0  # a bright speck in another tile
    got = patch_detail(x, y, 8)[0]
    torch.testing.assert_close(got[0, 0, 0], got[1, 0, 0])  # untouched tile: same detail in x and y
    assert got[1, 1, 1] < 0.2 * got[0, 1, 1]
    assert got[1, 3, 3] > 1.5 * got[0, 3, 3]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_dtypes_and_non_contiguous(patch_detail, dtype):
    x = torch.rand(2, 12, 12, 3).permute(0, 3, 1, 2).to(dtype)
    y = torch.rand(2, 3, 12, 12).to(dtype)
    got = patch_detail(x, y, 4)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(got.double().numpy(), _oracle(x, y, 4), rtol=rtol)


@pytest.mark.parametrize(
    "x, y, p, exc, msg",
    [
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 9), 4, ValueError, "same shape"),
        (torch.rand(2, 3, 8), torch.rand(2, 3, 8), 4, ValueError, r"\[B, C, H, W\]"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), 9, ValueError, "patch must be"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), 0, ValueError, "patch must be"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8).double(), 4, TypeError, "same dtype"),
    ],
)
def test_bad_arguments(patch_detail, x, y, p, exc, msg):
    with pytest.raises(exc, match=msg):
        patch_detail(x, y, p)
