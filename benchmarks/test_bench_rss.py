"""Peak memory while scoring a frame set stored as a uint8 memmap (the CLI's frame cache): the
frames stream batch by batch, nothing holds the set as float. Runs in a fresh subprocess so the
peak is its own; sampled with psutil every 5 ms.

    pytest benchmarks/test_bench_rss.py -s
    CAE_FAST_RSS_FRAMES=17600 pytest benchmarks/test_bench_rss.py -s   # the issue's size (slow)

RSS counts the memmap's file pages still mapped; ``score_frames`` drops each scored batch's
pages (without that, 17,600 frames peaked at 3.56 GB, the whole 2.47 GB file resident). The
process's own memory is RSS minus the shared file pages; it must not grow with the set.
Measured (2-core machine, 1 thread): 17,600 frames peak RSS 1.15 GB, own memory 1.02 GB
(1.11 GB for 512 frames), 110 frames/s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SIZE = 224
N_FRAMES = int(os.environ.get("CAE_FAST_RSS_FRAMES", "3000"))
MAX_RSS_GB = 3.0  # the bound, for 17,600 frames at 224x224
# Small convolution widths: the network's size barely changes the memory of scoring (one batch of
# activations), and it keeps the benchmark short on a loaded CPU.
CHANNELS = "8,16,32,64"

_SCRIPT = """
import json, sys, threading, time
import numpy as np, psutil, torch
sys.path.insert(0, {repo!r})
torch.set_num_threads(1)
from cae_fast.config import Config
from cae_fast.model.zoo import build_model
from cae_fast.score.terms import score_frames

n, size, path = {n}, {size}, {path!r}
images = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, size, size, 3))

proc = psutil.Process()
peak = {{"rss": 0, "anon": 0}}
done = threading.Event()
def sample():
    while not done.is_set():
        m = proc.memory_info()
        peak["rss"] = max(peak["rss"], m.rss)
        peak["anon"] = max(peak["anon"], m.rss - m.shared)
        time.sleep(0.005)
base = proc.memory_info()
thread = threading.Thread(target=sample, daemon=True)
thread.start()
cfg = Config(image_size=size, channels=({channels},), data="x", progress=False).resolved()
torch.manual_seed(0)
model = build_model(cfg).eval()
t0 = time.perf_counter()
scores = score_frames(model, images, cfg, torch.device("cpu"), ("pcc", "mse"))
seconds = time.perf_counter() - t0
done.set()
thread.join()
assert scores["pcc"].shape == (n,) and np.isfinite(scores["pcc"]).all()
print(json.dumps({{"peak_rss": peak["rss"], "peak_anon": peak["anon"], "base_anon": base.rss - base.shared,
                   "seconds": seconds, "score_batch": cfg.score_batch}}))
"""


def _write_frames(n: int, path: Path) -> None:
    """The frame cache: n frames (64 random ones, repeated) as a uint8 memmap."""
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=(n, SIZE, SIZE, 3))
    tile = np.random.default_rng(0).integers(0, 256, (64, SIZE, SIZE, 3), dtype=np.uint8)
    for start in range(0, n, 64):
        stop = min(start + 64, n)
        mm[start:stop] = tile[: stop - start]
    mm.flush()
    del mm


def _measure(n: int, path: Path) -> dict:
    """Scores the n frames at ``path`` in a fresh process (compiled ops, one thread): its peak
    memory and scoring seconds."""
    script = _SCRIPT.format(repo=str(REPO), n=n, size=SIZE, path=str(path), channels=CHANNELS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("CAE_FAST_BACKEND", None)
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark(group="memory")
def test_peak_rss_scoring_memmap(tmp_path, benchmark):
    """The row times scoring ``N_FRAMES`` frames from a memmap in a fresh process (start-up
    included), the run whose peak memory is judged; the baseline is the same for 512 frames (two
    score batches). Peak RSS under the issue's bound, and the process's own memory the same
    (within 10% of the extra frames as float) for both."""
    small_n = 512
    small_path, path = tmp_path / "small.u8", tmp_path / "frames.u8"
    _write_frames(small_n, small_path)
    _write_frames(N_FRAMES, path)
    small = _measure(small_n, small_path)
    out = benchmark.pedantic(lambda: _measure(N_FRAMES, path), rounds=1, iterations=1)
    small_path.unlink()
    path.unlink()
    gb = 1024**3
    data_gb = N_FRAMES * SIZE * SIZE * 3 / gb
    extra_float = 4 * (N_FRAMES - small_n) * SIZE * SIZE * 3
    growth = out["peak_anon"] - small["peak_anon"]
    benchmark.extra_info.update(
        out,
        n_frames=N_FRAMES,
        uint8_gb=data_gb,
        frames_per_s=N_FRAMES / out["seconds"],
        baseline=f"the same for {small_n} frames",
        baseline_peak_anon=small["peak_anon"],
        ratio=out["peak_anon"] / small["peak_anon"],
        own_growth=growth,
    )
    print(
        f"\nscoring {N_FRAMES} frames at {SIZE}x{SIZE} from a memmap ({data_gb:.2f} GB as uint8, "
        f"{4 * data_gb:.1f} GB as float), score batch {out['score_batch']}: "
        f"peak RSS {out['peak_rss'] / gb:.2f} GB, own memory {out['peak_anon'] / gb:.2f} GB "
        f"({small['peak_anon'] / gb:.2f} GB for {small_n} frames), {N_FRAMES / out['seconds']:.0f} frames/s"
    )
    assert out["peak_rss"] / gb < MAX_RSS_GB
    assert growth < 0.1 * extra_float


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-s"]))
