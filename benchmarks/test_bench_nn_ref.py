"""nn_ref forward + backward: fused vs cdist+min autograd, vs faiss when installed, and its memory
bound at B 4096 x M 65536 x D 256."""

import json
import os
import subprocess
import sys

import pytest
import torch

from benchmarks.conftest import best_of, fused_seconds, interleaved_best
from cae_fast import ops

# One table per group, each in its own time unit.
pytestmark = pytest.mark.benchmark(group="ops")

MIN_SPEEDUP_VS_CDIST = 2.0  # issue 2 target on a 2-core CPU


def _fused_step(z, h):
    z.grad = None
    d2, idx = ops.nn_ref(z, h)
    d2.mean().backward()
    return d2, idx


def _cdist_step(z, h):
    z.grad = None
    d2, idx = torch.cdist(z, h).pow(2).min(1)
    d2.mean().backward()
    return d2, idx


def test_nn_ref_fwd_bwd_b256_m1024(benchmark):
    z = torch.randn(256, 256, requires_grad=True)
    h = torch.randn(1024, 256)
    d2, idx = benchmark.pedantic(_fused_step, args=(z, h), rounds=30, iterations=1, warmup_rounds=3)
    grad = z.grad.clone()
    want_d2, want_idx = _cdist_step(z, h)
    assert torch.equal(idx, want_idx)
    torch.testing.assert_close(d2.detach(), want_d2.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad, z.grad, rtol=1e-4, atol=1e-6)

    t = interleaved_best({"fused": lambda: _fused_step(z, h), "cdist": lambda: _cdist_step(z, h)}, rounds=15)
    t_fused, t_cdist = min(t["fused"], fused_seconds(benchmark)), t["cdist"]
    info = {"fused_ms": 1e3 * t_fused, "cdist_min_ms": 1e3 * t_cdist, "speedup": t_cdist / t_fused}
    line = f"\nnn_ref fwd+bwd 256x1024x256: fused {1e3 * t_fused:.2f} ms, cdist+min {1e3 * t_cdist:.2f} ms"
    try:
        import faiss  # optional: the library a user would reach for
    except ImportError:
        faiss = None
    if faiss is not None:
        zn = z.detach().numpy()
        index = faiss.IndexFlatL2(256)
        index.add(h.numpy())
        t_faiss = best_of(lambda: index.search(zn, 1), repeat=10, warmup=2)
        fd, fi = index.search(zn, 1)
        assert (torch.from_numpy(fi[:, 0]) == idx).float().mean() >= 0.99  # float32 ties may differ
        info["faiss_search_ms"] = 1e3 * t_faiss
        line += f", faiss IndexFlatL2 search only {1e3 * t_faiss:.2f} ms"
    benchmark.extra_info.update(info)
    print(line + f" ({t_cdist / t_fused:.1f}x vs cdist)")
    assert t_cdist / t_fused >= MIN_SPEEDUP_VS_CDIST


_PEAK_SCRIPT = r"""
import json, resource, sys, time, torch
from cae_fast import ops
from cae_fast.ops import reference
b, m, d, which = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
g = torch.Generator().manual_seed(0)
z = torch.randn(b, d, generator=g, requires_grad=True)
h = torch.randn(m, d, generator=g)
# warm up the library (BLAS buffers, thread pools) so the figure is what scales with B x M
warm = torch.randn(64, d, requires_grad=True)
(ops.nn_ref if which == "fused" else reference.nn_ref)(warm, h[:256])[0].sum().backward()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if which == "fused":
    d2, idx = ops.nn_ref(z, h)
elif which == "tiled-reference":
    d2, idx = reference.nn_ref(z, h)
else:
    d2, idx = torch.cdist(z, h).pow(2).min(1)
d2.mean().backward()
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "extra_mib": (peak - base) / 1024, "idx": idx.tolist(),
                  "dist2": d2.tolist()}))
"""


def _run_peak(which: str, b: int, m: int, d: int) -> dict:
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(b), str(m), str(d), which],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="memory")
@pytest.mark.parametrize("b, m, d", [(4096, 65536, 256)])
def test_nn_ref_large_runs_in_bounded_memory(benchmark, b, m, d):
    fused = benchmark.pedantic(lambda: _run_peak("fused", b, m, d), rounds=1, iterations=1)
    full_matrix_mib = b * m * 4 / 2**20
    tiled = _run_peak("tiled-reference", b, m, d)
    benchmark.extra_info.update(
        fused_s=fused["seconds"],
        fused_extra_mib=fused["extra_mib"],
        tiled_reference_s=tiled["seconds"],
        b_by_m_matrix_mib=full_matrix_mib,
    )
    print(
        f"\nnn_ref fwd+bwd {b}x{m}x{d}: fused {fused['seconds']:.2f} s, +{fused['extra_mib']:.0f} MiB peak "
        f"(a B x M float32 matrix is {full_matrix_mib:.0f} MiB); tiled reference {tiled['seconds']:.2f} s"
    )
    # float32 search vs float64 reference: a near-tie may pick the other neighbour, at the same distance.
    same = [a == b for a, b in zip(fused["idx"], tiled["idx"], strict=True)]
    assert sum(same) / len(same) >= 0.99
    torch.testing.assert_close(
        torch.tensor(fused["dist2"]), torch.tensor(tiled["dist2"]), rtol=1e-4, atol=1e-3
    )
    # The target at this size is bounded memory; the speed ratio is reported, asserted at B 256 above.
    assert fused["extra_mib"] < full_matrix_mib / 8
