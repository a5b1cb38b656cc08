"""nn_ref: parity with cdist+min, ties, self-match exclusion, gradients, bounded tiling."""

import pytest
import torch

from cae_fast import ops
from cae_fast.ops import reference

IMPLS = {"dispatch": ops.nn_ref, "reference": reference.nn_ref}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def nn_ref(request):
    return IMPLS[request.param]


def _cdist_min(z, h):
    return torch.cdist(z.double(), h.double()).pow(2).min(1)


@pytest.mark.parametrize("b, m, d", [(256, 1024, 256), (7, 3, 5), (1, 1, 1), (33, 4097, 16)])
def test_matches_cdist_min(nn_ref, b, m, d):
    g = torch.Generator().manual_seed(b + m + d)
    z, h = torch.randn(b, d, generator=g), torch.randn(m, d, generator=g)
    dist2, idx = nn_ref(z, h)
    want_d, want_i = _cdist_min(z, h)
    assert idx.dtype == torch.int64 and dist2.dtype == torch.float32
    assert torch.equal(idx, want_i)
    torch.testing.assert_close(dist2.double(), want_d, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_duplicate_references_resolve_to_the_lowest_index(nn_ref, seed):
    # Duplicates in different GEMM blocks and tiles: the fast path may round them differently.
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(3000, 64, generator=g)
    rows = torch.tensor([17, 18, 700, 1999, 2999])
    h[rows] = h[17].clone()
    z = h[17:18].repeat(40, 1) + 0.05 * torch.randn(40, 64, generator=g)
    _, idx = nn_ref(z, h)
    assert (idx == 17).all()


def test_ties_go_to_lowest_index(nn_ref):
    h = torch.randn(10, 8, generator=torch.Generator().manual_seed(0))
    h[7] = h[2]  # exact duplicate, later index
    h[9] = h[2]
    z = h[2:3].clone() + 0.01
    _, idx = nn_ref(z, h)
    assert idx.item() == 2
    # equidistant points: z at the midpoint of two references
    h2 = torch.tensor([[5.0, 5.0], [1.0, 0.0], [-1.0, 0.0]])
    _, idx = nn_ref(torch.zeros(1, 2), h2)
    assert idx.item() == 1


def test_exclude_skips_self_match(nn_ref):
    g = torch.Generator().manual_seed(3)
    h = torch.randn(50, 6, generator=g)
    z = h[[4, 10, 49]].clone()
    exclude = torch.tensor([4, 10, 49])
    dist2, idx = nn_ref(z, h, exclude)
    d_all = torch.cdist(z, h).pow(2)
    d_all[torch.arange(3), exclude] = float("inf")
    want_d, want_i = d_all.min(1)
    assert torch.equal(idx, want_i)
    assert (dist2 > 0).all()
    torch.testing.assert_close(dist2, want_d, rtol=1e-4, atol=1e-6)
    # -1 means "exclude nothing": then each point finds itself at distance 0
    dist2, idx = nn_ref(z, h, torch.full((3,), -1))
    assert torch.equal(idx, exclude) and torch.all(dist2 == 0)


def test_gradient_matches_autograd_of_cdist(nn_ref):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(64, 32, generator=g, requires_grad=True)
    h = torch.randn(300, 32, generator=g, requires_grad=True)
    dist2, _ = nn_ref(z, h)
    w = torch.rand(64, generator=g)
    (dist2 * w).sum().backward()
    got = z.grad.clone()
    assert h.grad is None  # H_ref is a fixed target: no gradient flows into it
    z.grad = None
    want, _ = torch.cdist(z, h.detach()).pow(2).min(1)
    (want * w).sum().backward()
    torch.testing.assert_close(got, z.grad, rtol=1e-4, atol=1e-5)


def test_gradcheck_float64(nn_ref):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(6, 5, dtype=torch.float64, generator=g, requires_grad=True)
    h = torch.randn(20, 5, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda t: nn_ref(t, h)[0], (z,))
    assert torch.autograd.gradcheck(lambda t: nn_ref(t, h)[0].mean(), (z,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes(nn_ref, dtype):
    g = torch.Generator().manual_seed(6)
    z, h = torch.randn(40, 16, generator=g).to(dtype), torch.randn(200, 16, generator=g).to(dtype)
    dist2, idx = nn_ref(z, h)
    assert dist2.dtype == dtype
    want_d, want_i = _cdist_min(z, h)
    assert torch.equal(idx, want_i)
    torch.testing.assert_close(dist2.double(), want_d, rtol=1e-2 if dtype != torch.float64 else 1e-10, atol=0)


def test_large_m_tiles_and_agrees(nn_ref):
    # M far above one tile for this B, so the running minimum crosses many tiles.
    g = torch.Generator().manual_seed(7)
    z, h = torch.randn(300, 24, generator=g), torch.randn(65536, 24, generator=g)
    dist2, idx = nn_ref(z, h)
    want_d, want_i = _cdist_min(z, h)
    assert torch.equal(idx, want_i)
    torch.testing.assert_close(dist2.double(), want_d, rtol=1e-4, atol=1e-6)


def test_empty_batch(nn_ref):
    dist2, idx = nn_ref(torch.zeros(0, 4), torch.randn(5, 4))
    assert dist2.shape == (0,) and idx.shape == (0,)


@pytest.mark.parametrize(
    "z, h, exclude, exc, msg",
    [
        (torch.randn(3, 4), torch.randn(5, 3), None, ValueError, "latent sizes differ"),
        (torch.randn(3), torch.randn(5, 3), None, ValueError, r"z \[B, D\]"),
        (torch.randn(3, 4), torch.randn(0, 4), None, ValueError, "empty"),
        (torch.randn(3, 4), torch.randn(5, 4).double(), None, TypeError, "same dtype"),
        (torch.randn(3, 4), torch.randn(5, 4), torch.zeros(3, dtype=torch.int32), ValueError, "int64"),
        (torch.randn(3, 4), torch.randn(1, 4), torch.zeros(3, dtype=torch.int64), ValueError, "at least 2"),
    ],
)
def test_bad_arguments_give_one_clear_error(nn_ref, z, h, exclude, exc, msg):
    with pytest.raises(exc, match=msg):
        nn_ref(z, h, exclude)
