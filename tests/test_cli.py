"""The whole job through ``main([...])``: outputs, the published rule, backends, every bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_FLAGS, make_frames
from PIL import Image
from scipy import ndimage

from cae_fast.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def _run_ok(args, capsys) -> str:
    rc = main([*FAST_FLAGS, *args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return captured.out


def _error(args, capsys) -> str:
    rc = main([*FAST_FLAGS, *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_end_to_end_npz(tmp_path, tiny_npz, capsys):
    before = tiny_npz.read_bytes()
    out = _run_ok(["--data", str(tiny_npz), "--out", str(tmp_path / "run"), "--paper"], capsys)
    assert "ROC-AUC" in out and "dirty removed" in out and "clean kept" in out
    assert tiny_npz.read_bytes() == before  # input untouched

    run = tmp_path / "run"
    with np.load(run / "filter_result.npz", allow_pickle=False) as r:
        res = {k: r[k] for k in r.files}
    n = 48
    for key, dtype in [("pcc", np.float32), ("pcc_med", np.float32), ("mse", np.float32), ("index", np.int64),
                       ("is_clean", np.bool_), ("labels", np.uint8)]:  # fmt: skip
        assert res[key].shape == (n,) and res[key].dtype == dtype, key
    assert res["delta"].shape == () and res["delta"].dtype == np.float64
    assert "paths" not in res  # array input: no per-frame files
    np.testing.assert_array_equal(res["index"], np.arange(n))
    # The published rule, applied to what was saved.
    # pcc is 1 - PCC (higher = dirtier): PCC_med >= median(PCC_med) - 0.05 is pcc_med <= median + 0.05.
    assert float(res["delta"]) == pytest.approx(float(np.median(res["pcc_med"])) + 0.05)
    np.testing.assert_array_equal(res["is_clean"], res["pcc_med"] <= res["delta"])
    assert np.all(np.isfinite(res["pcc"])) and np.all(res["mse"] >= 0)
    meta = json.loads(str(res["config"]))
    assert meta["config"]["median_k"] == [5] and meta["config"]["image_size"] == 32

    kept = (run / "kept.txt").read_text().splitlines()
    removed = (run / "removed.txt").read_text().splitlines()
    assert len(kept) == res["is_clean"].sum() and len(kept) + len(removed) == n
    assert kept[0].endswith("tiny.npz[0]") or removed[0].endswith("tiny.npz[0]")
    log = [json.loads(ln) for ln in (run / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1] and {"l_rec", "l_ref", "mean_z_norm", "frames_per_s"} <= set(
        log[0]
    )
    assert (run / "checkpoint.pt").is_file()
    assert not [p for p in run.iterdir() if ".tmp" in p.name]


def test_folder_paths_and_score_only(tmp_path, tiny_folder, capsys):
    _run_ok(["--data", str(tiny_folder), "--out", str(tmp_path / "a")], capsys)
    with np.load(tmp_path / "a" / "filter_result.npz") as r:
        paths = r["paths"].tolist()
        pcc_trained = r["pcc"]
    assert paths[:3] == [str(tiny_folder / "a" / f"f{i}.png") for i in range(3)]  # natural order
    listed = (tmp_path / "a" / "kept.txt").read_text().splitlines()
    listed += (tmp_path / "a" / "removed.txt").read_text().splitlines()
    assert sorted(listed) == sorted(paths)

    out = _run_ok(["--data", str(tiny_folder), "--score-only", str(tmp_path / "a" / "checkpoint.pt"),
                   "--out", str(tmp_path / "b")], capsys)  # fmt: skip
    assert "no training" in out and "cache reused" in out
    assert not (tmp_path / "b" / "checkpoint.pt").exists()
    with np.load(tmp_path / "b" / "filter_result.npz") as r:
        np.testing.assert_array_equal(r["pcc"], pcc_trained)


def test_backends_give_the_same_filter_result(tmp_path, tiny_npz):
    """Subprocesses, because the backend is chosen once at import. Without the compiled extension
    both runs use the reference ops; the test still runs the pipeline twice and compares."""
    results = {}
    for name in ("default", "reference"):
        env = {k: v for k, v in os.environ.items() if k != "CAE_FAST_BACKEND"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        env["OMP_NUM_THREADS"] = "1"  # see conftest: threads only slow these tiny runs down
        if name == "reference":
            env["CAE_FAST_BACKEND"] = "reference"
        out_dir = tmp_path / name
        cmd = [
            sys.executable,
            "-m",
            "cae_fast.run",
            *FAST_FLAGS,
            "--data",
            str(tiny_npz),
            "--out",
            str(out_dir),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        with np.load(out_dir / "filter_result.npz") as r:
            results[name] = {k: r[k] for k in ("pcc", "pcc_med", "delta", "is_clean")}
            results[name]["backend"] = json.loads(str(r["config"]))["ops_backend"]
    a, b = results["default"], results["reference"]
    assert b["backend"] == "reference"
    np.testing.assert_allclose(a["pcc"], b["pcc"], atol=1e-5)
    np.testing.assert_allclose(a["delta"], b["delta"], atol=1e-5)
    np.testing.assert_array_equal(a["is_clean"], b["is_clean"])


def test_demo_path_uses_builtin_synthetic_data(tmp_path, monkeypatch, capsys):
    """No --data: the synthetic generator's frames and labels flow through (generator stubbed here)."""
    images, labels = make_frames(64)
    kinds = np.where(labels == 1, 1, -1).astype(np.int8)
    fake = types.ModuleType("cae_fast.data.synth")
    fake.KINDS = ("raindrop", "mud")
    fake.SynthSpec = lambda **kw: types.SimpleNamespace(**kw)
    fake.generate = lambda spec: types.SimpleNamespace(images=images[: spec.n_frames], labels=labels,
                                                       kinds=kinds)  # fmt: skip
    monkeypatch.setitem(sys.modules, "cae_fast.data.synth", fake)
    out = _run_ok(["--demo-frames", "64", "--out", str(tmp_path / "demo"), "--no-report"], capsys)
    assert "synthetic" in out and "ROC-AUC" in out
    assert "per kind" in out and "mud" in out  # kinds flow through to the per-kind evaluation
    with np.load(tmp_path / "demo" / "filter_result.npz") as r:
        np.testing.assert_array_equal(r["labels"], labels)


