"""CUDA kernels (csrc/cuda/*.cu) against the pure-PyTorch reference ops: pcc_mse, the scoring
reductions, opcheck, torch.compile and device handling (nn_ref: test_ops_cuda_nn_ref.py).

Runs only where the compiled extension has CUDA kernels and a GPU is visible; everywhere else
.ci/cuda_check.sh at least proves that the kernels compile and register.
"""

from __future__ import annotations

import pytest
import torch
from cuda_helpers import CUDA, HALVES, NEEDS_CUDA, _exact_nn, _gen, _pair, _pcc_mse_want, _quantized

from cae_fast import ops
from cae_fast.ops import reference

pytestmark = NEEDS_CUDA


# ---------------------------------------------------------------------------------------------
# pcc_mse
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        (6, 3, 40, 36),  # a few blocks per image
        (5000, 1, 8, 8),  # many tiny images: one chunk each, finished in the first kernel
        (2, 3, 512, 512),  # few huge images: many chunks per image, merged by the second kernel
        (3, 1),  # one element per image
        (1, 7, 13),
    ],
)
def test_pcc_mse_random_images_match_reference(shape):
    x, y = _pair(shape, seed=sum(shape))
    pcc, mse = torch.ops.cae_fast.pcc_mse(x, y)
    want_pcc, want_mse = _pcc_mse_want(x, y)
    assert pcc.device.type == CUDA and pcc.dtype == torch.float32 and pcc.shape == (shape[0],)
    assert mse.device.type == CUDA and mse.dtype == torch.float32 and mse.shape == (shape[0],)
    torch.testing.assert_close(pcc.cpu(), want_pcc, atol=1e-6, rtol=0)
    torch.testing.assert_close(mse.cpu(), want_mse, rtol=1e-6, atol=0)


