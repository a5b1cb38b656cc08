"""Issue 31, items 2 and 9, with real processes: one run per --out (the second fails fast naming
the first), one builder per cache entry (the second waits and reuses it), no leftovers, and a
run id that tells a killed new run's checkpoint from an earlier run's results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import FAST_FLAGS
from PIL import Image
from reliability_helpers import one_error

from cae_fast.locks import LOCK_NAME, holder
from cae_fast.output.outdir import RUN_FILE, checkpoint_run_id, read_run, stale_outputs

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cae_fast.run", *FAST_FLAGS, *map(str, args)]


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def test_a_second_run_into_the_same_out_fails_fast_naming_the_first(tmp_path, tiny_npz):
    out = tmp_path / "run"
    first = subprocess.Popen(_cli("--data", tiny_npz, "--out", out, "--epochs", "100000"), cwd=REPO, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for(lambda: (out / "train_log.jsonl").is_file() and holder(out / LOCK_NAME) == first.pid, first)
        second = subprocess.run(_cli("--data", tiny_npz, "--out", out), cwd=REPO, env=ENV,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert first.poll() is None  # still running: the refusal was not a question of timing
    finally:
        first.kill()
        first.communicate()
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert lines[0].startswith(f"error: {out}: another cae-fast run (pid {first.pid}) is using this folder")
    epochs = [json.loads(ln)["epoch"] for ln in (out / "train_log.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1))  # one run's log, not two interleaved
    assert not (out / "filter_result.npz").exists()


_BUILD = """
import json, sys, time
from pathlib import Path
from cae_fast.data.cache import load_or_build
from cae_fast.data.sources import open_source
root, cache, go = map(Path, sys.argv[1:4])
while not go.exists():
    time.sleep(0.01)
c = load_or_build(open_source(root), 32, cache, workers=2)
print(json.dumps({"reused": c.reused, "sum": int(c.images.sum(dtype="uint64"))}))
"""


def test_two_runs_building_one_cache_entry_one_waits_and_reuses_it(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (400, 32, 32, 3), dtype=np.uint8)
    root = tmp_path / "frames"
    root.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(root / f"f{i}.png")
    cache, go = tmp_path / "cache", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD, str(root), str(cache), str(go)],
            cwd=REPO,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    time.sleep(1.0)  # both are waiting for the start signal
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert sorted(r["reused"] for r in results) == [False, True]  # built once, reused once
    assert all(r["sum"] == int(frames.sum(dtype=np.uint64)) for r in results)  # PNG is lossless
    leftovers = [p.name for p in cache.iterdir() if not p.name.endswith((".u8", ".json"))]
    assert leftovers == [] and len(list(cache.glob("*.u8"))) == 1


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(tmp_path, tiny_npz, capsys):
    from cae_fast.cli.main import main

    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.pt.tmp4242", ".filter_result.npz.tmp4242", ".write_test123"):
        (out / name).write_bytes(b"half")
    (out / "notes.txt").write_text("mine")
    (out / "notes.tmp1").write_text("mine too")  # not a name cae_fast gives its temporaries
    assert main([*FAST_FLAGS, "--data", str(tiny_npz), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert not {n for n in names if "tmp4242" in n or "write_test" in n}
    assert {"notes.txt", "notes.tmp1"} <= names
    assert LOCK_NAME not in names  # released


def test_a_data_error_leaves_no_empty_out(tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 8), np.uint8))
    one_error(["--data", str(bad), "--out", str(tmp_path / "new" / "run")], capsys)
    assert not (tmp_path / "new").exists()  # nor the parent it created
    existing = tmp_path / "existing"
    existing.mkdir()
    one_error(["--data", str(bad), "--out", str(existing)], capsys)
    assert existing.is_dir()  # the user's folder is left where it was


def test_a_killed_new_runs_checkpoint_is_told_apart_from_the_earlier_results(tmp_path, tiny_npz):
    out = tmp_path / "run"
    done = subprocess.run(_cli("--data", tiny_npz, "--out", out), cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    first_id = read_run(out)["run_id"]
    with np.load(out / "filter_result.npz") as r:
        assert json.loads(str(r["config"]))["run_id"] == first_id
    assert checkpoint_run_id(out / "checkpoint.pt") == first_id and stale_outputs(out) == []

    second = subprocess.Popen(_cli("--data", tiny_npz, "--out", out, "--epochs", "100000"), cwd=REPO, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for(lambda: checkpoint_run_id(out / "checkpoint.pt") not in (None, first_id), second)
    finally:
        second.send_signal(signal.SIGKILL)
        _, err = second.communicate()
    assert "holds an earlier run's filter_result.npz" in err  # said when it started
    second_id = read_run(out)["run_id"]
    assert read_run(out)["status"] == "running" and second_id != first_id
    assert checkpoint_run_id(out / "checkpoint.pt") == second_id
    assert set(stale_outputs(out)) == {
        "filter_result.npz",
        "kept.txt",
        "removed.txt",
        "scores.csv",
        "metrics.json",
    }

    resumed = subprocess.run(_cli("--data", tiny_npz, "--out", out, "--resume", "--epochs", "3"), cwd=REPO,
                             env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert read_run(out)["run_id"] == second_id and read_run(out)["status"] == "complete"
    assert stale_outputs(out) == [] and (out / RUN_FILE).is_file()


def test_a_bad_labels_file_is_refused_before_any_epoch(tmp_path, tiny_npz, capsys):
    bad = tmp_path / "labels.txt"
    bad.write_text("0\n2\n")
    out = tmp_path / "existing"
    out.mkdir()
    line = one_error(
        ["--data", str(tiny_npz), "--out", str(out), "--labels", str(bad), "--epochs", "50"], capsys
    )
    assert line.startswith(f"error: {bad}: ")
    assert list(out.iterdir()) == []  # no checkpoint, no log, no run.json: nothing ran


def test_a_result_the_new_run_did_not_rewrite_is_named_stale(tmp_path, tiny_npz, capsys):
    from cae_fast.cli.main import main

    out = tmp_path / "run"
    assert main([*FAST_FLAGS, "--data", str(tiny_npz), "--out", str(out), "--report"]) == 0
    assert stale_outputs(out) == []
    capsys.readouterr()
    assert main([*FAST_FLAGS, "--data", str(tiny_npz), "--out", str(out), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {out / 'report' / 'report.html'} is an earlier run's, not this one's" in err
    assert stale_outputs(out) == ["report/report.html"]
