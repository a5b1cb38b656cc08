"""patch_detail: the per-tile detail maps, against scipy's Laplacian and known answers."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from cae_fast import ops
from cae_fast.ops import reference

IMPLS = {"dispatch": ops.patch_detail, "reference": reference.patch_detail}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def patch_detail(request):
    return IMPLS[request.param]


def _oracle(x: torch.Tensor, y: torch.Tensor, p: int) -> np.ndarray:
    """scipy's Laplacian of the gray (channel-mean) image, averaged per tile over the pixels that
    have four neighbours in the frame (a tile with none is 0)."""
    b, _, h, w = x.shape
    gh, gw = h // p, w // p
    inside = np.zeros((h, w))
    inside[1:-1, 1:-1] = 1.0
    out = np.zeros((b, 2, gh, gw))
    for k, t in enumerate((x, y)):
        for n, frame in enumerate(t.double().numpy()):
            sq = ndimage.laplace(frame.mean(axis=0)) ** 2 * inside
            total = sq[: gh * p, : gw * p].reshape(gh, p, gw, p).sum(axis=(1, 3))
            count = inside[: gh * p, : gw * p].reshape(gh, p, gw, p).sum(axis=(1, 3))
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


def test_known_answers(patch_detail):
    # A 0/1 checkerboard's interior Laplacians are all +-4 (detail 16 in every tile); a ramp has none.
    i, j = np.indices((16, 16))
    board = torch.from_numpy(((i + j) % 2).astype(np.float32)).expand(1, 3, 16, 16)
    ramp = torch.from_numpy((0.01 * i + 0.02 * j).astype(np.float32)).expand(1, 3, 16, 16)
    got = patch_detail(board, ramp, 4)[0]
    np.testing.assert_allclose(got[0].numpy(), 16.0, rtol=1e-6)
    np.testing.assert_allclose(got[1].numpy(), 0.0, atol=1e-9)


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