def test_pcc_mse_float64_in_float64_out():
    x, y = _pair((4, 3, 64, 64), seed=1, dtype=torch.float64)
    pcc, mse = torch.ops.cae_fast.pcc_mse(x, y)
    want_pcc, want_mse = _pcc_mse_want(x, y)
    assert pcc.dtype == torch.float64 and mse.dtype == torch.float64
    torch.testing.assert_close(pcc.cpu(), want_pcc, atol=1e-12, rtol=0)
    torch.testing.assert_close(mse.cpu(), want_mse, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pcc_mse_nearly_constant_images_stay_accurate(dtype):
    # mean 0.9, std 1e-3: without the per-image pivot, sums of squares cancel to noise here.
    g = _gen(2)
    x = 0.9 + 1e-3 * torch.randn(4, 3, 224, 224, generator=g, dtype=torch.float64)
    y = 0.9 + 1e-3 * torch.randn(4, 3, 224, 224, generator=g, dtype=torch.float64) + 0.5 * (x - 0.9)
    x, y = x.to(dtype).to(CUDA), y.to(dtype).to(CUDA)
    pcc, mse = torch.ops.cae_fast.pcc_mse(x, y)
    want_pcc, want_mse = _pcc_mse_want(x, y)
    torch.testing.assert_close(pcc.cpu(), want_pcc, atol=1e-6, rtol=0)
    torch.testing.assert_close(mse.cpu(), want_mse, rtol=1e-5, atol=0)
    assert (pcc > 0.3).all() and (pcc < 0.6).all()  # about 0.45 by construction


def test_pcc_mse_constant_images_score_zero_not_nan():
    x = torch.full((3, 1, 64, 64), 0.7, device=CUDA)
    y = torch.rand(3, 1, 64, 64, generator=_gen(3)).to(CUDA)
    y[1] = 0.2  # both constant
    pcc, mse = torch.ops.cae_fast.pcc_mse(x, y)
    assert torch.equal(pcc.cpu(), torch.full((3,), reference.PCC_OF_CONSTANT))
    want_mse = ((x.double() - y.double()) ** 2).flatten(1).mean(1).float()
    torch.testing.assert_close(mse.cpu(), want_mse.cpu(), rtol=1e-6, atol=0)
    # constant y against a varying x, and a huge constant image split over many chunks
    pcc, _ = torch.ops.cae_fast.pcc_mse(y, x)
    assert torch.equal(pcc.cpu(), torch.zeros(3))
    big = torch.full((2, 3, 512, 512), 0.9, device=CUDA)
    pcc, mse = torch.ops.cae_fast.pcc_mse(big, big)
    assert torch.equal(pcc.cpu(), torch.zeros(2)) and torch.equal(mse.cpu(), torch.zeros(2))


def test_pcc_mse_identical_and_negated_images():
    x, _ = _pair((4, 3, 50, 50), seed=4)
    pcc, mse = torch.ops.cae_fast.pcc_mse(x, x)
    torch.testing.assert_close(pcc.cpu(), torch.ones(4), atol=1e-7, rtol=0)
    assert torch.equal(mse.cpu(), torch.zeros(4))
    pcc, _ = torch.ops.cae_fast.pcc_mse(x, 1.0 - x)
    torch.testing.assert_close(pcc.cpu(), -torch.ones(4), atol=1e-7, rtol=0)
    assert (pcc >= -1).all()  # clamped, never below -1


@pytest.mark.parametrize("dtype", HALVES)
def test_pcc_mse_half_inputs(dtype):
    x, y = _pair((5, 3, 64, 48), seed=5, dtype=dtype)
    pcc, mse = torch.ops.cae_fast.pcc_mse(x, y)
    assert pcc.dtype == torch.float32 and mse.dtype == torch.float32
    # Same rounded inputs on both sides, so only the summation order differs.
    want_pcc, want_mse = _pcc_mse_want(x, y)
    torch.testing.assert_close(pcc.cpu(), want_pcc, atol=1e-6, rtol=0)
    torch.testing.assert_close(mse.cpu(), want_mse, rtol=1e-5, atol=0)


def test_pcc_mse_non_contiguous_inputs():
    x, y = _pair((4, 3, 96, 80), seed=6)
    xs, ys = x[:, :, ::2, 1::3], y.transpose(2, 3).contiguous().transpose(2, 3)[:, :, ::2, 1::3]
    assert not xs.is_contiguous() and not ys.is_contiguous()
    pcc, mse = torch.ops.cae_fast.pcc_mse(xs, ys)
    want = torch.ops.cae_fast.pcc_mse(xs.contiguous(), ys.contiguous())
    assert torch.equal(pcc, want[0]) and torch.equal(mse, want[1])
    cl = x.contiguous(memory_format=torch.channels_last)
    got = torch.ops.cae_fast.pcc_mse(cl, y)
    assert torch.equal(got[0], torch.ops.cae_fast.pcc_mse(x, y)[0])


def test_pcc_mse_is_deterministic_and_matches_dispatch():
    x, y = _pair((3, 3, 256, 256), seed=7)
    a = torch.ops.cae_fast.pcc_mse(x, y)
    b = torch.ops.cae_fast.pcc_mse(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # no atomics: bitwise repeatable
    c = ops.pcc_mse(x, y)
    assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])


def test_pcc_mse_agrees_with_cpu_kernel():
    x, y = _pair((3, 3, 100, 100), seed=8)
    gpu = torch.ops.cae_fast.pcc_mse(x, y)
    cpu = torch.ops.cae_fast.pcc_mse(x.cpu(), y.cpu())
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], rtol=1e-6, atol=0)


# ---------------------------------------------------------------------------------------------
# every op: schema, fake impls, autograd registration, torch.compile
# ---------------------------------------------------------------------------------------------


def test_opcheck_on_cuda():
    # Schema, fake (meta) impls and autograd registration agree with the CUDA kernels' outputs.
    x, y = _pair((3, 2, 5, 5), seed=33)
    torch.library.opcheck(torch.ops.cae_fast.pcc_mse.default, (x, y))
    torch.library.opcheck(torch.ops.cae_fast.pcc_mse.default, (x.double(), y.double()))
    torch.library.opcheck(torch.ops.cae_fast.pcc_mse.default, (x.half(), y.half()))
    g = _gen(34)
    z = torch.randn(8, 4, generator=g).to(CUDA).requires_grad_(True)
    h = torch.randn(16, 4, generator=g).to(CUDA)
    torch.library.opcheck(torch.ops.cae_fast.nn_ref.default, (z, h, None))
    torch.library.opcheck(torch.ops.cae_fast.nn_ref.default, (z, h, torch.arange(8, device=CUDA)))
    grad = torch.rand(8, generator=g).to(CUDA)
    idx = torch.randint(0, 16, (8,), generator=g).to(CUDA)
    torch.library.opcheck(torch.ops.cae_fast.nn_ref_backward.default, (grad, z.detach(), h, idx))


