"""The ``latent`` score: squared L2 distance from a frame's latent to its nearest H_ref latent,
H_ref drawn from the scored frames with the seed, the frame itself excluded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from conftest import FAST_FLAGS

from cae_fast.config import Config
from cae_fast.model.zoo import build_model
from cae_fast.score.terms import SCORE_NAMES, score_frames

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def _cfg(**kw) -> Config:
    base = dict(image_size=32, latent_dim=16, channels=(8, 16), m_ref=10, score_batch=7, seed=3)
    return Config(**{**base, "progress": False, "data": "x", **kw}).resolved()


def _model(cfg: Config) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _images(n: int = 30, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 32, 32, 3)) * 255).astype(np.uint8)


def _ref_rows(n: int, cfg: Config) -> np.ndarray:
    g = torch.Generator().manual_seed(cfg.seed)
    return torch.randperm(n, generator=g)[: min(cfg.m_ref, n)].sort().values.numpy()


def _brute_force(model, images: np.ndarray, cfg: Config) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        z = model(x)[1].double()
    rows = _ref_rows(len(images), cfg)
    d2 = torch.cdist(z, z[rows]).pow(2).numpy()
    d2[rows, np.arange(len(rows))] = np.inf  # no self-match
    return d2.min(axis=1)


def test_latent_is_a_registered_dirty_high_score():
    assert "latent" in SCORE_NAMES


def test_latent_equals_brute_force_nearest_reference():
    images = _images()
    cfg = _cfg()
    model = _model(cfg)
    got = score_frames(model, images, cfg, CPU, ("latent",))["latent"]
    assert got.shape == (len(images),) and got.dtype == np.float32
    want = _brute_force(model, images, cfg)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    assert np.all(got > 0)


def test_m_ref_is_capped_at_the_number_of_frames():
    images = _images(12)
    cfg = _cfg(m_ref=1024)
    model = _model(cfg)
    got = score_frames(model, images, cfg, CPU, ("latent",))["latent"]
    np.testing.assert_allclose(got, _brute_force(model, images, cfg), rtol=1e-5, atol=1e-9)


def test_a_frame_does_not_match_itself_but_matches_its_copy():
    cfg = _cfg()
    images = _images()
    rows = _ref_rows(len(images), cfg)
    ref, other = int(rows[0]), next(i for i in range(len(images)) if i not in rows)
    images[other] = images[ref]  # `other` (not in H_ref) is a copy of `ref` (in H_ref)
    model = _model(cfg)
    got = score_frames(model, images, cfg, CPU, ("latent",))["latent"]
    typical = float(np.median(got))
    assert got[other] < 1e-6 * typical  # its copy is in H_ref
    assert got[ref] > 1e-2 * typical  # `ref` itself skips its own entry (its copy is not in H_ref)
    np.testing.assert_allclose(got, _brute_force(model, images, cfg), rtol=1e-5, atol=1e-6 * typical)


def test_latent_alone_equals_latent_with_other_scores():
    images = _images()
    cfg = _cfg()
    model = _model(cfg)
    alone = score_frames(model, images, cfg, CPU, ("latent",))
    assert set(alone) == {"latent"}
    together = score_frames(model, images, cfg, CPU, ("pcc", "latent", "loudest"))
    assert {"pcc", "latent", "loudest"} <= set(together)
    np.testing.assert_array_equal(alone["latent"], together["latent"])
    without = score_frames(model, images, cfg, CPU, ("pcc", "loudest"))
    assert "latent" not in without
    np.testing.assert_array_equal(without["pcc"], together["pcc"])
    np.testing.assert_array_equal(without["loudest"], together["loudest"])


def test_cli_score_latent_writes_the_latent_array(tmp_path, tiny_npz):
    env = {k: v for k, v in os.environ.items() if k != "CAE_FAST_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    out_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "cae_fast.run", *FAST_FLAGS, "--score", "latent"]
    cmd += ["--data", str(tiny_npz), "--out", str(out_dir)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with np.load(out_dir / "filter_result.npz", allow_pickle=False) as r:
        res = {k: r[k] for k in r.files}
    assert res["latent"].shape == (48,) and res["latent"].dtype == np.float32
    assert np.all(np.isfinite(res["latent"])) and np.all(res["latent"] >= 0)
    assert {"pcc", "mse", "pcc_med", "is_clean"} <= set(res)
    assert json.loads(str(res["config"]))["score"] == "latent"
