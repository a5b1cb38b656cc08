"""Issue 31, item 11: a compiled op is checked against its reference on first use on a device
type CI never ran; on disagreement it warns once and the reference op serves the run. Exercised
on the CPU by checking "cpu" too and injecting a wrong op."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from conftest import FAST_FLAGS

from cae_fast import ops
from cae_fast.cli.main import main
from cae_fast.ops import reference, selfcheck

compiled_only = pytest.mark.skipif(ops.backend() == "reference", reason="needs the compiled extension")


@pytest.fixture
def check_cpu(monkeypatch):
    monkeypatch.setattr(selfcheck, "CHECKED_DEVICE_TYPES", {"cpu", "cuda"})
    monkeypatch.setattr(ops, "_COMPILED", True)  # the dispatch as with the extension loaded
    selfcheck.reset()
    yield
    selfcheck.reset()


def _pair():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(6, 3, 16, 16, generator=gen)
    return x, (x + 0.1 * torch.rand(6, 3, 16, 16, generator=gen)).clamp(0, 1)


def test_a_wrong_op_is_caught_warned_once_and_replaced_by_its_reference(check_cpu, monkeypatch):
    calls = []

    def wrong(x, y):  # a kernel with a small bug: every PCC off by 0.001
        calls.append(len(x))
        pcc, mse = reference.pcc_mse(x, y)
        return pcc + 1e-3, mse

    monkeypatch.setitem(selfcheck.COMPILED, "pcc_mse", wrong)
    x, y = _pair()
    with pytest.warns(RuntimeWarning, match="compiled pcc_mse op on cpu disagrees with its reference"):
        got = ops.pcc_mse(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: the second call says nothing
        again = ops.pcc_mse(x, y)
    want = reference.pcc_mse(x, y)
    for g in (got, again):
        torch.testing.assert_close(g, want, rtol=0, atol=0)
    assert calls == [4]  # the wrong op ran only on the check's batch, never on the data
    assert ops.backends_used() == {"pcc_mse": "reference"}


def test_a_crashing_op_is_replaced_too(check_cpu, monkeypatch):
    def crash(*args):
        raise RuntimeError("CUDA error: invalid device function")

    monkeypatch.setitem(selfcheck.COMPILED, "patch_mse", crash)
    x, y = _pair()
    with pytest.warns(RuntimeWarning, match="invalid device function"):
        got = ops.patch_mse(x, y, 4)
    torch.testing.assert_close(got, reference.patch_mse(x, y, 4), rtol=0, atol=0)


@compiled_only
def test_the_real_compiled_ops_pass_their_check(check_cpu):
    x, y = _pair()
    z = torch.randn(8, 32, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no false alarm from the tolerances, nn_ref's gradient included
        with torch.inference_mode():  # nor from the mode of the first call (scoring has no autograd)
            ops.pcc_mse(x, y), ops.frame_stats(x, y), ops.nn_ref(z.detach(), torch.randn(20, 32))
        ops.patch_mse(x, y, 4), ops.patch_detail(x, y, 4)
        ops.nn_ref(z, torch.randn(20, 32))[0].sum().backward()
    assert set(ops.backends_used().values()) == {"compiled-cpu"} and len(ops.backends_used()) == 5


@compiled_only
def test_the_backend_each_op_ran_is_in_the_npz_and_the_report(
    check_cpu, monkeypatch, tmp_path, tiny_npz, capsys
):
    monkeypatch.setitem(
        selfcheck.COMPILED, "pcc_mse", lambda x, y: tuple(t * 0.5 for t in reference.pcc_mse(x, y))
    )
    out = tmp_path / "run"
    assert main([*FAST_FLAGS, "--data", str(tiny_npz), "--out", str(out), "--report"]) == 0
    assert capsys.readouterr().err.count("compiled pcc_mse op on cpu disagrees") == 1
    with np.load(out / "filter_result.npz") as r:
        used = json.loads(str(r["config"]))["ops_backends"]
    assert used["pcc_mse"] == "reference" and used["frame_stats"] == "compiled-cpu"
    assert "pcc_mse reference" in (out / "report" / "report.html").read_text()
