"""The early network (the one the first trimming judgement used) is kept in the checkpoint, and
``combo_ens`` averages the final and the early network's ``combo_rss``."""

import numpy as np
import pytest
import torch

from cae_fast.cli.main import main
from cae_fast.config import Config
from cae_fast.score.terms import robust_z, score_frames
from cae_fast.train.loop import CHECKPOINT_NAME, EARLY_KEY, load_checkpoint, load_early, load_model, train

CPU = torch.device("cpu")


def _cfg(**kw) -> Config:
    base = dict(image_size=32, latent_dim=16, channels=(8, 16), epochs=3, batch_size=16, m_ref=32)
    base.update(progress=False, data="x", median_k=(5,), trim_at=(1,))
    return Config(**{**base, **kw}).resolved()


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_early_network_is_the_one_of_the_first_judgement(tmp_path, tiny_frames):
    images, _ = tiny_frames
    (tmp_path / "one").mkdir()
    train(images, _cfg(epochs=1), tmp_path / "one")  # stops where the judgement comes
    assert EARLY_KEY not in load_checkpoint(tmp_path / "one" / CHECKPOINT_NAME)
    final, _ = train(images, _cfg(trim_at=(1, 2)), tmp_path / "three")  # judged twice: the first one counts
    state = load_checkpoint(tmp_path / "three" / CHECKPOINT_NAME)
    _same_state(state[EARLY_KEY], load_checkpoint(tmp_path / "one" / CHECKPOINT_NAME)["model"])
    early = load_early(tmp_path / "three" / CHECKPOINT_NAME, CPU)
    assert not early.training
    _same_state(early.state_dict(), state[EARLY_KEY])
    assert not all(torch.equal(v, final.state_dict()[k]) for k, v in state[EARLY_KEY].items())


def test_no_judgement_no_early_network(tmp_path, tiny_frames):
    images, _ = tiny_frames
    train(images, _cfg(trim_k=0.0), tmp_path)
    assert load_early(tmp_path / CHECKPOINT_NAME, CPU) is None
    assert load_model(tmp_path / CHECKPOINT_NAME, CPU) is not None


@pytest.mark.parametrize("stop", [1, 2])
def test_resume_keeps_the_early_network(tmp_path, tiny_frames, stop):
    images, _ = tiny_frames
    train(images, _cfg(), tmp_path / "full")
    train(images, _cfg(epochs=stop), tmp_path / "split")
    train(images, _cfg(resume=str(tmp_path / "split" / CHECKPOINT_NAME)), tmp_path / "split")
    a, b = (load_checkpoint(tmp_path / d / CHECKPOINT_NAME) for d in ("full", "split"))
    _same_state(a[EARLY_KEY], b[EARLY_KEY])
    _same_state(a["model"], b["model"])


def test_combo_ens_averages_the_robust_z_of_both_networks(tmp_path, tiny_frames):
    images, _ = tiny_frames
    cfg = _cfg()
    model, _ = train(images, cfg, tmp_path)
    early = load_early(tmp_path / CHECKPOINT_NAME, CPU)
    got = score_frames(model, images, cfg, CPU, ("mse", "combo_ens"), early)
    final_rss = score_frames(model, images, cfg, CPU, ("combo_rss",))["combo_rss"]
    early_rss = score_frames(early, images, cfg, CPU, ("combo_rss",))["combo_rss"]
    np.testing.assert_array_equal(got["combo_rss"], final_rss)
    np.testing.assert_array_equal(got["combo_rss_early"], early_rss)
    expected = robust_z(final_rss.astype(np.float64) + early_rss)
    np.testing.assert_allclose(got["combo_ens"], expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got["combo_ens"], final_rss, atol=1e-3)  # the early network does count
    assert {"mse", "local", "ssim_excess"} <= got.keys()
    alone = score_frames(model, images, cfg, CPU, ("combo_ens",))  # no early network: combo_rss
    assert "combo_rss_early" not in alone
    np.testing.assert_allclose(alone["combo_ens"], final_rss, atol=1e-5)


def test_score_only_uses_the_early_network_of_the_checkpoint(tmp_path, tiny_npz):
    common = ["--image-size", "32", "--epochs", "3", "--trim-at", "1", "--batch-size", "8", "--m-ref", "16",
              "--median-k", "5", "--no-progress", "--score", "combo_ens"]  # fmt: skip
    assert main(["--data", str(tiny_npz), "--out", str(tmp_path / "a"), *common]) == 0
    ckpt = tmp_path / "a" / CHECKPOINT_NAME
    assert main(["--data", str(tiny_npz), "--out", str(tmp_path / "b"), "--score-only", str(ckpt),
                 *common]) == 0  # fmt: skip
    a, b = (np.load(tmp_path / d / "filter_result.npz") for d in ("a", "b"))
    assert "combo_rss_early" in a.files
    for key in ("combo_ens", "combo_rss", "combo_rss_early", "is_clean"):
        np.testing.assert_array_equal(a[key], b[key])
