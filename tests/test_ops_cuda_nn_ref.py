"""CUDA nn_ref kernels (csrc/cuda/nn_ref.cu), forward and backward, against exact brute force
and the reference op. Runs only where the compiled extension has CUDA kernels and a GPU is visible.
"""

from __future__ import annotations

import pytest
import torch
from cuda_helpers import CUDA, HALVES, NEEDS_CUDA, _cdist_min, _exact_nn, _gen, _quantized

from cae_fast import ops
from cae_fast.ops import reference

pytestmark = NEEDS_CUDA


# ---------------------------------------------------------------------------------------------
# nn_ref
# ---------------------------------------------------------------------------------------------


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
