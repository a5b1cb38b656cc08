"""patch_detail (per-tile gray-Laplacian detail of frame and reconstruction) on 256 x 3 x 64 x 64,
8 x 8 tiles: fused vs the reference."""

import pytest
import torch

from benchmarks.conftest import fused_seconds, interleaved_best
from cae_fast import ops
from cae_fast.ops import reference

# One table per group, each in its own time unit.
pytestmark = pytest.mark.benchmark(group="ops")

# The reference is float64 conv2d plus two pooled sums; the fused kernel reads each pixel's
# neighbourhood once per input and never materialises the Laplacian map.
MIN_SPEEDUP_VS_REFERENCE = 3.0


def test_patch_detail_fused_vs_reference(benchmark):
    x = torch.rand(256, 3, 64, 64)
    y = (0.8 * x + 0.2 * torch.rand_like(x)).contiguous()
    got = benchmark.pedantic(ops.patch_detail, args=(x, y, 8), rounds=5, iterations=1, warmup_rounds=1)
    torch.testing.assert_close(got, reference.patch_detail(x, y, 8), rtol=1e-5, atol=1e-7)
    t = interleaved_best(
        {"fused": lambda: ops.patch_detail(x, y, 8), "reference": lambda: reference.patch_detail(x, y, 8)},
        rounds=2,
    )
    t_fused, t_ref = min(t["fused"], fused_seconds(benchmark)), t["reference"]
    benchmark.extra_info.update(fused_ms=1e3 * t_fused, reference_ms=1e3 * t_ref, speedup=t_ref / t_fused)
    print(
        f"\npatch_detail 256x3x64x64: fused {1e3 * t_fused:.1f} ms, "
        f"reference {1e3 * t_ref:.0f} ms ({t_ref / t_fused:.1f}x)"
    )
    assert t_ref / t_fused >= MIN_SPEEDUP_VS_REFERENCE
