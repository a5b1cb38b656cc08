"""Python-side registrations for the compiled ops: fake (meta) kernels so torch.compile and
FakeTensor can trace callers, and autograd for nn_ref whose backward is itself an op."""

from __future__ import annotations

import torch

from cae_fast.ops.reference import FRAME_STATS


@torch.library.register_fake("cae_fast::pcc_mse")
def _pcc_mse_fake(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.float64 if x.dtype == torch.float64 else torch.float32
    b = x.shape[0]
    return x.new_empty((b,), dtype=out), x.new_empty((b,), dtype=out)


@torch.library.register_fake("cae_fast::frame_stats")
def _frame_stats_fake(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x.new_empty((x.shape[0], len(FRAME_STATS)), dtype=torch.float64)


@torch.library.register_fake("cae_fast::patch_mse")
def _patch_mse_fake(x: torch.Tensor, y: torch.Tensor, patch: int) -> torch.Tensor:
    out = torch.float64 if x.dtype == torch.float64 else torch.float32
    return x.new_empty((x.shape[0], x.shape[2] // patch, x.shape[3] // patch), dtype=out)


@torch.library.register_fake("cae_fast::patch_detail")
def _patch_detail_fake(x: torch.Tensor, y: torch.Tensor, patch: int) -> torch.Tensor:
    out = torch.float64 if x.dtype == torch.float64 else torch.float32
    return x.new_empty((x.shape[0], 2, x.shape[2] // patch, x.shape[3] // patch), dtype=out)


@torch.library.register_fake("cae_fast::nn_ref")
def _nn_ref_fake(
    z: torch.Tensor, h_ref: torch.Tensor, exclude: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    b = z.shape[0]
    return z.new_empty((b,)), z.new_empty((b,), dtype=torch.int64)


@torch.library.register_fake("cae_fast::nn_ref_backward")
def _nn_ref_backward_fake(
    grad_dist2: torch.Tensor, z: torch.Tensor, h_ref: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    return torch.empty_like(z, memory_format=torch.contiguous_format)


def _nn_ref_setup_context(ctx, inputs, output) -> None:
    z, h_ref, _exclude = inputs
    _dist2, idx = output
    ctx.save_for_backward(z, h_ref, idx)
    ctx.mark_non_differentiable(idx)


def _nn_ref_backward(ctx, grad_dist2, _grad_idx):
    z, h_ref, idx = ctx.saved_tensors
    grad_z = None
    if ctx.needs_input_grad[0]:
        grad_z = torch.ops.cae_fast.nn_ref_backward(grad_dist2, z, h_ref, idx)
    # H_ref is encoded without grad by design: it is a fixed target for this step.
    return grad_z, None, None


torch.library.register_autograd("cae_fast::nn_ref", _nn_ref_backward, setup_context=_nn_ref_setup_context)
