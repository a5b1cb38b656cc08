"""Names from before issue 30 (``combo_rss``, ``--veto``, ``--extend``, ...) still work wherever a user
or a saved file gives one: as ``--score`` choices and flags (unlisted), as ``FrameFilter`` keywords,
and in a checkpoint's stored settings and best-f1 cut. The oracle is the same job spelt with
today's names: it must give the same settings, scores and decision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_FLAGS

from cae_fast import FrameFilter
from cae_fast.cli.flags import build_parser
from cae_fast.cli.main import main
from cae_fast.decide.best_f1 import CHECKPOINT_KEY
from cae_fast.train.loop import CHECKPOINT_NAME, load_checkpoint, store_in_checkpoint

# The renaming as issue 30 specifies it: old name -> today's.
OLD_SCORES = {
    "combo_rss": "combined",
    "combo": "loudest",
    "combo_lens": "trim_score",
    "lens": "stuck_colour",
    "ssim_excess": "added_structure",
    "local": "bad_tiles",
}


@pytest.mark.parametrize("old, new", OLD_SCORES.items())
def test_an_old_score_name_is_read_as_todays_and_not_listed(old, new):
    parser = build_parser()
    assert parser.parse_args(["--score", old]).score == new
    choices = next(a.choices for a in parser._actions if a.dest == "score")
    assert new in choices and old not in choices


def test_old_flags_and_keywords_set_todays_settings():
    args = build_parser().parse_args(["--veto", "0.5", "--extend", "2"])
    assert (args.keep_ordinary, args.grow_runs) == (0.5, 2.0)
    old = FrameFilter(veto=0.5, extend=2.0, score="combo_lens", image_size=32)
    new = FrameFilter(keep_ordinary=0.5, grow_runs=2.0, score="trim_score", image_size=32)
    assert old.config == new.config and old.get_params() == new.get_params()


def test_an_unknown_score_is_still_one_line(capsys):
    assert main(["--score", "combo_ens", "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --score: invalid choice: 'combo_ens'") and err.count("\n") == 1


def _as_before_issue_30(src, dst) -> None:
    """``src``'s checkpoint as the code before the renaming stored it: ``veto`` / ``extend`` and the
    score ``combo_rss`` in its settings and in its best-f1 cut."""
    dst.mkdir()
    (dst / CHECKPOINT_NAME).write_bytes((src / CHECKPOINT_NAME).read_bytes())
    state = load_checkpoint(dst / CHECKPOINT_NAME)
    stored = json.loads(state["config"])
    stored["veto"], stored["extend"] = stored.pop("keep_ordinary"), stored.pop("grow_runs")
    assert stored["score"] == "combined"
    stored["score"] = "combo_rss"
    store_in_checkpoint(dst / CHECKPOINT_NAME, "config", json.dumps(stored))
    store_in_checkpoint(
        dst / CHECKPOINT_NAME, CHECKPOINT_KEY, {**state[CHECKPOINT_KEY], "score": "combo_rss"}
    )


def test_a_checkpoint_with_the_old_names_loads_scores_and_resumes_as_with_todays(tmp_path, tiny_npz):
    images = np.load(tiny_npz)["images"]
    trained = tmp_path / "new"
    flags = [*FAST_FLAGS, "--threshold", "best-f1"]  # stores a cut, on the score, in the checkpoint
    assert main(["--data", str(tiny_npz), "--out", str(trained), *flags, "--keep-ordinary", "0.5",
                 "--grow-runs", "0"]) == 0  # fmt: skip
    _as_before_issue_30(trained, tmp_path / "old")
    spelt = {"new": ["--keep-ordinary", "0.5", "--grow-runs", "0"], "old": ["--veto", "0.5", "--extend", "0"]}

    runs, filters = {}, {}
    for name in ("new", "old"):
        ckpt = str(tmp_path / name / CHECKPOINT_NAME)
        filters[name] = FrameFilter.load(ckpt)
        out = tmp_path / f"scored_{name}"
        score = ["--score", "combo_rss" if name == "old" else "combined"]
        assert main(["--data", str(tiny_npz), "--out", str(out), "--score-only", ckpt, *flags, *score,
                     *spelt[name]]) == 0  # fmt: skip
        runs[f"scored_{name}"] = np.load(out / "filter_result.npz")
        out = tmp_path / f"resumed_{name}"
        assert main(["--data", str(tiny_npz), "--out", str(out), "--resume", ckpt, *flags, "--epochs", "2",
                     *spelt[name]]) == 0  # fmt: skip
        runs[f"resumed_{name}"] = np.load(out / "filter_result.npz")

    cfg = filters["old"].config_
    assert (cfg.keep_ordinary, cfg.grow_runs, cfg.score) == (0.5, 0.0, "combined")
    assert cfg == filters["new"].config_
    np.testing.assert_array_equal(
        filters["old"].decision_function(images), filters["new"].decision_function(images)
    )
    for run in ("scored", "resumed"):
        new, old = runs[f"{run}_new"], runs[f"{run}_old"]
        assert set(old.files) == set(new.files)
        for key in ("combined", "pcc", "score_med", "threshold_stat", "delta", "is_clean", "segments"):
            np.testing.assert_array_equal(old[key], new[key], err_msg=f"{run}: {key}")
    assert (
        float(runs["scored_old"]["delta"])
        == load_checkpoint(trained / CHECKPOINT_NAME)[CHECKPOINT_KEY]["value"]
    )


def test_a_new_run_writes_todays_names_and_every_key_is_documented(tmp_path, tiny_npz):
    """The oracle for the documentation is the run itself: every key of a default run's npz (with
    labels, the trimming and --keep-ordinary all on) has a row in docs/outputs.md."""
    out = tmp_path / "run"
    assert (
        main(["--data", str(tiny_npz), "--out", str(out), *FAST_FLAGS, "--epochs", "2", "--trim-at", "1"])
        == 0
    )
    with np.load(out / "filter_result.npz") as r:
        keys = set(r.files)
    assert {"combined", "stuck_colour", "unusualness", "trained_on"} <= keys
    assert not keys & set(OLD_SCORES)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "outputs.md").read_text()
    documented = {
        k for k in keys if f"`{k}`" in doc or f"`{k.split('_')[0]}_" in doc and k.startswith("eval_")
    }
    assert keys - documented == set()
