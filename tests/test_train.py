import json

import numpy as np
import pytest
import torch

from cae_fast.config import Config
from cae_fast.errors import InputError
from cae_fast.model.encode import encode_frames
from cae_fast.train.loop import CHECKPOINT_NAME, LOG_NAME, load_checkpoint, load_model, train


def _cfg(**kw) -> Config:
    base = dict(image_size=32, latent_dim=16, epochs=2, batch_size=8, m_ref=16, progress=False, data="x")
    return Config(**{**base, **kw}).resolved()


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("exclude_self", [False, True])
def test_resume_reaches_the_same_weights(tmp_path, tiny_frames, exclude_self):
    images, _ = tiny_frames
    (tmp_path / "full").mkdir()
    (tmp_path / "split").mkdir()
    full, _ = train(images, _cfg(ref_exclude_self=exclude_self), tmp_path / "full")

    train(images, _cfg(epochs=1, ref_exclude_self=exclude_self), tmp_path / "split")
    resumed, hist = train(
        images,
        _cfg(resume=str(tmp_path / "split" / CHECKPOINT_NAME), ref_exclude_self=exclude_self),
        tmp_path / "split",
    )
    assert [h.epoch for h in hist] == [2]  # only the missing epoch ran
    _same_state(full.state_dict(), resumed.state_dict())
    a = load_checkpoint(tmp_path / "full" / CHECKPOINT_NAME)
    b = load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)
    assert a["epoch"] == b["epoch"] == 2
    assert torch.equal(a["rng"]["generator"], b["rng"]["generator"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    log_full = [json.loads(x) for x in (tmp_path / "full" / LOG_NAME).read_text().splitlines()]
    log_split = [json.loads(x) for x in (tmp_path / "split" / LOG_NAME).read_text().splitlines()]
    assert [e["epoch"] for e in log_split] == [1, 2]
    assert [e["l_rec"] for e in log_full] == [e["l_rec"] for e in log_split]


def test_training_reduces_reconstruction_error_and_logs(tmp_path, tiny_frames):
    images, _ = tiny_frames
    run_dir = tmp_path / "not" / "yet"  # made by train
    _, hist = train(images, _cfg(epochs=3, lr=2e-3), run_dir)
    assert hist[-1].l_rec < hist[0].l_rec
    assert all(h.mean_z_norm > 0 and h.frames_per_s > 0 for h in hist)
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_NAME, LOG_NAME]  # no temp files left


def test_h_ref_is_encoded_in_eval_mode_and_leaves_training_mode(tmp_path, tiny_frames):
    images, _ = tiny_frames
    model, _ = train(images, _cfg(epochs=1), tmp_path)
    model.train()
    rows = torch.tensor([0, 5, 7])
    cfg = _cfg(score_batch=2)
    z = encode_frames(model, images, rows, cfg, torch.device("cpu"))
    assert model.training
    x = torch.from_numpy(images[[0, 5, 7]]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = model.eval().encode(x)
    torch.testing.assert_close(z, expected)


def test_checkpoint_roundtrip_and_mismatch(tmp_path, tiny_frames):
    images, _ = tiny_frames
    model, _ = train(images, _cfg(epochs=1), tmp_path)
    loaded = load_model(tmp_path / CHECKPOINT_NAME, torch.device("cpu"))
    assert not loaded.training
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model.eval()(x)[0])
    with pytest.raises(InputError, match="differs"):
        train(images, _cfg(latent_dim=8, resume=str(tmp_path / CHECKPOINT_NAME)), tmp_path / "x")
    with pytest.raises(InputError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_m_ref_larger_than_data_uses_all_frames(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (10, 32, 32, 3), dtype=np.uint8)
    _, hist = train(images, _cfg(epochs=1, m_ref=1024), tmp_path)
    assert np.isfinite(hist[0].l_ref)


def test_l2_ref_norm_is_scale_invariant_and_paper_norm_is_not():
    from cae_fast.model.losses import ref_loss

    g = torch.Generator().manual_seed(0)
    z, h = torch.randn(16, 8, generator=g), torch.randn(32, 8, generator=g)
    # Shrinking every latent lowers the literal L_ref 100-fold (the collapse it invites) ...
    assert ref_loss(0.1 * z, 0.1 * h, norm="none") == pytest.approx(0.01 * ref_loss(z, h, norm="none").item())
    # ... and leaves the normalised one unchanged.
    assert ref_loss(0.1 * z, 0.1 * h, norm="l2") == pytest.approx(ref_loss(z, h, norm="l2").item(), rel=1e-5)
    with pytest.raises(ValueError, match="unknown ref norm"):
        ref_loss(z, h, norm="cosine")
