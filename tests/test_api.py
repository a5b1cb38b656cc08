"""``cae_fast.FrameFilter``: the Python API against known answers and against the command line.

The command line (``cae_fast.cli.main.main``) is the oracle for the job itself: the same settings
and seed must give the same scores and the same decision whichever door the user takes."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import drifting_scene
from PIL import Image

import cae_fast
from cae_fast.api import FrameFilter, NotFittedError
from cae_fast.cli.flags import build_parser, config_from_args
from cae_fast.cli.main import main as cli_main
from cae_fast.config import Config
from cae_fast.errors import InputError

SIZE, N, RUN = 32, 64, (40, 48)
# The API twin of conftest.FAST_FLAGS: a fit takes a second or two.
FAST = dict(
    image_size=SIZE, epochs=1, batch_size=8, m_ref=16, latent_dim=32, median_k=5, seed=0, device="cpu"
)
FAST_CLI = [
    "--image-size", str(SIZE), "--epochs", "1", "--batch-size", "8", "--m-ref", "16", "--latent-dim", "32",
    "--median-k", "5", "--seed", "0", "--device", "cpu", "--no-progress",
]  # fmt: skip
README = Path(__file__).resolve().parents[1] / "README.md"


def sequence(n: int = N, run: tuple[int, int] = RUN, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth drifting frames with a saturated splat on the lens over frames ``run`` (label 1)."""
    rng = np.random.default_rng(seed)
    frames = drifting_scene(n, SIZE)
    frames += rng.normal(0, 0.01, frames.shape).astype(np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    frames[run[0] : run[1], (yy - 0.4) ** 2 + (xx - 0.6) ** 2 < 0.15**2] = 1.0
    labels = np.zeros(n, np.uint8)
    labels[run[0] : run[1]] = 1
    return (np.clip(frames, 0, 1) * 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The sequence as an array, an .npz and a folder of PNGs (f2 before f10)."""
    root = tmp_path_factory.mktemp("api_data")
    images, labels = sequence()
    np.savez(root / "seq.npz", images=images, labels=labels)
    (root / "frames").mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(root / "frames" / f"f{i}.png")
    return {
        "array": images,
        "labels": labels,
        "npz": root / "seq.npz",
        "folder": root / "frames",
        "root": root,
    }


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """One fit on the .npz, run from an empty working folder with its own temporary folder, to see
    what it leaves behind."""
    cwd, tmp = tmp_path_factory.mktemp("api_cwd"), tmp_path_factory.mktemp("api_tmp")
    before = sorted(os.listdir(data["root"]))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setattr(tempfile, "tempdir", str(tmp))
        f = FrameFilter(**FAST).fit(str(data["npz"]))
    ours = [n for n in os.listdir(tmp) if not n.startswith("torchinductor")]  # torch's own cache
    left = {"cwd": os.listdir(cwd), "tmp": ours, "data": sorted(os.listdir(data["root"])) != before}
    return f, left


def test_import_is_cheap_and_exports_the_api():
    code = "import sys, cae_fast; print('torch' in sys.modules, cae_fast.Config.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "Config"]
    assert cae_fast.FrameFilter is FrameFilter and "FrameFilter" in dir(cae_fast)


@pytest.mark.parametrize(
    ("kwargs", "flags"),
    [({}, []), ({"paper": True}, ["--paper"]), ({"paper": True, "epochs": 3}, ["--paper", "--epochs", "3"]),
     (FAST, FAST_CLI), ({"config": Config().normal_training()}, ["--train-data", "t.npz"]),
     ({"config": Config().normal_training(), "epochs": 3, "median_k": 5},
      ["--train-data", "t.npz", "--epochs", "3", "--median-k", "5"]),
     ({"config": Config().paper().normal_training()}, ["--paper", "--train-data", "t.npz"])],
)  # fmt: skip
def test_settings_resolve_as_the_command_line_does(kwargs, flags):
    cli = config_from_args(build_parser().parse_args(["--data", "x.npz", *flags]))
    api = FrameFilter(**kwargs).config
    # the API's own: no files, no bars; it fits on the frames it is given (no --train-data path)
    own = {"data", "train_data", "out", "progress", "report", "cache_dir"}
    assert {k: v for k, v in dataclasses.asdict(api).items() if k not in own} == {
        k: v for k, v in dataclasses.asdict(cli).items() if k not in own
    }


def test_fit_removes_the_corrupted_run(fitted, data):
    from sklearn.metrics import roc_auc_score

    f, _ = fitted
    y = data["labels"]
    assert f.decision_scores_.shape == (N,) and f.labels_.shape == (N,)
    assert roc_auc_score(y, f.decision_scores_) >= 0.95  # higher = dirtier, untouched raw scores
    removed = f.labels_ == 1
    assert removed[y == 1].mean() >= 0.75  # recall on the known run
    assert y[removed].mean() >= 0.75  # what goes is mostly the run
    assert any(s.start <= RUN[0] + 2 and s.end >= RUN[1] - 2 for s in f.segments_)
    # threshold_ is in the units of threshold_scores_ (keep_ordinary may keep a frame above it).
    assert (f.threshold_scores_[removed] > f.threshold_).all() and f.threshold_units_.startswith("robust z")


def test_fit_leaves_no_files_behind(fitted):
    _, left = fitted
    assert left == {"cwd": [], "tmp": [], "data": False}


def test_api_and_command_line_are_the_same_job(fitted, data, tmp_path):
    f, _ = fitted
    assert cli_main(["--data", str(data["npz"]), "--out", str(tmp_path / "run"), *FAST_CLI]) == 0
    with np.load(tmp_path / "run" / "filter_result.npz") as res:
        assert np.array_equal(f.decision_scores_, res[f.config_.score].astype(np.float64))
        assert np.array_equal(f.labels_ == 1, ~res["is_clean"])
        assert f.threshold_ == float(res["delta"])
        assert np.array_equal(f.threshold_scores_, res["threshold_stat"].astype(np.float64))
        assert [[s.start, s.end] for s in f.segments_] == res["segments"].tolist()
        for name, values in f.scores_.items():  # the chosen score's terms too
            assert np.array_equal(values, res[name]), name


def test_trimmed_training_is_the_same_job_too(data, tmp_path):
    """Three epochs: the trimming judges the frames before the third, so training's pool of trusted
    frames (``trained_on_``) and keep_ordinary's idea of ordinary come into play."""
    f = FrameFilter(**{**FAST, "epochs": 3}).fit(data["array"])
    assert (
        cli_main(["--data", str(data["npz"]), "--out", str(tmp_path / "run"), *FAST_CLI, "--epochs", "3"])
        == 0
    )
    with np.load(tmp_path / "run" / "filter_result.npz") as res:
        assert np.array_equal(f.trained_on_, res["trained_on"])
        assert np.array_equal(f._decision.unusualness, res["unusualness"])  # measured against trained_on_
        assert np.array_equal(f.decision_scores_, res[f.config_.score].astype(np.float64))
        assert np.array_equal(f.labels_ == 1, ~res["is_clean"])
    assert not f.trained_on_[RUN[0] : RUN[1]].any()  # the splat run was left out of training


def test_the_three_inputs_give_the_same_scores(fitted, data, capfd, caplog):
    f, _ = fitted
    on_npz = f.decision_function(str(data["npz"]))
    assert np.array_equal(on_npz, f.decision_scores_)  # the trained network, the same frames
    assert np.array_equal(f.decision_function(data["folder"]), on_npz)
    assert np.array_equal(f.decision_function(data["array"]), on_npz)
    with caplog.at_level("INFO", logger="cae_fast"):
        g = FrameFilter(**FAST, verbose=True).fit(data["array"])  # and a whole fit on the array
    assert np.array_equal(g.decision_scores_, f.decision_scores_)
    assert np.array_equal(g.labels_, f.labels_)
    assert g.frame_names_ is None and f.frame_names_[0].endswith("seq.npz[0]")
    assert capfd.readouterr() == ("", "")  # nothing printed: verbose goes to the logger
    assert any("removed 8 of 64 frames" in r.getMessage() for r in caplog.records)


def test_gray_and_float_frames_are_read_as_the_files_are(fitted, data):
    f, _ = fitted
    gray = data["array"][..., 1]
    expected = f.decision_function(np.repeat(gray[..., None], 3, axis=3))
    assert np.array_equal(f.decision_function(gray), expected)
    assert np.array_equal(f.decision_function(data["array"] / 255.0), f.decision_scores_)


def test_save_load_gives_the_same_scores_and_the_command_line_reads_the_file(fitted, data, tmp_path):
    f, _ = fitted
    path = f.save(tmp_path / "filter.pt")
    assert os.listdir(tmp_path) == ["filter.pt"]
    g = FrameFilter.load(path)
    new, _ = sequence(seed=1, run=(10, 16))
    assert np.array_equal(g.decision_function(new), f.decision_function(new))
    for name in ("decision_scores_", "labels_", "threshold_scores_", "filtered_scores_"):
        assert np.array_equal(getattr(g, name), getattr(f, name)), name
    assert (g.threshold_, g.segments_, g.config_) == (f.threshold_, f.segments_, f.config_)
    # The saved file is a checkpoint for --score-only, whose decision predict() reproduces.
    np.savez(tmp_path / "new.npz", images=new)
    out = tmp_path / "rescored"
    assert cli_main(["--data", str(tmp_path / "new.npz"), "--score-only", str(path), "--out", str(out),
                     "--median-k", "5", "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    with np.load(out / "filter_result.npz") as res:
        assert np.array_equal(g.decision_function(new), res[f.config_.score].astype(np.float64))
        assert np.array_equal(g.predict(new) == 1, ~res["is_clean"])
    assert g.predict(new)[10:16].all()  # the new run, found by the loaded filter


def test_best_f1_cut_from_labels_travels_with_the_saved_file(data, tmp_path):
    """A run the 5-frame median filter keeps intact and a score that separates it: the F1-optimal
    cut removes exactly the labelled frames, and --score-only applies the cut stored by save()."""
    f = FrameFilter(**FAST, threshold="best-f1", keep_ordinary=0, grow_runs=0).fit(
        data["array"], y=data["labels"]
    )
    assert np.array_equal(f.labels_, data["labels"])
    assert f.threshold_units_ == f"{f.config_.score}_med"  # the cut is in the filtered score's units
    path = f.save(tmp_path / "f1.pt")
    new, truth = sequence(seed=2, run=(20, 30))
    np.savez(tmp_path / "new.npz", images=new)
    out = tmp_path / "rescored"
    argv = [
        "--data", str(tmp_path / "new.npz"), "--score-only", str(path), "--out", str(out), "--threshold",
        "best-f1", "--median-k", "5", "--keep-ordinary", "0", "--grow-runs", "0", "--device", "cpu",
        "--no-progress",
    ]  # fmt: skip
    assert cli_main(argv) == 0
    with np.load(out / "filter_result.npz") as res:
        assert float(res["delta"]) == f.threshold_
        assert np.array_equal(FrameFilter.load(path).predict(new) == 1, ~res["is_clean"])
    assert np.array_equal(FrameFilter.load(path).predict(new), truth)


@pytest.mark.parametrize(
    ("frames", "problem"),
    [
        (np.zeros((4, 32), np.uint8), "shape"),
        (np.zeros((0, 32, 32, 3), np.uint8), "no frames"),
        (np.zeros((4, 32, 32, 3, 1), np.uint8), "shape"),
        (np.full((16, 32, 32, 3), 2.0), "[0, 1]"),
        (np.zeros((16, 32, 32, 3), np.int32), "dtype"),
        ("/no/such/folder", "no such file"),
        (np.zeros((4, 32, 32, 3), np.uint8), "fewer than one batch"),
    ],
)
def test_bad_input_is_an_input_error(frames, problem):
    with pytest.raises(InputError, match=re.escape(problem)):
        FrameFilter(**FAST).fit(frames)


def test_bad_settings_and_use_before_fit():
    with pytest.raises(InputError, match="multiple of 16"):
        FrameFilter(**{**FAST, "image_size": 30}).fit(np.zeros((16, 30, 30, 3), np.uint8))
    with pytest.raises(InputError, match="unknown score 'tile_rgb'"):  # a map, not a per-frame score
        FrameFilter(**FAST, score="tile_rgb").fit(np.zeros((16, 32, 32, 3), np.uint8))
    with pytest.raises(TypeError, match="unknown setting"):
        FrameFilter(imagesize=32)
    with pytest.raises(TypeError, match="pass frames to fit"):
        FrameFilter(data="frames/")
    with pytest.raises(NotFittedError):
        FrameFilter().decision_function(np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="not a cae_fast checkpoint|cannot read"):
        FrameFilter.load(README)


def _readme_api_block() -> str | None:
    """The first python block after a heading that names the Python API, or None."""
    text = README.read_text()
    heading = re.search(r"^#+ .*python api.*$", text, re.IGNORECASE | re.MULTILINE)
    if heading is None:
        return None
    block = re.search(r"```python\n(.*?)```", text[heading.end() :], re.DOTALL)
    return block.group(1) if block else None


def test_readme_example_runs_as_written(tmp_path, monkeypatch):
    code = _readme_api_block()
    assert code is not None, "README needs a 'Python API' section with a python block"
    # Whatever data paths it names exist, as a tiny sequence in the form the name implies; the
    # names it leaves to the reader's data (``frames``, ``new``) are tiny arrays.
    images, labels = sequence(n=36, run=(24, 30))  # one batch of the default 32, and a few frames
    names = {"__name__": "readme", "frames": images, "new": sequence(n=36, run=(5, 10), seed=3)[0]}
    monkeypatch.chdir(tmp_path)
    for name in set(re.findall(r"""["']([^"']+)["']""", code)):
        if name.endswith((".npy", ".npz")) or name.endswith("/"):
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".npy"):
                np.save(path, images)
            elif name.endswith(".npz"):
                np.savez(path, images=images, labels=labels)
            else:
                path.mkdir(exist_ok=True)
                for i, img in enumerate(images):
                    Image.fromarray(img).save(path / f"{i:04d}.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny sequence shrinks the filters
        exec(compile(code, "README.md", "exec"), names)