def test_torch_compile_on_cuda():
    def loss(z, h, x, y):
        d2, _ = ops.nn_ref(z, h)
        pcc, mse = ops.pcc_mse(x, y)
        return d2.mean() + mse.mean() - pcc.mean()

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    g = _gen(35)
    z = torch.randn(8, 4, generator=g).to(CUDA).requires_grad_(True)
    h = torch.randn(16, 4, generator=g).to(CUDA)
    x, y = _pair((8, 3, 4, 4), seed=36)
    out = compiled(z, h, x, y)
    out.backward()
    torch.testing.assert_close(out, loss(z, h, x, y))
    assert z.grad is not None and torch.isfinite(z.grad).all()


# ---------------------------------------------------------------------------------------------
# frame_stats, patch_mse, patch_detail (the per-frame and per-tile scoring reductions)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3, 40, 36), (2, 1, 9, 7), (3, 3, 96, 96)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *HALVES])
def test_scoring_reductions_match_reference(shape, dtype):
    x, y = _pair(shape, seed=sum(shape), dtype=dtype)
    p = max(1, shape[-1] // 8)
    tol = {"rtol": 1e-9, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(ops.frame_stats(x, y).cpu(), reference.frame_stats(x.cpu(), y.cpu()), **tol)
    torch.testing.assert_close(ops.patch_mse(x, y, p).cpu(), reference.patch_mse(x.cpu(), y.cpu(), p), **tol)
    got = ops.patch_detail(x, y, p)
    assert got.device.type == "cuda" and got.shape == (shape[0], 2, shape[2] // p, shape[3] // p)
    torch.testing.assert_close(got.cpu(), reference.patch_detail(x.cpu(), y.cpu(), p), **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALVES])
def test_scoring_reductions_cpu_and_cuda_agree(dtype):
    # One expression per value (csrc/common/): only the summation order across threads differs,
    # so the compiled CPU and CUDA kernels agree to double rounding, whatever the input dtype.
    x, y = _pair((3, 3, 50, 47), seed=38, dtype=dtype)
    xc, yc = x.cpu(), y.cpu()
    tol = {"rtol": 1e-12, "atol": 1e-14}
    torch.testing.assert_close(ops.frame_stats(x, y).cpu(), ops.frame_stats(xc, yc), **tol)
    if dtype == torch.float64:
        torch.testing.assert_close(ops.patch_mse(x, y, 7).cpu(), ops.patch_mse(xc, yc, 7), **tol)
        torch.testing.assert_close(ops.patch_detail(x, y, 7).cpu(), ops.patch_detail(xc, yc, 7), **tol)
    else:  # float32 output: the same float, or one rounding step apart
        torch.testing.assert_close(ops.patch_mse(x, y, 7).cpu(), ops.patch_mse(xc, yc, 7), rtol=2e-7, atol=0)
        torch.testing.assert_close(
            ops.patch_detail(x, y, 7).cpu(), ops.patch_detail(xc, yc, 7), rtol=2e-7, atol=1e-12
        )


def test_opcheck_scoring_reductions_on_cuda():
    x, y = _pair((2, 3, 9, 8), seed=37)
    torch.library.opcheck(torch.ops.cae_fast.frame_stats.default, (x, y))
    torch.library.opcheck(torch.ops.cae_fast.patch_mse.default, (x, y, 4))
    torch.library.opcheck(torch.ops.cae_fast.patch_detail.default, (x, y, 4))


# ---------------------------------------------------------------------------------------------
# device handling
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device_runs_there():
    dev = "cuda:1"
    x, y = (t.to(dev) for t in _pair((3, 1, 40, 40), seed=40))
    pcc, _ = torch.ops.cae_fast.pcc_mse(x, y)
    assert pcc.device == torch.device(dev)
    torch.testing.assert_close(pcc.cpu(), _pcc_mse_want(x, y)[0], atol=1e-6, rtol=0)
    z, h = _quantized((20, 8), 41).to(dev), _quantized((500, 8), 42).to(dev)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    assert idx.device == torch.device(dev)
    assert torch.equal(idx.cpu(), _exact_nn(z, h)[1])
