"""Issue 31, items 6, 7 and 10: every bad flag or input is one line ``error: ...`` and exit 2,
never a traceback or argparse's usage, and the messages say something true."""

from __future__ import annotations

import numpy as np
import pytest
from reliability_helpers import one_error

import cae_fast.train.loop

BAD_FLAGS = [
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "1e30"], "--lr"),
    (["--lr", "abc"], "--lr"),
    (["--seed", "-1", "--train-frames", "10"], "--seed"),
    (["--workers", "-3"], "--workers"),
    (["--device", "gpu0"], "--device"),
    (["--mad-k", "nan"], "--mad-k"),
    (["--mad-k", "-inf"], "--mad-k"),
    (["--delta-margin", "nan"], "--delta-margin"),
    (["--threshold", "fixed", "--fixed", "inf"], "--fixed"),
    (["--keep-ordinary", "nan"], "--keep-ordinary"),
    (["--grow-runs", "inf"], "--grow-runs"),
    (["--trim-k", "nan"], "--trim-k"),
    (["--kl-weight", "nan"], "--kl-weight"),
    (["--kl-warmup", "inf"], "--kl-warmup"),
    (["--lambda-ref", "nan"], "--lambda-ref"),
    (["--threshold", "contamination", "--contamination", "nan"], "--contamination"),
    (["--image-size", "-16"], "--image-size"),
    (["--arch", "resnet"], "--arch"),
    (["--no-such-flag"], "--no-such-flag"),
]


@pytest.mark.parametrize("flags,flag", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_a_bad_flag_is_one_line_naming_it_with_a_hint_to_help(tmp_path, tiny_npz, flags, flag, capsys):
    line = one_error(["--data", str(tiny_npz), "--out", str(tmp_path / "o"), *flags], capsys)
    assert line.startswith(f"error: {flag}") and line.endswith("--help"), line
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_a_training_that_diverges_is_one_line(tmp_path, tiny_npz, monkeypatch, capsys):
    monkeypatch.setattr(
        cae_fast.train.loop, "rec_loss", lambda name: lambda recon, x: (recon - x).sum() * float("nan")
    )
    line = one_error(["--data", str(tiny_npz), "--out", str(tmp_path / "o")], capsys)
    assert line == "error: --lr: loss became nan at epoch 1; try a lower --lr"


def test_object_dtype_labels_in_an_npz(tmp_path, tiny_frames, capsys):
    images, labels = tiny_frames
    path = tmp_path / "x.npz"
    np.savez(path, images=images, labels=np.array([int(v) for v in labels], dtype=object))
    line = one_error(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert line == f"error: {path}: 'labels' has dtype object; expected 0/1 integers, one per frame"


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_an_empty_array_says_it_holds_no_frames(tmp_path, suffix, capsys):
    path = tmp_path / f"empty{suffix}"
    empty = np.zeros((0, 32, 32, 3), np.uint8)
    np.save(path, empty) if suffix == ".npy" else np.savez(path, images=empty)
    line = one_error(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert str(path) in line and "holds no frames" in line and "none of the 0" not in line


@pytest.mark.parametrize("size,examples", [("8", "e.g. 16"), ("40", "e.g. 32 or 48")])
def test_image_size_message_gives_distinct_valid_sizes(tmp_path, tiny_npz, size, examples, capsys):
    line = one_error(["--data", str(tiny_npz), "--out", str(tmp_path / "o"), "--image-size", size], capsys)
    assert line.endswith(examples), line


def test_out_that_is_a_file(tmp_path, tiny_npz, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a file")
    line = one_error(["--data", str(tiny_npz), "--out", str(blocker)], capsys)
    assert line == f"error: {blocker}: is a file, not a folder; --out needs a folder"
    assert blocker.read_text() == "a file"
