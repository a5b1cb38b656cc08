"""End-to-end throughput with the default network (channels 32,64,128,256, latent 256): training
at 64x64 and 224x224 with compiled vs reference ops, the share of an epoch spent on L_ref and the
H_ref rebuild, scoring with fused vs reference ops, the default score's passes against the
network's forward at 224x224, and the data loader against the training step.
Each row's time is the compiled side's real work; its baseline, timed in turns with it in this run,
and the ratio are in the row's extra_info (``--benchmark-json``). Asserts are on ratios only.

    pytest benchmarks/test_bench_e2e.py -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.conftest import interleaved_best, time_against, timed
from cae_fast import ops
from cae_fast.config import Config
from cae_fast.data import FrameDataset, collate_batch, to_float
from cae_fast.model.encode import encode_frames
from cae_fast.model.losses import rec_loss, ref_loss
from cae_fast.model.zoo import build_model
from cae_fast.ops import reference
from cae_fast.score.combine import COMBINED
from cae_fast.score.terms import SCORERS, Batch, score_frames
from cae_fast.train.loop import train

REPO = Path(__file__).resolve().parents[1]
SIZE = 64
N_TRAIN = 192  # frames per benchmark epoch: small enough for a loaded 2-core machine
N_SCORE = 256
# The share of L_ref + H_ref is extrapolated to an epoch of this many frames (the paper's data
# set size; with the paper's M_ref = 1024 the rebuild is amortised over the epoch).
NOMINAL_EPOCH = 17_600
MAX_REF_SHARE = 0.10
MIN_LOADER_OVER_STEP = 3.0


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cfg(**kw) -> Config:
    base = dict(image_size=SIZE, batch_size=32, epochs=2, m_ref=64, progress=False, data="x", workers=0)
    return Config(**{**base, **kw}).resolved()


def _images(n: int, where: str | os.PathLike[str], seed: int = 0, size: int = SIZE) -> np.ndarray:
    """A memmap of smooth random frames in the folder ``where``, like the frame cache the CLI trains
    from. The caller owns the folder (a pytest ``tmp_path``): a leaked one per run added up."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, size // 8, size // 8, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)
    path = Path(where) / "frames.u8"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=frames.shape)
    mm[:] = frames
    mm.flush()
    return np.memmap(path, dtype=np.uint8, mode="r", shape=frames.shape)


# The reference side of the training rows: the backend is chosen once per process, so it trains in
# a fresh process with CAE_FAST_BACKEND=reference, after the same warm-up as the compiled side.
_TRAIN_SCRIPT = """
import json, sys, tempfile, time, torch
sys.path.insert(0, {repo!r})
torch.set_num_threads(1)
from benchmarks.test_bench_e2e import _train_warm_up, _cfg, _images
from cae_fast import ops
from cae_fast.train.loop import train
size, n = int(sys.argv[1]), int(sys.argv[2])
# The 224 px checkpoint alone is 325 MB: the folder goes with the process.
with tempfile.TemporaryDirectory() as where:
    images = _images(n, where, size=size)
    _train_warm_up(size, where)
    t0 = time.perf_counter()
    train(images, _cfg(image_size=size), where)
    seconds = time.perf_counter() - t0
print(json.dumps({{"backend": ops.backend(), "seconds": seconds}}))
"""


def _train_warm_up(size: int, where: str | os.PathLike[str]) -> None:
    """One short training run at the timed run's frame and batch size: the first one in a process
    pays for allocator growth and convolution set-up, which is not training throughput."""
    with tempfile.TemporaryDirectory(dir=where) as sub:
        train(_images(32, sub, seed=1, size=size), _cfg(image_size=size, epochs=1, m_ref=32), sub)


