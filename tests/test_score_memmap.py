"""Scoring a read-only memmap (the frame cache) gives the scores of the same frames in memory and
leaves the memmap readable (``data.cache.release_rows`` only drops scored pages from the resident set)."""

from __future__ import annotations

import numpy as np
import torch
from conftest import make_frames

from cae_fast.config import Config
from cae_fast.model.zoo import build_model
from cae_fast.score.terms import score_frames


def test_memmap_scores_match_array(tmp_path):
    images, _ = make_frames(n=40)
    path = tmp_path / "frames.u8"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=images.shape)
    mm[:] = images
    mm.flush()
    del mm
    frames = np.memmap(path, dtype=np.uint8, mode="r", shape=images.shape)
    cfg = Config(image_size=32, latent_dim=16, channels=(8, 16), data="x", score_batch=7).resolved()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    a = score_frames(model, images, cfg, torch.device("cpu"))
    b = score_frames(model, frames, cfg, torch.device("cpu"))
    for name in ("pcc", "mse"):
        np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(np.asarray(frames), images)
