"""Train on normal data, score a test set: --train-data, scores.csv, --threshold best-f1 and its
cut reused by --score-only, through ``main([...])``."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from cae_fast import config as C
from cae_fast.cli.flags import build_parser, config_from_args
from cae_fast.cli.main import main
from cae_fast.decide.best_f1 import CHECKPOINT_KEY
from cae_fast.output.export import write_scores_csv

# A tiny network on 16x16 digits: each run takes about a second.
TINY = [
    "--image-size", "16", "--channels", "8,16", "--latent-dim", "16", "--epochs", "1", "--batch-size", "16",
    "--m-ref", "32", "--no-progress", "--score", "pcc",
]  # fmt: skip
DIGITS = ["--train-data", "builtin:digits:120", "--data", "builtin:digits:60"]


def _main_ok(args, capsys) -> str:
    rc = main([*TINY, *args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return captured.out


def _result(run_dir) -> dict:
    with np.load(run_dir / "filter_result.npz", allow_pickle=False) as r:
        return {k: r[k] for k in r.files}


def test_train_data_best_f1_csv_and_the_cut_reused_by_score_only(tmp_path, capsys):
    run = tmp_path / "run"
    args = [*DIGITS, "--val-data", "builtin:digits:40", "--threshold", "best-f1", "--out", str(run)]
    out = _main_ok(args, capsys)
    assert "training on 120 frames from builtin:digits:train:120" in out
    assert "chosen on --val-data builtin:digits:val:40 (40 frames)" in out
    assert "precision" in out and "true dirty" in out  # the confusion at the cut is printed

    res = _result(run)
    stored = torch.load(run / "checkpoint.pt", weights_only=True)[CHECKPOINT_KEY]
    assert stored["score"] == "pcc" and stored["n_frames"] == 40
    assert float(res["delta"]) == pytest.approx(stored["value"])
    np.testing.assert_array_equal(res["is_clean"], res["pcc_med"] <= stored["value"])

    with open(run / "scores.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "score"] and len(rows) == 61
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(60)]
    # higher = more anomalous: the filtered score itself (for pcc, 1 - the filtered correlation)
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], res["pcc_med"], rtol=1e-6)

    # Later scoring of other data applies the stored cut, not one chosen on that data's labels.
    again = tmp_path / "again"
    out = _main_ok(["--score-only", str(run / "checkpoint.pt"), "--data", "builtin:digits:test:30",
                    "--threshold", "best-f1", "--out", str(again)], capsys)  # fmt: skip
    assert f"stored in {run / 'checkpoint.pt'}" in out
    res2 = _result(again)
    assert float(res2["delta"]) == pytest.approx(stored["value"])
    np.testing.assert_array_equal(res2["is_clean"], res2["pcc_med"] <= stored["value"])


def test_best_f1_on_the_scored_labels_when_there_is_no_val_data(tmp_path, capsys):
    from sklearn.metrics import f1_score

    out = _main_ok([*DIGITS, "--threshold", "best-f1", "--out", str(tmp_path)], capsys)
    assert "chosen on the labels of the scored data (60 frames)" in out
    res = _result(tmp_path)
    # the F1 at the cut is the best any cut on these scores reaches
    dirt, y = res["pcc_med"].astype(np.float64), res["labels"]
    best = max(f1_score(y, dirt >= v) for v in np.unique(dirt))
    assert float(res["eval_f1"]) == pytest.approx(best)


@pytest.mark.parametrize(
    "args, median_k",
    [
        (["--data", "v.npz"], C.MEDIAN_KS),  # a sequence: filtered over the frame index
        (["--data", "v.npz", "--train-data", "t.npz"], (1,)),  # a test set: each image on its own
        (["--data", "builtin:digits"], (1,)),
        (["--data", "v.npz", "--train-data", "t.npz", "--median-k", "5"], (5,)),  # asked for
    ],
)
def test_median_filter_is_off_by_default_for_a_test_set(args, median_k):
    assert config_from_args(build_parser().parse_args([*args, "--out", "o"])).median_k == median_k


def _settings(*args: str) -> dict:
    cfg = config_from_args(build_parser().parse_args(["--data", "v.npz", *args, "--out", "o"]))
    keys = (
        "epochs",
        "epoch_frames",
        "trim_k",
        "keep_ordinary",
        "grow_runs",
        "median_k",
        "score",
        "threshold",
    )
    return {k: getattr(cfg, k) for k in keys}


def test_train_data_and_paper_set_what_the_flags_help_documents():
    """The paper's 100 passes over every frame (and its 101-frame filter, PCC and delta rule with
    --paper); none of our trimming, keep_ordinary or grow_runs; flags given explicitly still win."""
    plain = _settings()
    normal = dict(epochs=100, epoch_frames=None, trim_k=0.0, keep_ordinary=0.0, grow_runs=0.0, median_k=(1,))
    assert _settings("--train-data", "t.npz") == {**plain, **normal}
    paper = dict(normal, median_k=(101,), score="pcc", threshold="paper")
    assert _settings("--paper") == paper
    assert _settings("--paper", "--train-data", "t.npz") == dict(paper, median_k=(1,))  # a test set
    assert _settings("--train-data", "t.npz", "--epochs", "3", "--epoch-frames", "500", "--trim-k", "1.5",
                     "--keep-ordinary", "0.5", "--grow-runs", "2") == {**plain, "epochs": 3,
                     "epoch_frames": 500, "trim_k": 1.5, "keep_ordinary": 0.5, "grow_runs": 2.0,
                     "median_k": (1,)}  # fmt: skip


def _error(args, capsys) -> str:
    rc = main([*TINY, *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_train_data_of_another_image_size_is_one_line_error(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (40, 24, 24, 3), dtype=np.uint8))
    np.save(tmp_path / "test.npy", rng.integers(0, 255, (20, 3, 32, 32), dtype=np.uint8))  # channels first
    line = _error(["--train-data", str(tmp_path / "train.npz"), "--data", str(tmp_path / "test.npy"),
                   "--out", str(tmp_path / "o")], capsys)  # fmt: skip
    assert "train.npz" in line and "24x24" in line and "32x32" in line


@pytest.mark.parametrize(
    "args, words",
    [
        (["--threshold", "best-f1", "--labels", "{none}"], "no such labels"),
        (["--data", "builtin:mnist"], "unknown built-in"),
        (["--threshold", "best-f1", "--val-data", "{unlabelled}"], "needs labels"),
        (["--score-only", "{ckpt}", "--train-data", "builtin:digits"], "not train"),
    ],
)
def test_bad_workflow_inputs_are_one_line_errors(tmp_path, capsys, args, words):
    np.save(tmp_path / "unlabelled.npy", np.zeros((10, 16, 16, 3), np.uint8))
    subst = {"{none}": str(tmp_path / "none.txt"), "{unlabelled}": str(tmp_path / "unlabelled.npy"),
             "{ckpt}": str(tmp_path / "none.pt")}  # fmt: skip
    args = ["--data", "builtin:digits:40", *(subst.get(a, a) for a in args), "--out", str(tmp_path / "o")]
    line = _error(args, capsys)
    assert words in line


def test_scores_csv_quotes_paths_with_commas(tmp_path):
    write_scores_csv(tmp_path, ["a,b.png", "c.png"], np.array([0.5, -1.25], np.float32))
    with open(tmp_path / "scores.csv", newline="") as f:
        assert list(csv.reader(f)) == [["id", "score"], ["a,b.png", "0.5"], ["c.png", "-1.25"]]
