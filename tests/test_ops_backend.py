"""The op layer: backend reporting, fallback, opcheck of the registered ops, torch.compile."""

import os
import subprocess
import sys

import pytest
import torch

from cae_fast import ops

COMPILED = ops.backend() != "reference"
needs_ext = pytest.mark.skipif(not COMPILED, reason=f"compiled extension not loaded: {ops.load_error()}")


def test_backend_reports_a_known_value():
    assert ops.backend() in {"compiled-cpu", "compiled-cuda", "reference"}
    assert (ops.load_error() is None) == COMPILED


def test_extension_is_built_where_ci_requires_it():
    # CI sets CAE_FAST_REQUIRE_EXT=1 after installing: a silently missing build must fail there.
    if os.environ.get("CAE_FAST_REQUIRE_EXT") == "1":
        assert COMPILED, f"compiled ops required but not loaded: {ops.load_error()}"
    else:
        assert isinstance(COMPILED, bool)


def test_forced_reference_backend_in_a_fresh_process():
    code = "import cae_fast.ops as o; print(o.backend()); print(o.load_error())"
    env = dict(os.environ, CAE_FAST_BACKEND="reference")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["reference", "CAE_FAST_BACKEND=reference"]
    assert "RuntimeWarning" not in out.stderr  # a deliberate choice is not warned about


@needs_ext
def test_opcheck_pcc_mse():
    x, y = torch.rand(3, 2, 5, 5), torch.rand(3, 2, 5, 5)
    torch.library.opcheck(torch.ops.cae_fast.pcc_mse.default, (x, y))
    torch.library.opcheck(torch.ops.cae_fast.pcc_mse.default, (x.double(), y.double()))


@needs_ext
def test_opcheck_nn_ref():
    z = torch.randn(8, 4, requires_grad=True)
    h = torch.randn(16, 4)
    torch.library.opcheck(torch.ops.cae_fast.nn_ref.default, (z, h, None))
    torch.library.opcheck(torch.ops.cae_fast.nn_ref.default, (z, h, torch.arange(8)))
    g = torch.rand(8)
    idx = torch.randint(0, 16, (8,))
    torch.library.opcheck(torch.ops.cae_fast.nn_ref_backward.default, (g, z.detach(), h, idx))


@needs_ext
def test_torch_compile_traces_through_the_ops():
    def loss(z, h, x, y):
        d2, _ = ops.nn_ref(z, h)
        pcc, mse = ops.pcc_mse(x, y)
        return d2.mean() + mse.mean() - pcc.mean()

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    z = torch.randn(8, 4, requires_grad=True)
    h, x, y = torch.randn(16, 4), torch.rand(8, 3, 4, 4), torch.rand(8, 3, 4, 4)
    out = compiled(z, h, x, y)
    out.backward()
    torch.testing.assert_close(out, loss(z, h, x, y))
    assert z.grad is not None and torch.isfinite(z.grad).all()


@needs_ext
def test_opcheck_frame_stats():
    x, y = torch.rand(2, 3, 9, 8), torch.rand(2, 3, 9, 8)
    torch.library.opcheck(torch.ops.cae_fast.frame_stats.default, (x, y))


@needs_ext
def test_opcheck_patch_mse():
    x, y = torch.rand(2, 3, 9, 8), torch.rand(2, 3, 9, 8)
    torch.library.opcheck(torch.ops.cae_fast.patch_mse.default, (x, y, 4))


@needs_ext
def test_opcheck_patch_detail():
    x, y = torch.rand(2, 3, 9, 8), torch.rand(2, 3, 9, 8)
    torch.library.opcheck(torch.ops.cae_fast.patch_detail.default, (x, y, 4))
