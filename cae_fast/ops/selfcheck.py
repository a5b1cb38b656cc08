"""Compiled kernels that CI never ran are checked on their first use.

No GPU has run the CUDA kernels in CI (issue 31, item 11). So on the first call of each compiled op
on a device type in ``CHECKED_DEVICE_TYPES``, the op runs on a small seeded batch beside its
pure-PyTorch twin in ``reference``; when the two disagree beyond the parity tolerances (or the
kernel fails), a warning is given once and the reference op serves that op for the rest of the
process. ``ran()`` says which backend each op used, for the npz and the report.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from cae_fast.ops import reference

# CPU kernels are compared with the reference in every CI run; CUDA ones only here. Tests add
# "cpu" (and inject a wrong op through ``COMPILED``) to exercise the mechanism without a GPU.
CHECKED_DEVICE_TYPES = {"cuda"}
COMPILED: dict[str, Callable] = {}  # op name -> a stand-in for the compiled op (tests only)
RTOL, ATOL = 1e-4, 1e-5  # float32 sums in another order, not another result
PATCH = 8

_verdicts: dict[tuple[str, str], str | None] = {}  # (op, device type) -> why it failed, None: agrees
_ran: dict[str, str] = {}


def _compiled(name: str) -> Callable:
    if name in COMPILED:
        return COMPILED[name]
    op = getattr(torch.ops.cae_fast, name)
    if name == "nn_ref":  # h_ref never receives a gradient (ops.nn_ref)
        return lambda z, h_ref, exclude=None: op(z, h_ref.detach(), exclude)
    return op


def note(name: str, backend: str) -> None:
    _ran[name] = backend


def ran() -> dict[str, str]:
    """Op name -> the backend its last call used ('compiled-cpu', 'compiled-cuda', 'reference')."""
    return dict(sorted(_ran.items()))


def reset() -> None:
    _verdicts.clear()
    _ran.clear()


def pick(name: str, device: torch.device) -> Callable:
    """The implementation of op ``name`` to run on ``device``: the compiled one unless its
    first-use check on this device type failed."""
    compiled = _compiled(name)
    if device.type in CHECKED_DEVICE_TYPES:
        key = (name, device.type)
        if key not in _verdicts:
            _verdicts[key] = _disagreement(name, compiled, device)
            if _verdicts[key] is not None:
                warnings.warn(
                    f"cae_fast: the compiled {name} op on {device.type} disagrees with its reference "
                    f"({_verdicts[key]}); this run uses the reference {name} (slower, correct)",
                    RuntimeWarning,
                    stacklevel=3,
                )
        if _verdicts[key] is not None:
            note(name, "reference")
            return getattr(reference, name)
    note(name, f"compiled-{device.type}")
    return compiled


def _batch(name: str, device: torch.device) -> tuple:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=gen)
    y = (x + 0.2 * torch.rand(4, 3, 32, 32, generator=gen)).clamp(0, 1)
    if name == "nn_ref":
        z, h_ref = torch.randn(16, 32, generator=gen), torch.randn(64, 32, generator=gen)
        exclude = torch.full((16,), -1, dtype=torch.int64)
        exclude[:4] = torch.arange(4)
        return z.to(device).requires_grad_(), h_ref.to(device), exclude.to(device)
    x, y = x.to(device).contiguous(memory_format=torch.channels_last), y.to(device)
    return (x, y, PATCH) if name.startswith("patch_") else (x, y)


def _outputs(fn: Callable, args: tuple) -> list[torch.Tensor]:
    with torch.enable_grad():
        out = fn(*args)
        out = list(out) if isinstance(out, tuple) else [out]
        if args[0].requires_grad:  # nn_ref: its backward is an op too
            (grad,) = torch.autograd.grad(out[0].sum(), args[0])
            out.append(grad)
    return [o.detach().cpu() for o in out]


def _disagreement(name: str, compiled: Callable, device: torch.device) -> str | None:
    try:  # as in training, whatever mode the first call came from (scoring runs without autograd)
        with torch.inference_mode(False), torch.autocast(device.type, enabled=False):
            args = _batch(name, device)
            got = _outputs(compiled, args)
            want = _outputs(getattr(reference, name), args)
    except Exception as exc:  # a kernel that fails to launch is as unusable as a wrong one
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"output {i} is {g.dtype}{tuple(g.shape)}, the reference's {w.dtype}{tuple(w.shape)}"
        if not torch.allclose(g.double(), w.double(), rtol=RTOL, atol=ATOL):
            worst = (g.double() - w.double()).abs().max().item()
            return f"output {i} differs by up to {worst:.3g} on the seeded check batch"
    return None
