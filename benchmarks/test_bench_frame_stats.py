"""frame_stats (SSIM + Laplacian detail energies) on 256 x 3 x 64 x 64: fused vs the reference."""

import pytest
import torch

from benchmarks.conftest import fused_seconds, interleaved_best
from cae_fast import ops
from cae_fast.ops import reference

# One table per group, each in its own time unit.
pytestmark = pytest.mark.benchmark(group="ops")

MIN_SPEEDUP_VS_REFERENCE = 5.0  # the reference is float64 conv2d; the fused pass reads each pixel once


def test_frame_stats_fused_vs_reference(benchmark):
    x = torch.rand(256, 3, 64, 64)
    y = (0.8 * x + 0.2 * torch.rand_like(x)).contiguous()
    got = benchmark.pedantic(ops.frame_stats, args=(x, y), rounds=5, iterations=1, warmup_rounds=1)
    want = reference.frame_stats(x, y)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)
    t = interleaved_best(
        {"fused": lambda: ops.frame_stats(x, y), "reference": lambda: reference.frame_stats(x, y)}, rounds=2
    )
    t_fused, t_ref = min(t["fused"], fused_seconds(benchmark)), t["reference"]
    benchmark.extra_info.update(fused_ms=1e3 * t_fused, reference_ms=1e3 * t_ref, speedup=t_ref / t_fused)
    print(
        f"\nframe_stats 256x3x64x64: fused {1e3 * t_fused:.1f} ms, "
        f"reference {1e3 * t_ref:.0f} ms ({t_ref / t_fused:.0f}x)"
    )
    assert t_ref / t_fused >= MIN_SPEEDUP_VS_REFERENCE
