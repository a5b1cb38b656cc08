"""Shared by the CUDA kernel tests (test_ops_cuda*.py): the skip condition, inputs on the GPU
and exact oracles. Not a test module."""

from __future__ import annotations

import pytest
import torch

from cae_fast import ops
from cae_fast.ops import reference

NEEDS_CUDA = pytest.mark.skipif(
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


def _pcc_mse_want(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference, run on CPU copies of the very same (already rounded) values."""
    return reference.pcc_mse(x.cpu(), y.cpu())


def _pair(shape, seed: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = 0.6 * x + 0.4 * torch.rand(shape, generator=g, dtype=torch.float64)
    return x.to(dtype).to(CUDA), y.to(dtype).to(CUDA)


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
