"""Checkpoints written before the early network was dropped (``--score combo_ens``, removed: measured
not better, docs/history.md items 7 and 17) hold an extra ``early_model`` network; they still
load, and the extra network changes nothing. The oracle is the same checkpoint without the key."""

import numpy as np
import pytest
import torch
from conftest import FAST_FLAGS

from cae_fast import FrameFilter
from cae_fast.cli.main import main
from cae_fast.config import Config
from cae_fast.errors import InputError
from cae_fast.model.zoo import build_model
from cae_fast.train.loop import CHECKPOINT_NAME, load_checkpoint, store_in_checkpoint, train

CPU = torch.device("cpu")


def _cfg(**kw) -> Config:
    base = dict(image_size=32, latent_dim=16, channels=(8, 16), epochs=2, batch_size=16, m_ref=32)
    base.update(progress=False, data="x", median_k=(5,), trim_at=(1,))
    return Config(**{**base, **kw}).resolved()


def _with_early_network(src, dst, cfg: Config) -> None:
    """``src``'s checkpoint as the old code wrote it: plus another network under ``early_model``."""
    dst.mkdir()
    (dst / CHECKPOINT_NAME).write_bytes((src / CHECKPOINT_NAME).read_bytes())
    torch.manual_seed(123)
    other = {k: v.clone() for k, v in build_model(cfg).state_dict().items()}
    store_in_checkpoint(dst / CHECKPOINT_NAME, "early_model", other)
    assert "early_model" in load_checkpoint(dst / CHECKPOINT_NAME)


def test_a_trimmed_training_stores_one_network(tmp_path, tiny_frames):
    images, _ = tiny_frames
    train(images, _cfg(), tmp_path)
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert state["pool"] is not None  # the trimming judged, where the early network used to be kept
    assert "early_model" not in state


def test_an_old_checkpoint_scores_and_resumes_as_without_its_early_network(tmp_path, tiny_frames, tiny_npz):
    images, _ = tiny_frames
    cfg = _cfg(epochs=1)
    train(images, cfg, tmp_path / "new")
    _with_early_network(tmp_path / "new", tmp_path / "old", cfg)

    runs = {}
    for name in ("new", "old"):
        ckpt = str(tmp_path / name / CHECKPOINT_NAME)
        out = tmp_path / f"scored_{name}"
        assert main(["--data", str(tiny_npz), "--out", str(out), "--score-only", ckpt, *FAST_FLAGS]) == 0
        runs[name] = np.load(out / "filter_result.npz")
        f = FrameFilter.load(ckpt)
        runs[f"api_{name}"] = f.decision_function(images)
        model, _ = train(images, _cfg(resume=ckpt), tmp_path / f"resumed_{name}")
        runs[f"resumed_{name}"] = model.state_dict()
    for key in ("combined", "pcc", "is_clean"):
        np.testing.assert_array_equal(runs["new"][key], runs["old"][key])
    np.testing.assert_array_equal(runs["api_new"], runs["api_old"])
    for k, v in runs["resumed_new"].items():
        assert torch.equal(v, runs["resumed_old"][k]), k


def test_a_saved_fit_on_the_removed_score_is_one_error(tmp_path, tiny_frames):
    images, _ = tiny_frames
    train(images, _cfg(epochs=1), tmp_path)
    ckpt = tmp_path / CHECKPOINT_NAME
    store_in_checkpoint(ckpt, "config", _cfg(epochs=1, score="combo_ens").to_json())
    with pytest.raises(InputError, match="saved with score 'combo_ens', which this version does not have"):
        FrameFilter.load(ckpt)
