"""Trimmed training: from the first epoch in ``trim_at`` on, the network trains only on frames it
does not already find doubtful, so it cannot learn to reproduce a corrupted run."""

import json

import numpy as np
import pytest
import torch

from cae_fast.cli.flags import build_parser, config_from_args
from cae_fast.config import EPOCH_FRAMES, EPOCHS, KEEP_ORDINARY_C, TRAIN_EPOCHS, TRIM_AT, TRIM_K, Config
from cae_fast.model.zoo import build_model
from cae_fast.train.loop import CHECKPOINT_NAME, LOG_NAME, load_checkpoint, train, trusted_frames

N, RUN = 120, slice(50, 70)


def _frames() -> np.ndarray:
    """Smooth, slowly moving gradients with one run of pure noise frames (the corrupted run)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    frames = []
    for i in range(N):
        t = i / N
        img = np.stack([xx * (0.5 + t / 2), yy, (xx + yy) / 2 * (1 - t / 2)], axis=-1)
        frames.append(img)
    images = (np.stack(frames) * 255).astype(np.uint8)
    images[RUN] = rng.integers(0, 256, size=images[RUN].shape, dtype=np.uint8)
    return images


def _cfg(**kw) -> Config:
    base = dict(image_size=32, latent_dim=16, channels=(8, 16), epochs=3, batch_size=16, m_ref=32)
    base.update(progress=False, data="x")
    return Config(**{**base, **kw}).resolved()


def test_trusted_frames_leave_out_the_corrupted_run():
    images = _frames()
    cfg = _cfg(median_k=(5,))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    keep = trusted_frames(model, images, cfg, torch.device("cpu")).numpy()
    assert keep.dtype == np.int64 and np.all(np.diff(keep) > 0)
    assert not np.isin(np.arange(N)[RUN], keep).any()  # the whole noise run is left out
    assert len(keep) >= N // 2


def test_never_fewer_than_half_of_the_frames_are_kept():
    images = _frames()
    cfg = _cfg(median_k=(1,), trim_k=-50.0)  # a cut that every frame fails
    keep = trusted_frames(build_model(cfg).eval(), images, cfg, torch.device("cpu")).numpy()
    assert len(keep) == N // 2


def test_training_trims_from_the_first_judgement_and_logs_the_frames(tmp_path):
    images = _frames()
    _, hist = train(images, _cfg(trim_at=(1,), median_k=(5,)), tmp_path)
    assert hist[0].frames == N  # the first epoch sees every frame
    assert all(N // 2 <= h.frames <= N - (RUN.stop - RUN.start) for h in hist[1:])
    assert len({h.frames for h in hist[1:]}) == 1  # judged once, then fixed
    pool = load_checkpoint(tmp_path / CHECKPOINT_NAME)["pool"].numpy()
    assert len(pool) == hist[-1].frames and not np.isin(np.arange(N)[RUN], pool).any()
    log = [json.loads(line) for line in (tmp_path / LOG_NAME).read_text().splitlines()]
    assert [e["frames"] for e in log] == [h.frames for h in hist]


def test_each_judgement_takes_every_frame_and_the_last_one_stays(tmp_path, monkeypatch):
    import cae_fast.train.loop as train_mod

    returned, judged = [], train_mod.trusted_frames

    # Each judgement also leaves out a different frame of its own, so the two results differ.
    def spy(model, images, cfg, device):
        keep = judged(model, images, cfg, device).numpy()
        returned.append(np.delete(keep, len(keep) // 4 + len(returned)))
        return torch.from_numpy(returned[-1])

    monkeypatch.setattr(train_mod, "trusted_frames", spy)
    _, hist = train(_frames(), _cfg(trim_at=(1, 2), median_k=(5,), epochs=4), tmp_path)
    assert len(returned) == 2  # judged before epochs 1 and 2 only, not before 3
    assert not np.array_equal(returned[0], returned[1])
    pool = load_checkpoint(tmp_path / CHECKPOINT_NAME)["pool"].numpy()
    # the last judgement replaces the first: no union or intersection of the two
    assert np.array_equal(pool, returned[1])
    assert hist[3].frames == hist[2].frames == len(pool)


def test_no_trimming_trains_on_every_frame(tmp_path):
    _, hist = train(_frames(), _cfg(trim_k=0.0, trim_at=(0,)), tmp_path)
    assert [h.frames for h in hist] == [N] * 3


@pytest.mark.parametrize("trim_at", [(1,), (1, 2)])
def test_resume_with_trimming_reaches_the_same_weights(tmp_path, trim_at):
    images = _frames()
    cfg = _cfg(trim_at=trim_at, median_k=(5,))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, _ = train(images, cfg, tmp_path / "a")
    train(images, _cfg(trim_at=trim_at, median_k=(5,), epochs=2), tmp_path / "b")
    again = _cfg(trim_at=trim_at, median_k=(5,), resume=str(tmp_path / "b" / CHECKPOINT_NAME))
    resumed, hist = train(images, again, tmp_path / "b")
    assert [h.epoch for h in hist] == [3]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], TRIM_K),
        (["--paper"], 0.0),
        (["--train-data", "builtin:digits"], 0.0),
        (["--paper", "--trim-k", "2"], 2.0),
        (["--trim-k", "0"], 0.0),
    ],
)
def test_trim_k_defaults(argv, expected):
    cfg = config_from_args(build_parser().parse_args(["--data", "builtin:digits", *argv]))
    assert cfg.trim_k == expected


def test_trim_at_option():
    parse = build_parser().parse_args
    assert config_from_args(parse(["--data", "builtin:digits"])).trim_at == TRIM_AT
    assert config_from_args(parse(["--data", "x", "--trim-at", "3,1,3"])).trim_at == (1, 3)


def test_trim_at_rejects_a_negative_epoch(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--data", "x", "--trim-at", "2,-1"])
    assert "must be >= 0" in capsys.readouterr().err


def test_the_result_says_which_frames_the_network_never_trained_on(tmp_path, tiny_npz, capsys):
    from conftest import FAST_FLAGS

    from cae_fast.cli.main import main

    def run(out, *flags):
        assert main([*FAST_FLAGS, "--data", str(tiny_npz), "--out", str(tmp_path / out), *flags]) == 0
        with np.load(tmp_path / out / "filter_result.npz") as r:
            return {k: r[k] for k in r.files}, capsys.readouterr().out

    res, out = run("trim", "--epochs", "2", "--trim-at", "1")
    trained_on, n = res["trained_on"], len(res["is_clean"])
    assert trained_on.dtype == np.bool_ and trained_on.shape == (n,)
    log = [json.loads(ln) for ln in (tmp_path / "trim" / LOG_NAME).read_text().splitlines()]
    left_out = n - log[-1]["frames"]
    assert (~trained_on).sum() == left_out > 0
    removed = int((~trained_on & ~res["is_clean"]).sum())
    assert f"left out of training by the trimming (--trim-k): {left_out} frames, {removed} of them" in out
    a, b = res["segments"][0]  # each printed segment says how much of it the network trained on
    assert f"{b - a:>5d} frames)" in out and f"{np.mean(trained_on[a:b]):.0%} trained on" in out
    # keep_ordinary's measure is saved, and no frame it calls ordinary is removed.
    assert res["unusualness"].shape == (n,) and res["is_clean"][res["unusualness"] <= KEEP_ORDINARY_C].all()

    res, out = run("all", "--epochs", "2", "--trim-k", "0", "--keep-ordinary", "0", "--grow-runs", "0")
    assert "unusualness" not in res  # neither --keep-ordinary nor --grow-runs read it
    assert res["trained_on"].all() and "left out of training" not in out
    res, _ = run("again", "--score-only", str(tmp_path / "trim" / CHECKPOINT_NAME))
    assert "trained_on" not in res  # the checkpoint's frames need not be these


def test_epoch_frames_draws_that_many_distinct_frames_from_the_pool(tmp_path, monkeypatch):
    import cae_fast.train.loop as train_mod

    drawn, make_loader = [], train_mod._loader

    def spy(images, batches, workers, device):
        drawn.append([i for b in batches for i in b])
        return make_loader(images, batches, workers, device)

    monkeypatch.setattr(train_mod, "_loader", spy)
    _, hist = train(_frames(), _cfg(trim_at=(1,), median_k=(5,), epoch_frames=40, epochs=4), tmp_path)
    pool = load_checkpoint(tmp_path / CHECKPOINT_NAME)["pool"].numpy()
    assert [h.frames for h in hist] == [40] * 4
    assert [len(set(d)) for d in drawn] == [40] * 4  # no frame twice within an epoch
    assert all(np.isin(d, pool).all() for d in drawn[1:])  # after the judgement: trusted frames only
    assert len({frozenset(d) for d in drawn}) == 4  # a fresh draw every epoch


def test_epoch_frames_beyond_the_pool_is_one_plain_pass(tmp_path):
    images = _frames()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, _ = train(images, _cfg(trim_at=(1,), median_k=(5,), epoch_frames=None), tmp_path / "a")
    capped, hist = train(images, _cfg(trim_at=(1,), median_k=(5,), epoch_frames=10 * N), tmp_path / "b")
    assert hist[0].frames == N
    for k, v in plain.state_dict().items():
        assert torch.equal(v, capped.state_dict()[k]), k


def test_resume_with_epoch_frames_reaches_the_same_weights(tmp_path):
    images = _frames()
    kw = dict(trim_at=(1, 2), median_k=(5,), epoch_frames=48)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, _ = train(images, _cfg(**kw), tmp_path / "a")
    train(images, _cfg(**kw, epochs=2), tmp_path / "b")
    resumed, hist = train(images, _cfg(**kw, resume=str(tmp_path / "b" / CHECKPOINT_NAME)), tmp_path / "b")
    assert [(h.epoch, h.frames) for h in hist] == [(3, 48)]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_training_length_defaults_and_options(capsys):
    def length(*argv: str) -> tuple[int, int | None]:
        cfg = config_from_args(build_parser().parse_args(["--data", "x", *argv]))
        return cfg.epochs, cfg.epoch_frames

    # Mixed data: a fixed number of frames seen; the published recipe and a normal training set:
    # the paper's passes over every frame.
    assert length() == (TRAIN_EPOCHS, EPOCH_FRAMES) == (6, 2400)
    assert length("--paper") == (EPOCHS, None) == (100, None)
    assert length("--train-data", "y") == (EPOCHS, None)
    assert config_from_args(build_parser().parse_args([])).epochs == TRAIN_EPOCHS  # the demo
    assert length("--epoch-frames", "0") == (TRAIN_EPOCHS, None)
    assert length("--epoch-frames", "500", "--epochs", "9") == (9, 500)
    assert length("--paper", "--epochs", "3", "--epoch-frames", "64") == (3, 64)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--data", "x", "--epoch-frames", "-1"])
    assert "must be >= 0" in capsys.readouterr().err


def test_train_frames_trains_on_a_fixed_subset_and_judges_every_frame(tmp_path, monkeypatch):
    import cae_fast.train.loop as train_mod

    drawn, judged, make_loader, judge = [], [], train_mod._loader, train_mod.trusted_frames

    def loader_spy(images, batches, workers, device):
        drawn.append({i for b in batches for i in b})
        return make_loader(images, batches, workers, device)

    def judge_spy(model, images, cfg, device):
        judged.append(len(images))
        return judge(model, images, cfg, device)

    monkeypatch.setattr(train_mod, "_loader", loader_spy)
    monkeypatch.setattr(train_mod, "trusted_frames", judge_spy)
    cfg = _cfg(trim_at=(1,), median_k=(5,), train_frames=48)
    _, hist = train(_frames(), cfg, tmp_path)
    subset = set(train_mod.train_subset(N, cfg).tolist())
    pool = set(load_checkpoint(tmp_path / CHECKPOINT_NAME)["pool"].tolist())
    assert len(subset) == 48 and judged == [N]  # the judgement still sees every frame
    assert drawn[0] == subset and hist[0].frames == 48
    assert pool < subset and all(d == pool for d in drawn[1:])
    assert not np.isin(np.arange(N)[RUN], list(pool)).any()


def test_train_frames_beyond_the_data_and_resume(tmp_path):
    images = _frames()
    for d in "abcd":
        (tmp_path / d).mkdir()
    plain, _ = train(images, _cfg(trim_at=(1,), median_k=(5,), epoch_frames=None), tmp_path / "a")
    capped, _ = train(images, _cfg(trim_at=(1,), median_k=(5,), train_frames=N), tmp_path / "b")
    for k, v in plain.state_dict().items():
        assert torch.equal(v, capped.state_dict()[k]), k
    kw = dict(trim_at=(1, 2), median_k=(5,), train_frames=60)
    full, _ = train(images, _cfg(**kw), tmp_path / "c")
    train(images, _cfg(**kw, epochs=1), tmp_path / "d")
    resumed, hist = train(images, _cfg(**kw, resume=str(tmp_path / "d" / CHECKPOINT_NAME)), tmp_path / "d")
    assert [h.epoch for h in hist] == [2, 3]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_the_result_marks_frames_outside_train_frames(tmp_path, tiny_npz, capsys):
    from conftest import FAST_FLAGS

    from cae_fast.cli.main import NOT_IN_SUBSET, main

    out = tmp_path / "sub"
    flags = ["--data", str(tiny_npz), "--out", str(out), "--epochs", "1", "--trim-k", "0"]
    assert main([*FAST_FLAGS, *flags, "--train-frames", "10"]) == 0
    with np.load(out / "filter_result.npz") as r:
        trained_on, is_clean = r["trained_on"], r["is_clean"]
    assert trained_on.sum() == 10
    removed = int((~trained_on & ~is_clean).sum())
    assert f"{NOT_IN_SUBSET}: {len(trained_on) - 10} frames, {removed} of them" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--data", "x", "--train-frames", "0"])


def test_a_training_subset_with_no_trusted_frame_is_a_clear_error(tmp_path, monkeypatch):
    import cae_fast.train.loop as train_mod
    from cae_fast.errors import InputError

    cfg = _cfg(trim_at=(1,), median_k=(5,), train_frames=4)
    subset = train_mod.train_subset(N, cfg).numpy()
    # a judgement that doubts exactly the subset's frames
    monkeypatch.setattr(
        train_mod, "trusted_frames", lambda *a: torch.from_numpy(np.setdiff1d(np.arange(N), subset))
    )
    with pytest.raises(InputError, match="none of the 4 training frames is trusted"):
        train(_frames(), cfg, tmp_path)
