"""Tiny shared fixtures: a few dozen 32x32 frames, so every test runs in seconds on a CPU."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

TINY_SIZE = 32
TINY_FRAMES = 48
# Flags that make a full CLI run take a few seconds: small frames, one epoch, small H_ref.
FAST_FLAGS = [
    "--image-size", str(TINY_SIZE), "--epochs", "1", "--batch-size", "8", "--m-ref", "16",
    "--latent-dim", "32", "--median-k", "5", "--no-progress", "--no-report",
]  # fmt: skip


def drifting_scene(n: int, size: int) -> np.ndarray:
    """``n`` clean float32 frames ``(n, size, size, 3)`` in 0-1: a smooth gradient that drifts
    slowly with the frame index (a video with nothing wrong in it)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    frames = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        base = 0.3 + 0.3 * np.sin(3 * xx + i / 10) * yy
        frames[i] = np.stack([base, base * 0.9, 1 - base], -1)
    return frames


def make_frames(n: int = TINY_FRAMES, size: int = TINY_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth drifting gradient scene; frames 30..35 carry bright blobs (label 1 = dirty)."""
    rng = np.random.default_rng(seed)
    frames = drifting_scene(n, size)
    labels = np.zeros(n, np.uint8)
    labels[30:36] = 1
    for i in range(30, min(36, n)):
        cy, cx = rng.integers(4, size - 4, 2)
        frames[i, cy - 3 : cy + 3, cx - 3 : cx + 3] = 1.0
    frames += rng.normal(0, 0.01, frames.shape).astype(np.float32)
    return (np.clip(frames, 0, 1) * 255).astype(np.uint8), labels


@pytest.fixture
def tiny_frames() -> tuple[np.ndarray, np.ndarray]:
    return make_frames()


@pytest.fixture
def tiny_npz(tmp_path, tiny_frames):
    images, labels = tiny_frames
    path = tmp_path / "tiny.npz"
    np.savez(path, images=images, labels=labels)
    return path


@pytest.fixture
def tiny_folder(tmp_path, tiny_frames):
    """PNGs named so that natural and plain sort differ (f2 < f10), in two subfolders."""
    images, _ = tiny_frames
    root = tmp_path / "frames"
    for i, img in enumerate(images):
        sub = root / ("a" if i < len(images) // 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(sub / f"f{i}.png")
    return root


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The tiny models here gain nothing from threads, and on a busy 2-core machine spinning
    OpenMP threads slow every test down several times."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
