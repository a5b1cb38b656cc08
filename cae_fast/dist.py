"""Several processes under ``torchrun``: the environment, the process group and the few
collectives the stages need. With no ``WORLD_SIZE`` in the environment (or ``WORLD_SIZE=1``)
every helper is a no-op and the single-process path runs unchanged.

``torchrun --nproc_per_node N -m cae_fast.run ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address; ``setup()`` joins the group (NCCL on CUDA, gloo on
CPU) and binds a CUDA process to ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def env_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device: str = "auto") -> bool:
    """Join the process group when launched by torchrun with more than one process; returns
    whether this process is one of several."""
    if env_world() <= 1 or active():
        return active()
    use_cuda = device != "cpu" and torch.cuda.is_available() and not device.startswith("cpu")
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def cleanup() -> None:
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def shard(indices: list[int]) -> list[int]:
    """This rank's part of one global batch: every ``world``-th frame from its rank on. A batch
    smaller than the world wraps around (like ``DistributedSampler``'s padding) so that every
    rank steps together; ``real(...)`` tells the padded frames apart."""
    w, r = world(), rank()
    if w == 1:
        return indices
    part = indices[r::w]
    return part if part else [indices[r % len(indices)]]


def is_padding(indices: list[int]) -> bool:
    """True for the wrapped-around share ``shard`` gives a rank when the batch had none for it."""
    return world() > 1 and rank() >= len(indices)


def share(n: int) -> tuple[int, int]:
    """This rank's contiguous range ``[start, stop)`` of ``n`` items (sizes differ by at most one)."""
    w, r = world(), rank()
    return n * r // w, n * (r + 1) // w


def gather_rows(part: torch.Tensor, n: int) -> torch.Tensor:
    """Concatenate every rank's ``share(n)`` rows (first dimension) in rank order: the whole
    ``n`` rows on every rank, in the original order."""
    if not active():
        return part
    w = world()
    device = part.device if dist.get_backend() == "nccl" else torch.device("cpu")
    sizes = [n * (i + 1) // w - n * i // w for i in range(w)]
    longest = max(sizes)
    padded = torch.zeros((longest, *part.shape[1:]), dtype=part.dtype, device=device)
    padded[: part.shape[0]] = part.to(device)
    bufs = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(bufs, padded)
    return torch.cat([b[:s] for b, s in zip(bufs, sizes, strict=True)]).to(part.device)


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over the ranks (a copy; ``t`` itself is left alone)."""
    if not active():
        return t
    device = torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    out = t.to(device).clone()
    dist.all_reduce(out)
    return out.to(t.device)


class _SyncStats(torch.autograd.Function):
    """All-reduce (sum) of per-rank statistics; the gradient is all-reduced back, so each rank's
    frames get the gradient of every rank's loss through the shared batch statistics."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        return all_sum(t)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return all_sum(grad.contiguous())


class _GlobalBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics span the global batch of all ranks, on any backend
    (``torch.nn.SyncBatchNorm`` needs CUDA). Eval mode is plain batch norm on the running stats."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()):
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        xf = x.float()
        local = torch.cat(
            [xf.sum(dims), (xf * xf).sum(dims), xf.new_full((1,), float(x.numel() // x.shape[1]))]
        )
        total = _SyncStats.apply(local)
        c = x.shape[1]
        count = total[-1].detach()
        mean = total[:c] / count
        var = (total[c : 2 * c] / count - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (count / (count - 1).clamp_min(1)), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def global_batchnorm(model: torch.nn.Module) -> list[tuple[torch.nn.Module, type]]:
    """Make every batch-norm layer of ``model`` normalise over the global batch (in place, same
    parameters and buffers); returns what ``restore_batchnorm`` needs to undo it."""
    changed = []
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(m, _GlobalBatchNorm):
            changed.append((m, type(m)))
            m.__class__ = type(f"Global{type(m).__name__}", (_GlobalBatchNorm, type(m)), {})
    return changed


def restore_batchnorm(changed: list[tuple[torch.nn.Module, type]]) -> None:
    for m, cls in changed:
        m.__class__ = cls
