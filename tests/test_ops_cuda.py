"""CUDA kernels (csrc/cuda/*.cu) against the pure-PyTorch reference ops and exact brute force.

Runs only where the compiled extension has CUDA kernels and a GPU is visible; everywhere else
.ci/cuda_check.sh at least proves that the kernels compile and register.
"""

from __future__ import annotations

import pytest
import torch

from cae_fast import ops
from cae_fast.ops import reference

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or ops.backend() != "compiled-cuda",
    reason=(
        "needs a visible CUDA GPU and cae_fast._C built with its CUDA kernels "
        f"(cuda available: {torch.cuda.is_available()}, cae_fast backend: {ops.backend()})"
    ),
)

CUDA = "cuda"
HALVES = [torch.float16, torch.bfloat16]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# pcc_mse
# ---------------------------------------------------------------------------------------------


def _pcc_mse_want(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference, run on CPU copies of the very same (already rounded) values."""
    return reference.pcc_mse(x.cpu(), y.cpu())


def _pair(shape, seed: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = 0.6 * x + 0.4 * torch.rand(shape, generator=g, dtype=torch.float64)
    return x.to(dtype).to(CUDA), y.to(dtype).to(CUDA)


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
# nn_ref
# ---------------------------------------------------------------------------------------------


def _exact_nn(z: torch.Tensor, h: torch.Tensor, exclude: torch.Tensor | None = None):
    """Brute-force oracle: squared distances summed directly in float64 (exact for _quantized
    data, no matmul expansion), ties -> lowest index by construction rather than by min's tie
    rule. Returns CPU tensors."""
    zd, hd = z.detach().double(), h.detach().double()
    b, m = zd.shape[0], hd.shape[0]
    step = max(1, (1 << 24) // max(1, b * zd.shape[1]))
    d2 = torch.cat(
        [(zd[:, None, :] - hd[None, s : s + step, :]).pow(2).sum(-1) for s in range(0, m, step)], 1
    )
    if exclude is not None:
        rows = torch.arange(b, device=d2.device)
        hit = exclude >= 0
        d2[rows[hit], exclude[hit]] = float("inf")
    best = d2.min(1, keepdim=True).values
    cols = torch.arange(m, device=d2.device).expand_as(d2)
    idx = torch.where(d2 == best, cols, m).min(1).values
    return best.squeeze(1).cpu(), idx.cpu()


def _cdist_min(z: torch.Tensor, h: torch.Tensor):
    return torch.cdist(z.double(), h.double()).pow(2).min(1)


def _quantized(shape, seed: int, levels: int = 4, dtype=torch.float32) -> torch.Tensor:
    """Values k/4 with |k| <= levels: every distance is exact in float, half and bfloat16 alike,
    so the expected indices (ties included) do not depend on any summation order."""
    g = _gen(seed)
    return (torch.randint(-levels, levels + 1, shape, generator=g).double() / 4).to(dtype).to(CUDA)


@pytest.mark.parametrize("b, m, d", [(256, 1024, 256), (7, 3, 5), (1, 1, 1), (65, 4097, 33), (130, 700, 100)])
def test_nn_ref_matches_cdist_min(b, m, d):
    g = _gen(b + m + d)
    z = torch.randn(b, d, generator=g).to(CUDA)
    h = torch.randn(m, d, generator=g).to(CUDA)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    assert dist2.device.type == CUDA and dist2.dtype == torch.float32 and dist2.shape == (b,)
    assert idx.device.type == CUDA and idx.dtype == torch.int64 and idx.shape == (b,)
    want_d, want_i = _cdist_min(z, h)
    assert torch.equal(idx.cpu(), want_i.cpu())
    torch.testing.assert_close(dist2.double().cpu(), want_d.cpu(), rtol=1e-4, atol=1e-6)
    # and the reported distance is the exact one of the chosen row
    exact = (z.double() - h.double()[idx]).pow(2).sum(1)
    torch.testing.assert_close(dist2.double(), exact, rtol=1e-6, atol=0)


def test_nn_ref_float64():
    g = _gen(10)
    z = torch.randn(100, 40, generator=g, dtype=torch.float64).to(CUDA)
    h = torch.randn(3000, 40, generator=g, dtype=torch.float64).to(CUDA)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    want_d, want_i = _exact_nn(z, h)
    assert dist2.dtype == torch.float64
    assert torch.equal(idx.cpu(), want_i)
    torch.testing.assert_close(dist2.cpu(), want_d, rtol=1e-12, atol=0)
    ref_d, ref_i = reference.nn_ref(z, h)
    assert torch.equal(idx, ref_i)
    torch.testing.assert_close(dist2, ref_d, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", HALVES)
def test_nn_ref_half_inputs_exact_data(dtype):
    z, h = _quantized((90, 48), 11, dtype=dtype), _quantized((1500, 48), 12, dtype=dtype)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    assert dist2.dtype == dtype
    want_d, want_i = _exact_nn(z, h)
    assert torch.equal(idx.cpu(), want_i)
    torch.testing.assert_close(dist2.double().cpu(), want_d, rtol=1e-2, atol=0)  # dtype rounding only


@pytest.mark.parametrize("dtype", HALVES)
def test_nn_ref_half_inputs_random_data(dtype):
    g = _gen(13)
    z = torch.randn(40, 16, generator=g).to(dtype).to(CUDA)
    h = torch.randn(200, 16, generator=g).to(dtype).to(CUDA)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    want_d, want_i = _exact_nn(z, h)
    assert torch.equal(idx.cpu(), want_i)
    torch.testing.assert_close(dist2.double().cpu(), want_d, rtol=1e-2, atol=0)
    ref_d, ref_i = reference.nn_ref(z, h)
    assert torch.equal(idx, ref_i)


def test_nn_ref_duplicated_rows_tie_to_lowest_index():
    g = _gen(14)
    base = torch.randn(50, 24, generator=g)
    # Every row appears three times, the copies far apart in index so they land in different
    # tiles, threads and splits of the search.
    h = torch.cat([base, torch.randn(5000, 24, generator=g) + 10.0, base, base]).to(CUDA)
    z = (base[[0, 7, 49, 13]] + 1e-3 * torch.randn(4, 24, generator=g)).to(CUDA)
    _, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    assert idx.tolist() == [0, 7, 49, 13]
    # Exact midpoint: two references at the same distance, the lower index wins.
    h2 = torch.tensor([[5.0, 5.0], [1.0, 0.0], [-1.0, 0.0]], device=CUDA)
    _, idx = torch.ops.cae_fast.nn_ref(torch.zeros(1, 2, device=CUDA), h2, None)
    assert idx.item() == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_nn_ref_many_exact_ties(dtype):
    # Few distinct values in few dimensions: most rows have many equidistant references.
    z, h = _quantized((200, 3), 15, levels=2, dtype=dtype), _quantized((9000, 3), 16, levels=2, dtype=dtype)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    want_d, want_i = _exact_nn(z, h)
    assert torch.equal(idx.cpu(), want_i)
    assert torch.equal(dist2.double().cpu(), want_d)


def test_nn_ref_exclude():
    g = _gen(17)
    h = torch.randn(500, 6, generator=g).to(CUDA)
    rows = torch.tensor([4, 10, 499, 0, 255], device=CUDA)
    z = h[rows].clone()
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, rows)
    want_d, want_i = _exact_nn(z, h, rows)
    assert torch.equal(idx.cpu(), want_i)
    assert (idx != rows).all() and (dist2 > 0).all()
    torch.testing.assert_close(dist2.double().cpu(), want_d, rtol=1e-5, atol=0)
    ref_d, ref_i = reference.nn_ref(z, h, rows)
    assert torch.equal(idx, ref_i)
    # -1 excludes nothing: every point finds itself
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, torch.full((5,), -1, device=CUDA))
    assert torch.equal(idx, rows) and torch.all(dist2 == 0)
    # mixed, and exclusion of one of two exact duplicates picks the other copy
    hd = torch.cat([h, h[:1]])  # row 500 duplicates row 0
    ex = torch.tensor([-1, 10, -1, 0, -1], device=CUDA)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, hd, ex)
    assert idx.tolist() == [4, _exact_nn(z[1:2], hd, ex[1:2])[1].item(), 499, 500, 255]
    assert dist2[3].item() == 0


def test_nn_ref_everything_excluded_falls_back_to_row_zero():
    # The Python layer refuses this (M = 1 with exclude); the raw op still must not return garbage:
    # it falls back to row 0, like the CPU kernel.
    z = torch.randn(3, 4, generator=_gen(18)).to(CUDA)
    h = torch.randn(1, 4, generator=_gen(19)).to(CUDA)
    ex = torch.zeros(3, dtype=torch.int64, device=CUDA)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, ex)
    cpu_d, cpu_i = torch.ops.cae_fast.nn_ref(z.cpu(), h.cpu(), ex.cpu())
    assert idx.tolist() == [0, 0, 0] and torch.equal(idx.cpu(), cpu_i)
    torch.testing.assert_close(dist2.cpu(), cpu_d, rtol=1e-6, atol=0)
    torch.testing.assert_close(dist2.double(), (z.double() - h.double()).pow(2).sum(1), rtol=1e-6, atol=0)


def test_nn_ref_non_contiguous_inputs():
    g = _gen(20)
    zt = torch.randn(37, 70, generator=g).to(CUDA).t()  # [70, 37], strides (1, 70)
    h = torch.randn(900, 74, generator=g).to(CUDA)[:, 2:39]  # [900, 37], row stride 74
    ex = torch.randint(-1, 900, (140,), generator=g).to(CUDA)[::2]
    assert not zt.is_contiguous() and not h.is_contiguous() and not ex.is_contiguous()
    got = torch.ops.cae_fast.nn_ref(zt, h, ex)
    want = torch.ops.cae_fast.nn_ref(zt.contiguous(), h.contiguous(), ex.contiguous())
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert torch.equal(got[1].cpu(), _exact_nn(zt, h, ex)[1])


def test_nn_ref_large_m():
    # M far beyond one tile and one block: the search is split over many blocks and merged, with
    # exact ties spread across the splits.
    z, h = _quantized((100, 16), 21, levels=3), _quantized((300_000, 16), 22, levels=3)
    dist2, idx = torch.ops.cae_fast.nn_ref(z, h, None)
    want_d, want_i = _exact_nn(z, h)
    assert torch.equal(idx.cpu(), want_i)
    assert torch.equal(dist2.double().cpu(), want_d)
    # continuous data against the reference's tiled search
    g = _gen(23)
    z2 = torch.randn(300, 24, generator=g).to(CUDA)
    h2 = torch.randn(65536, 24, generator=g).to(CUDA)
    dist2, idx = torch.ops.cae_fast.nn_ref(z2, h2, None)
    want_d, want_i = _exact_nn(z2, h2)
    assert torch.equal(idx.cpu(), want_i)
    torch.testing.assert_close(dist2.double().cpu(), want_d, rtol=1e-4, atol=1e-6)


def test_nn_ref_empty_batch_and_zero_width():
    dist2, idx = torch.ops.cae_fast.nn_ref(
        torch.zeros(0, 4, device=CUDA), torch.randn(5, 4, device=CUDA), None
    )
    assert dist2.shape == (0,) and idx.shape == (0,) and dist2.device.type == CUDA
    # D = 0: every reference is at distance 0, so the lowest allowed index wins
    ex = torch.tensor([0, -1], device=CUDA)
    dist2, idx = torch.ops.cae_fast.nn_ref(torch.zeros(2, 0, device=CUDA), torch.zeros(3, 0, device=CUDA), ex)
    assert idx.tolist() == [1, 0] and dist2.tolist() == [0.0, 0.0]


def test_nn_ref_agrees_with_cpu_kernel():
    # float64: the CPU kernel's GEMM expansion is then far more accurate than any gap here.
    g = _gen(24)
    z = torch.randn(64, 32, generator=g, dtype=torch.float64)
    h = torch.randn(2000, 32, generator=g, dtype=torch.float64)
    ex = torch.randint(-1, 2000, (64,), generator=g)
    gpu = torch.ops.cae_fast.nn_ref(z.to(CUDA), h.to(CUDA), ex.to(CUDA))
    cpu = torch.ops.cae_fast.nn_ref(z, h, ex)
    assert torch.equal(gpu[1].cpu(), cpu[1])
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-12, atol=0)


def test_nn_ref_is_deterministic():
    z, h = _quantized((300, 8), 25, levels=2), _quantized((20000, 8), 26, levels=2)
    a, b = torch.ops.cae_fast.nn_ref(z, h, None), torch.ops.cae_fast.nn_ref(z, h, None)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------------------------------------
# nn_ref backward
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *HALVES])
def test_nn_ref_backward_op_matches_reference(dtype):
    g = _gen(30)
    z = torch.randn(70, 33, generator=g).to(dtype).to(CUDA)
    h = torch.randn(400, 33, generator=g).to(dtype).to(CUDA)
    idx = torch.randint(0, 400, (70,), generator=g).to(CUDA)
    grad = torch.randn(70, generator=g).to(dtype).to(CUDA)
    got = torch.ops.cae_fast.nn_ref_backward(grad, z, h, idx)
    want = reference.nn_ref_backward(grad, z, h, idx)
    assert got.dtype == dtype and got.shape == z.shape and got.device.type == CUDA
    tol = (
        {"rtol": 1e-6, "atol": 0} if dtype in (torch.float32, torch.float64) else {"rtol": 1e-2, "atol": 1e-2}
    )
    torch.testing.assert_close(got, want, **tol)
    # broadcast gradient (what autograd hands in after .sum()) and a non-contiguous z
    ones = torch.ones((), dtype=dtype, device=CUDA).expand(70)
    zt = z.t().contiguous().t()
    got = torch.ops.cae_fast.nn_ref_backward(ones, zt, h, idx)
    torch.testing.assert_close(got, reference.nn_ref_backward(ones, z, h, idx), **tol)


def test_nn_ref_autograd_matches_reference():
    g = _gen(31)
    z = torch.randn(64, 32, generator=g).to(CUDA).requires_grad_(True)
    h = torch.randn(300, 32, generator=g).to(CUDA).requires_grad_(True)
    w = torch.rand(64, generator=g).to(CUDA)
    dist2, _ = ops.nn_ref(z, h)
    (dist2 * w).sum().backward()
    got = z.grad.clone()
    assert h.grad is None  # H_ref is a fixed target
    z.grad = None
    want, _ = reference.nn_ref(z, h)
    (want * w).sum().backward()
    torch.testing.assert_close(got, z.grad, rtol=1e-5, atol=1e-6)


def test_nn_ref_gradcheck_float64():
    g = _gen(32)
    z = torch.randn(6, 5, dtype=torch.float64, generator=g).to(CUDA).requires_grad_(True)
    h = torch.randn(20, 5, dtype=torch.float64, generator=g).to(CUDA)
    ex = torch.tensor([3, -1, 0, 19, -1, 7], device=CUDA)
    assert torch.autograd.gradcheck(lambda t: ops.nn_ref(t, h)[0], (z,))
    assert torch.autograd.gradcheck(lambda t: ops.nn_ref(t, h, ex)[0].mean(), (z,))


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