def test_help_shows_paper_defaults(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    paper = [("--lr", "0.0005"), ("--batch-size", "32"), ("--delta-margin", "0.05"),
             ("--lambda-ref", "1.0"), ("--latent-dim", "256")]  # fmt: skip
    for flag, default in paper:
        assert flag in text and f"default: {default}" in text
    assert "paper: 100" in text and "paper: 1024" in text and "paper: 224" in text and "paper: 101" in text
    assert "--paper" in text and "default: 21;" in text  # the published recipe as one switch


def test_help_names_every_builtin_set(capsys):
    from cae_fast.data.builtin import DEFAULT_SIZE

    assert main(["--help"]) == 0
    text = "".join(capsys.readouterr().out.split())  # argparse wraps anywhere, even at a hyphen
    for name in DEFAULT_SIZE:  # "drive" must not pass for "drive-clean" alone
        assert re.search(rf"builtin:{re.escape(name)}(?![-\w])", text), name


def test_median_k_larger_than_data_warns_and_shrinks(tmp_path, tiny_npz, capsys):
    rc = main([*FAST_FLAGS, "--data", str(tiny_npz), "--out", str(tmp_path / "r"), "--median-k", "101"])
    err = capsys.readouterr().err
    assert rc == 0 and "warning: only 48 frames" in err and "k = 47" in err
    with np.load(tmp_path / "r" / "filter_result.npz") as r:
        assert json.loads(str(r["config"]))["median_k_used"] == [47]


# ---- bad input: one line "error: <path>: <problem>", exit code 2 ----------------------------------


def test_missing_path(tmp_path, capsys):
    line = _error(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], capsys)
    assert str(tmp_path / "nope") in line and "no such file" in line


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    line = _error(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], capsys)
    assert "empty" in line and "no images" in line