def _reference_train_seconds(size: int, n: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CAE_FAST_BACKEND": "reference"}
    res = subprocess.run(
        [sys.executable, "-c", _TRAIN_SCRIPT.format(repo=str(REPO)), str(size), str(n)],
        env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["backend"] == "reference", out
    return out["seconds"]


# (frame size, frames per benchmark epoch): the demo's size and the paper's.
TRAIN_SIZES = ((SIZE, N_TRAIN), (224, 64))


@pytest.mark.benchmark(group="training")
@pytest.mark.parametrize("size, n", TRAIN_SIZES, ids=[f"{s}px" for s, _ in TRAIN_SIZES])
def test_train_throughput_compiled_vs_reference(benchmark, tmp_path, size, n):
    """The row times ``train`` (2 epochs, batch 32, one thread) with the compiled ops; the same run
    with the reference ops, in a fresh process, takes turns with it."""
    assert ops.backend() != "reference"
    images = _images(n, tmp_path, size=size)
    _train_warm_up(size, tmp_path)
    cfg = _cfg(image_size=size)
    t_compiled, t_ref, _ = time_against(
        benchmark,
        lambda: train(images, cfg, tmp_path / "run"),
        lambda: _reference_train_seconds(size, n),
        "train() with the reference ops",
    )
    frames = cfg.epochs * n
    fps, fps_ref = frames / t_compiled, frames / t_ref
    benchmark.extra_info.update(frames_per_s=fps, frames_per_s_reference=fps_ref)
    print(
        f"\ntraining {size}x{size}, {frames} frames in batches of 32, 1 thread: "
        f"compiled ops {fps:.1f} frames/s, reference ops {fps_ref:.1f} frames/s ({t_ref / t_compiled:.2f}x)"
    )


@pytest.mark.benchmark(group="training")
def test_ref_share_of_epoch(benchmark, tmp_path):
    """L_ref (forward + backward, per step) and the H_ref rebuild (M_ref = 1024 encodes, per epoch)
    against a whole training step, extrapolated to an epoch of ``NOMINAL_EPOCH`` frames."""
    cfg = _cfg(m_ref=1024)
    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    images = _images(1024, tmp_path)
    device = torch.device("cpu")
    loss_fn = rec_loss(cfg.rec_loss)
    x = to_float(torch.from_numpy(np.array(images[: cfg.batch_size])), device)
    h_ref = encode_frames(model, images, torch.arange(1024), cfg, device)
    z_fixed = torch.randn(cfg.batch_size, cfg.latent_dim)

    def step():
        recon, z = model(x)
        loss = loss_fn(recon, x) + cfg.lambda_ref * ref_loss(z, h_ref)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def lref():
        z = z_fixed.clone().requires_grad_(True)
        ref_loss(z, h_ref).backward()

    rows = torch.randperm(1024)[: cfg.m_ref].sort().values
    model.train()
    t = interleaved_best({"step": step, "lref": lref}, rounds=3)
    benchmark.pedantic(lambda: encode_frames(model, images, rows, cfg, device), rounds=2, iterations=1)
    t_href = benchmark.stats.stats.min
    steps = NOMINAL_EPOCH // cfg.batch_size
    epoch = steps * t["step"] + t_href
    share = (steps * t["lref"] + t_href) / epoch
    benchmark.extra_info.update(step_ms=1e3 * t["step"], lref_ms=1e3 * t["lref"], href_s=t_href, share=share)
    print(
        f"\nstep (batch 32) {1e3 * t['step']:.1f} ms, of which L_ref fwd+bwd {1e3 * t['lref']:.2f} ms; "
        f"H_ref rebuild (1024 frames) {t_href:.2f} s; epoch of {NOMINAL_EPOCH} frames ~{epoch:.0f} s, "
        f"L_ref + H_ref share {share:.1%} (target <= {MAX_REF_SHARE:.0%})"
    )
    assert share <= MAX_REF_SHARE


@pytest.mark.benchmark(group="scoring")
def test_score_throughput_fused_vs_reference(benchmark, monkeypatch, tmp_path):
    """The row times score_frames (pcc + mse, the network's forward included) with the fused ops;
    the same call with their PyTorch reference twins takes turns with it."""
    cfg = _cfg(score_batch=128)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    images = _images(N_SCORE, tmp_path)
    device = torch.device("cpu")

    def with_reference():
        with monkeypatch.context() as m:
            for name in ("pcc_mse", "frame_stats", "patch_mse", "patch_detail", "nn_ref"):
                m.setattr(ops, name, getattr(reference, name))
            return score_frames(model, images, cfg, device)

    ref = with_reference()
    t_fused, t_ref, fused = time_against(
        benchmark,
        lambda: score_frames(model, images, cfg, device),
        timed(with_reference),
        "score_frames with the reference ops",
        rounds=3,
    )
    np.testing.assert_allclose(fused["pcc"], ref["pcc"], atol=1e-5)
    fps_fused, fps_ref = N_SCORE / t_fused, N_SCORE / t_ref
    benchmark.extra_info.update(frames_per_s=fps_fused, frames_per_s_reference=fps_ref)
    print(
        f"\nscoring {SIZE}x{SIZE} (pcc+mse, model forward included): fused {fps_fused:.0f} frames/s, "
        f"reference {fps_ref:.0f} frames/s ({t_ref / t_fused:.2f}x)"
    )


# The default score's per-batch passes (every fused op and pooling it reads) against the network's
# forward pass at the paper's frame size: scoring 10^5-10^6 frames should cost about one forward each.
MAX_SCORE_PASS_SHARE = 0.25


@pytest.mark.benchmark(group="scoring")
def test_score_passes_cost_little_beside_the_forward(benchmark):
    """The row times the default score's passes (pcc/mse too) on 16 frames at 224x224; the network's
    forward on the same batch, the baseline, takes turns with it. They must cost a small share of it."""
    cfg = _cfg(image_size=224)
    model = build_model(cfg).eval().to(memory_format=torch.channels_last)
    x = torch.rand(16, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    inputs = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        recon, z = model(inputs)
    batch = Batch(x, recon.float().contiguous(), z.float().contiguous(), slice(0, 16), None)
    names = ("pcc", "mse", *COMBINED[cfg.score][0])
    scorers = list(dict.fromkeys(SCORERS[n] for n in names))
    assert len(scorers) >= 5, scorers  # pcc_mse, frame_stats, patch_mse, tile_rgb, patch_detail

    def passes():
        return [s(batch) for s in scorers]

    def forward():
        with torch.no_grad():
            model(inputs)

    with torch.no_grad():
        t_passes, t_forward, _ = time_against(
            benchmark, passes, timed(forward), "the network's forward", rounds=3
        )
    share = t_passes / t_forward
    benchmark.extra_info.update(share_of_forward=share)
    print(
        f"\nscoring 224x224, 16 frames, one thread: forward {t_forward * 1e3:.0f} ms, "
        f"{len(scorers)} score passes {t_passes * 1e3:.0f} ms ({share:.0%} of the forward)"
    )
    assert share <= MAX_SCORE_PASS_SHARE


@pytest.mark.benchmark(group="data")
def test_loader_outpaces_training_step(benchmark, tmp_path):
    """The training loader alone (memmap -> uint8 batch in a shuffled order -> float on the
    device, as ``train`` does it, no workers) against a full training step."""
    cfg = _cfg()
    images = _images(N_TRAIN, tmp_path)
    device = torch.device("cpu")
    order = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(0))
    batches = [b.tolist() for b in order.split(cfg.batch_size)]

    def load_all():
        loader = torch.utils.data.DataLoader(
            FrameDataset(images), batch_sampler=batches, collate_fn=collate_batch, num_workers=0
        )
        for batch in loader:
            to_float(batch, device)

    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = rec_loss(cfg.rec_loss)
    h_ref = torch.randn(cfg.m_ref, cfg.latent_dim)
    x = to_float(torch.from_numpy(np.array(images[: cfg.batch_size])), device)

    def step():
        recon, z = model(x)
        loss = loss_fn(recon, x) + cfg.lambda_ref * ref_loss(z, h_ref)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t = interleaved_best({"load": load_all, "step": step}, rounds=3)
    benchmark.pedantic(load_all, rounds=3, iterations=1)
    loader_fps = N_TRAIN / min(t["load"], benchmark.stats.stats.min)
    step_fps = cfg.batch_size / t["step"]
    benchmark.extra_info.update(loader_fps=loader_fps, step_fps=step_fps, ratio=loader_fps / step_fps)
    print(
        f"\nloader alone {loader_fps:.0f} frames/s, training step {step_fps:.1f} frames/s "
        f"({loader_fps / step_fps:.0f}x, target >= {MIN_LOADER_OVER_STEP:.0f}x)"
    )
    assert loader_fps >= MIN_LOADER_OVER_STEP * step_fps
