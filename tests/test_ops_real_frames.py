"""The ops on real photographs (scikit-image ships them) with a painted-on mud splat: against
scikit-image, scipy and numpy, and where the splat is."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data
from skimage.metrics import structural_similarity

from cae_fast import ops
from cae_fast.ops import reference

SIZE, PATCH = 192, 32
# The splat: a flat brown disc, centre (row, col) and radius in pixels; it covers tile (2, 3) whole.
CENTRE, RADIUS = (80, 112), 30
COL = {name: i for i, name in enumerate(ops.FRAME_STATS)}


def _photos() -> torch.Tensor:
    """Three photographs, centre-cropped to SIZE x SIZE, as [3, 3, SIZE, SIZE] floats in [0, 1]."""
    out = []
    for img in (data.astronaut(), data.chelsea(), data.coffee()):
        h, w = img.shape[:2]
        top, left = (h - SIZE) // 2, (w - SIZE) // 2
        out.append(img[top : top + SIZE, left : left + SIZE].transpose(2, 0, 1) / 255.0)
    return torch.from_numpy(np.stack(out)).float()


def _splat(frames: torch.Tensor) -> torch.Tensor:
    i, j = np.indices((SIZE, SIZE))
    disc = torch.from_numpy((i - CENTRE[0]) ** 2 + (j - CENTRE[1]) ** 2 <= RADIUS**2)
    mud = torch.tensor([0.35, 0.25, 0.15]).view(1, 3, 1, 1).expand_as(frames)
    return torch.where(disc, mud, frames)


CLEAN = _photos()
DIRTY = _splat(CLEAN)
IMPLS = {
    name: {op: getattr(module, op) for op in ("frame_stats", "patch_mse", "patch_detail", "pcc_mse")}
    for name, module in (("dispatch", ops), ("reference", reference))
}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def impl(request):
    return IMPLS[request.param]


def test_frame_stats_match_skimage_and_scipy(impl):
    got = impl["frame_stats"](DIRTY, CLEAN).numpy()
    for n, (a, b) in enumerate(zip(DIRTY.double().numpy(), CLEAN.double().numpy(), strict=True)):
        ssim = structural_similarity(a, b, channel_axis=0, data_range=1.0)
        lx = ndimage.laplace(a.mean(0))[1:-1, 1:-1]
        ly = ndimage.laplace(b.mean(0))[1:-1, 1:-1]
        np.testing.assert_allclose(got[n, COL["ssim"]], ssim, atol=1e-9)
        np.testing.assert_allclose(got[n, COL["lap_x"]], (lx**2).mean(), rtol=1e-9)
        np.testing.assert_allclose(got[n, COL["lap_y"]], (ly**2).mean(), rtol=1e-9)
        np.testing.assert_allclose(got[n, COL["lap_mean_x"]], lx.mean(), atol=1e-12)
    assert (got[:, COL["ssim"]] < 1.0).all()


def test_pcc_mse_match_numpy(impl):
    pcc, mse = impl["pcc_mse"](DIRTY, CLEAN)
    for n in range(3):
        a, b = DIRTY[n].double().numpy().ravel(), CLEAN[n].double().numpy().ravel()
        assert pcc[n].item() == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-6)
        assert mse[n].item() == pytest.approx(((a - b) ** 2).mean(), rel=1e-5)


def test_patch_mse_finds_the_splat(impl):
    err = impl["patch_mse"](DIRTY, CLEAN, PATCH)
    gi, gj = CENTRE[0] // PATCH, CENTRE[1] // PATCH
    touched = torch.zeros(SIZE // PATCH, SIZE // PATCH, dtype=torch.bool)
    touched[(CENTRE[0] - RADIUS) // PATCH : (CENTRE[0] + RADIUS) // PATCH + 1,
            (CENTRE[1] - RADIUS) // PATCH : (CENTRE[1] + RADIUS) // PATCH + 1] = True  # fmt: skip
    for n in range(3):
        assert (err[n][~touched] == 0).all()  # untouched tiles: no residual at all
        assert err[n][gi, gj] > 0
        assert err[n].flatten().argmax().item() in torch.nonzero(touched.flatten()).flatten().tolist()


def test_patch_detail_sees_the_splat_flatten_its_tile(impl):
    det = impl["patch_detail"](DIRTY, CLEAN, PATCH)
    gi, gj = CENTRE[0] // PATCH, CENTRE[1] // PATCH
    inside = det[:, 0, gi, gj]  # the splatted frame's tile, inside the disc
    np.testing.assert_allclose(inside.numpy(), 0.0, atol=1e-12)
    assert (det[:, 1, gi, gj] > 1e-4).all()  # the photograph has detail there
    torch.testing.assert_close(det[:, 0, 5, 0], det[:, 1, 5, 0])  # a far tile: unchanged