def test_truncated_image_and_skip_bad(tmp_path, tiny_folder, capsys):
    bad = tiny_folder / "a" / "f3.png"
    bad.write_bytes(bad.read_bytes()[:200])
    line = _error(["--data", str(tiny_folder), "--out", str(tmp_path / "o")], capsys)
    assert str(bad) in line and "cannot decode" in line
    _run_ok(["--data", str(tiny_folder), "--out", str(tmp_path / "s"), "--skip-bad"], capsys)
    with np.load(tmp_path / "s" / "filter_result.npz") as r:
        assert r["skipped_paths"].tolist() == [str(bad)] and len(r["pcc"]) == 47
        assert str(bad) not in r["paths"].tolist()


def test_unreadable_image(tmp_path, tiny_folder, capsys):
    (tiny_folder / "a" / "f0.png").write_bytes(b"this is not a png")
    line = _error(["--data", str(tiny_folder), "--out", str(tmp_path / "o")], capsys)
    assert "f0.png" in line and "cannot decode" in line


@pytest.mark.parametrize(
    "array,problem",
    [
        (np.zeros((4, 8), np.uint8), "shape"),
        (np.zeros((48, 32, 32, 3), np.int32), "dtype"),
        (np.full((48, 32, 32, 3), 1.5, np.float32), "[0, 1]"),
        (np.full((48, 32, 32, 3), -0.1, np.float32), "[0, 1]"),
    ],
)
def test_bad_npy(tmp_path, capsys, array, problem):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    line = _error(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert str(path) in line and problem in line


def test_npz_without_images(tmp_path, capsys):
    path = tmp_path / "x.npz"
    np.savez(path, frames=np.zeros((48, 32, 32, 3), np.uint8))
    line = _error(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert str(path) in line and "'images'" in line and "frames" in line


def test_labels_of_wrong_length(tmp_path, tiny_frames, capsys):
    images, labels = tiny_frames
    path = tmp_path / "x.npz"
    np.savez(path, images=images, labels=labels[:-3])
    line = _error(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert str(path) in line and "labels" in line and "48" in line


def test_output_not_writable(tmp_path, tiny_npz, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")  # root ignores permission bits; a file in the way stops anyone
    line = _error(["--data", str(tiny_npz), "--out", str(blocker / "run")], capsys)
    assert str(blocker / "run") in line and "not writable" in line


def test_image_size_not_valid(tmp_path, tiny_npz, capsys):
    line = _error(["--data", str(tiny_npz), "--out", str(tmp_path / "o"), "--image-size", "40"], capsys)
    assert "--image-size" in line and "multiple of 16" in line and "32" in line and "48" in line


def test_fewer_frames_than_a_batch(tmp_path, capsys):
    path = tmp_path / "few.npz"
    np.savez(path, images=make_frames(5)[0])
    line = _error(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert str(path) in line and "fewer than one batch" in line


def test_not_a_data_file_and_bad_checkpoint(tmp_path, tiny_npz, capsys):
    img = tmp_path / "one.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    assert "not a folder" in _error(["--data", str(img), "--out", str(tmp_path / "o")], capsys)
    ckpt = tmp_path / "junk.pt"
    ckpt.write_bytes(b"junk")
    line = _error(["--data", str(tiny_npz), "--score-only", str(ckpt), "--out", str(tmp_path / "o")], capsys)
    assert str(ckpt) in line and "checkpoint" in line


def test_zero_epochs_scores_the_untrained_network(tmp_path, tiny_npz, capsys):
    out = _run_ok(["--data", str(tiny_npz), "--out", str(tmp_path / "r"), "--epochs", "0"], capsys)
    assert "untrained" in out and (tmp_path / "r" / "filter_result.npz").is_file()
    assert main(["--epochs", "-1"]) == 2 and "must be >= 0" in capsys.readouterr().err


def test_channels_flag_and_score_only_takes_the_network_from_the_checkpoint(tmp_path, tiny_npz, capsys):
    _run_ok(["--data", str(tiny_npz), "--out", str(tmp_path / "a"), "--channels", "8,16,32"], capsys)
    ckpt = tmp_path / "a" / "checkpoint.pt"
    _run_ok(["--data", str(tiny_npz), "--out", str(tmp_path / "b"), "--score-only", str(ckpt)], capsys)
    with (
        np.load(tmp_path / "a" / "filter_result.npz") as a,
        np.load(tmp_path / "b" / "filter_result.npz") as b,
    ):
        np.testing.assert_array_equal(a["pcc"], b["pcc"])
        assert json.loads(str(b["config"]))["config"]["channels"] == [8, 16, 32]
    line = _error(["--data", str(tiny_npz), "--out", str(tmp_path / "c"), "--score-only", str(ckpt),
                   "--image-size", "64"], capsys)  # fmt: skip
    assert str(ckpt) in line and "32" in line
    assert main(["--channels", "8,x"]) == 2 and "comma-separated" in capsys.readouterr().err


# ---- thresholds, evaluation and report through the CLI -------------------------------------------


def test_mad_threshold_labels_file_metrics_and_report(tmp_path, tiny_npz, tiny_frames, capsys):
    """--threshold mad with two filter lengths and detrending, labels from a text file: the saved
    decision follows its statistic, the metrics are scikit-learn's on the saved arrays, the
    segments are the runs of removed frames, and the report is written."""
    from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

    labels_txt = tmp_path / "labels.txt"
    labels_txt.write_text("".join(f"{v}\n" for v in tiny_frames[1]))
    run = tmp_path / "run"
    flags = ["--score", "pcc", "--threshold", "mad", "--median-k", "3,5", "--detrend", "31", "--mad-k", "2.5"]
    flags += ["--report", "--keep-ordinary", "0", "--grow-runs", "0", "--stand-out", "0"]  # the cut alone
    out = _run_ok(["--data", str(tiny_npz), "--out", str(run), "--labels", str(labels_txt), *flags], capsys)
    assert "removed segments" in out and "ROC-AUC" in out and "report:" in out
    with np.load(run / "filter_result.npz", allow_pickle=False) as r:
        res = {k: r[k] for k in r.files}
    assert float(res["delta"]) == 2.5
    np.testing.assert_array_equal(res["is_clean"], res["threshold_stat"] <= 2.5)
    y = tiny_frames[1]
    assert res["eval_roc_auc"] == pytest.approx(roc_auc_score(y, res["score_med"].astype(np.float64)))
    assert res["eval_average_precision"] == pytest.approx(average_precision_score(y, res["score_med"]))
    assert res["eval_confusion"].tolist() == confusion_matrix(y, ~res["is_clean"]).tolist()
    removed = np.flatnonzero(~res["is_clean"])
    assert res["segments"].shape[1] == 2 and res["segment_peak"].shape == (len(res["segments"]),)
    assert sorted(i for a, b in res["segments"] for i in range(a, b)) == removed.tolist()
    assert res["warnings"].dtype.kind == "U"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["roc_auc"] == pytest.approx(float(res["eval_roc_auc"]))
    assert json.loads(str(res["config"]))["median_k_used"] == [3, 5]
    assert (run / "report" / "report.html").is_file() and (run / "report" / "training.png").is_file()
    assert (run / "report" / "extremes.png").read_bytes().startswith(b"\x89PNG")
    # Beside it, the published rule on the same PCC: 101 frames (shrunk to 47 here), median - 0.05.
    pcc = 1 - res["pcc"].astype(np.float64)
    pcc_med = ndimage.median_filter(pcc, size=47, mode="reflect")  # PCC_med, by an independent filter
    assert 1 - float(res["paper_delta"]) == pytest.approx(np.median(pcc_med) - 0.05)
    np.testing.assert_array_equal(res["paper_is_clean"], pcc_med >= np.median(pcc_med) - 0.05)
    n = int((~res["paper_is_clean"]).sum())
    assert "the paper's threshold on this network's PCC (k=47, delta = median(PCC_med) - 0.05 = " in out
    assert f"would remove {n} of 48 frames: " in out
    assert "paper.png" in (run / "report" / "report.html").read_text()
    assert (run / "report" / "paper.png").read_bytes().startswith(b"\x89PNG")


def test_contamination_fixed_and_the_paper_rule_that_removes_nothing(tmp_path, tiny_npz, capsys):
    default_flags = [f for f in FAST_FLAGS if f != "--no-report"]  # the tests' own speed-up aside
    assert main([*default_flags, "--data", str(tiny_npz), "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "report" / "report.html").is_file()  # on by default
    score_only = [
        "--data",
        str(tiny_npz),
        "--score-only",
        str(tmp_path / "a" / "checkpoint.pt"),
        "--score",
        "pcc",
    ]
    contamination = ["--threshold", "contamination", "--contamination", "0.25"]
    _run_ok([*score_only, "--out", str(tmp_path / "c"), *contamination], capsys)
    with np.load(tmp_path / "c" / "filter_result.npz") as r:
        assert (~r["is_clean"]).sum() == 12  # a quarter of 48 (the score's values are distinct here)
        np.testing.assert_array_equal(r["is_clean"], r["threshold_stat"] < r["delta"])
    _run_ok([*score_only, "--out", str(tmp_path / "f"), "--threshold", "fixed", "--fixed", "0.5"], capsys)
    with np.load(tmp_path / "f" / "filter_result.npz") as r:
        np.testing.assert_array_equal(r["is_clean"], r["pcc_med"] <= 0.5)
    out = _run_ok([*score_only, "--out", str(tmp_path / "p"), "--paper", "--delta-margin", "10"], capsys)
    assert "warning: the paper threshold removed no frames" in out
    with np.load(tmp_path / "p" / "filter_result.npz") as r:
        assert r["is_clean"].all() and r["segments"].shape == (0, 2)
        assert "removed no frames" in r["warnings"][0]
        # A margin of 10 (and a 5-frame filter) is not the published rule, which is shown beside it.
        # pcc is 1 - PCC: the published median(PCC_med) - 0.05 is median(pcc_med) + 0.05
        pcc_med = ndimage.median_filter(r["pcc"].astype(np.float64), size=47, mode="reflect")
        published = np.median(pcc_med) + 0.05
        assert float(r["paper_delta"]) == pytest.approx(published)
    out = _run_ok([*score_only, "--out", str(tmp_path / "p2"), "--paper", "--median-k", "101"], capsys)
    assert "the paper's threshold" not in out  # the run's own rule is the published one: no second view
    with np.load(tmp_path / "p2" / "filter_result.npz") as r:
        assert "paper_is_clean" not in r.files


def test_threshold_flag_errors(tmp_path, tiny_npz, capsys):
    base = ["--data", str(tiny_npz), "--out", str(tmp_path / "o")]
    assert "--contamination" in _error([*base, "--threshold", "contamination"], capsys)
    assert "--fixed" in _error([*base, "--threshold", "fixed"], capsys)
    bad = tmp_path / "labels.txt"
    bad.write_text("0\n1\n")
    line = _error([*base, "--labels", str(bad)], capsys)
    assert str(bad) in line and "2 labels for 48 frames" in line
    for flags, problem in ((["--median-k", "21,100"], "odd"), (["--contamination", "1.5"], "fraction"),
                           (["--detrend", "10"], "odd")):  # fmt: skip
        assert main([*base, *flags]) == 2 and problem in capsys.readouterr().err


def test_resume_of_a_run_past_epochs_scores_it(tmp_path, tiny_npz, capsys):
    """A checkpoint from a longer run (e.g. the paper's 100 epochs) resumed with fewer --epochs:
    nothing is trained further and the run says so rather than claiming the checkpoint's epoch."""
    first = tmp_path / "first"
    _run_ok(["--data", str(tiny_npz), "--out", str(first), "--epochs", "2"], capsys)
    ckpt = first / "checkpoint.pt"
    out = _run_ok(["--data", str(tiny_npz), "--out", str(tmp_path / "again"), "--resume", str(ckpt)], capsys)
    assert f"{ckpt} has trained --epochs 1 or more: nothing to train, scoring it" in out
    assert (tmp_path / "again" / "filter_result.npz").exists()
