"""The detection benchmark's acceptance check and its argument parsing (the training runs themselves
are measured by ``python -m benchmarks.detection``, not here)."""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pytest

# benchmarks/ is not an installed package and plain `pytest` does not put the repo root on sys.path.
# Appended, not prepended: cae_fast itself still comes from the install, as in every other test.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from benchmarks import detection  # noqa: E402

ACCEPT_AUC, ACCEPT_KEPT, ACCEPT_REMOVED = (
    detection.ACCEPT_AUC,
    detection.ACCEPT_KEPT,
    detection.ACCEPT_REMOVED,
)
meets_acceptance, config_labels = detection.meets_acceptance, detection.config_labels
against_baseline = detection.against_baseline


def metrics(aucs, removed, kept):
    return {
        "per_kind": [
            {"kind": f"k{i}", "roc_auc": {"loudest": a}, "removed": r}
            for i, (a, r) in enumerate(zip(aucs, removed, strict=True))
        ],
        "clean_kept": kept,
    }


def test_acceptance_passes_only_when_every_kind_and_the_clean_frames_clear_the_bar():
    assert meets_acceptance(metrics([ACCEPT_AUC, 1.0], [ACCEPT_REMOVED, 1.0], ACCEPT_KEPT))
    assert not meets_acceptance(metrics([0.969, 1.0], [1.0, 1.0], 1.0))  # one kind ranked too low
    assert not meets_acceptance(metrics([1.0, 1.0], [1.0, 0.94], 1.0))  # one kind not removed enough
    assert not meets_acceptance(metrics([1.0, 1.0], [1.0, 1.0], 0.949))  # too many clean frames lost
    assert not meets_acceptance(metrics([math.nan], [1.0], 1.0))  # an undefined AUC is not a pass
    assert not meets_acceptance(metrics([], [], 1.0))  # no corrupted frame judged: nothing shown


def test_against_the_baseline_kind_by_kind_at_the_printed_precision():
    ours = metrics([1.0, 0.9996, 0.99, 0.94, 0.95], [1.0, 1.0, 0.9, 0.5, 0.2], 1.0) | {"roc_auc": 0.99}
    base = metrics([0.90, 1.0, 0.99, 0.96, 0.96], [0.1, 0.996, 0.95, 0.0, 0.3], 1.0) | {"roc_auc": 0.5}
    line = against_baseline(ours, base)
    assert line.startswith("ahead on 1 of 5 kinds; ")  # k0; k1 ties once rounded as printed
    assert "tied on k1 (1.000 / 100%)" in line
    assert "behind on k2 (0.990 / 90% vs 0.990 / 95%), k4 (0.950 / 20% vs 0.960 / 30%)" in line
    assert "mixed on k3 (0.940 / 50% vs 0.960 / 0%)" in line
    assert line.endswith("overall ROC-AUC 0.990 vs 0.500")


def test_config_labels_names_the_unknown_one():
    assert config_labels("default, lapvar") == ("default", "lapvar")
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown configuration \['defualt'\]; choose from"):
        config_labels("defualt")


def test_the_mix_flags_parse_or_say_what_is_wrong():
    assert detection.dirty_fraction("paper") == pytest.approx(1_600 / 17_600)
    assert detection.dirty_fraction("0.05") == 0.05
    with pytest.raises(argparse.ArgumentTypeError, match=r"fraction in \(0, 1\)"):
        detection.dirty_fraction("1.5")
    with pytest.raises(argparse.ArgumentTypeError, match="or 'paper'"):
        detection.dirty_fraction("lots")
    assert detection.run_length("20,200") == (20, 200)
    with pytest.raises(argparse.ArgumentTypeError, match="LO must not exceed HI"):
        detection.run_length("120,40")
    with pytest.raises(argparse.ArgumentTypeError, match="LO,HI like 40,120"):
        detection.run_length("40")
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1"):
        detection.run_length("0,10")


def test_two_mixes_written_to_one_folder_keep_apart(tmp_path):
    paper, bench = detection.dirty_fraction("paper"), detection.BENCH_DIRTY
    assert detection.mix_tag(64, 4800, paper, (40, 120)) == "64px_4800f_dirty0.09091_runs40-120"
    assert detection.mix_tag(64, 4800, paper, (40, 120)) != detection.mix_tag(64, 4800, bench, (40, 120))
    assert detection.mix_tag(64, 2400, bench, (40, 120)) != detection.mix_tag(64, 2400, bench, (20, 200))
    # one short run end to end: every output is named by its mix and holds that mix
    args = "--size 32 --frames 120 --run-length 8,12 --epochs 3 --seeds 1 --configs default"
    args += " --no-shuffled --no-raw --latent-dim 64 --median-k 21,101"
    assert detection.main([*args.split(), "--out", str(tmp_path)]) == 0
    tag = detection.mix_tag(32, 120, bench, (8, 12)) + "_epochs3_latentdim64_mediank21-101"
    scores = np.load(tmp_path / f"scores_{tag}_seed1.npz")
    assert (scores["labels"] == 1).mean() == pytest.approx(bench, abs=0.05)
    # the frames training drew from after its judgement (epoch 2 of 3): keep_ordinary's reference, saved
    # so that the training can be judged again offline as the tool judges it
    assert scores["trained_on"].shape == (120,) and scores["trained_on"].dtype == bool
    text = (tmp_path / f"detection_{tag}.md").read_text()
    assert text.startswith("size 32, 120 frames (20.0% dirty")
    # the head names the network's size and the filter lengths it was trained and judged with
    assert "m_ref 256, latent 64, channels 32,64,128,256, median_k 21,101\n" in text
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_training_settings_off_the_default_name_the_outputs():
    parse = detection.build_parser().parse_args
    assert detection.training_tag(parse([])) == ""
    assert detection.training_tag(parse(["--latent-dim", "1024"])) == "_latentdim1024"
    wide = parse(["--channels", "48,96,192,384", "--trim-k", "3", "--trim-at", "2"])
    assert detection.training_tag(wide) == "_trimk3_trimat2_channels48-96-192-384"
    assert detection.training_tag(parse(["--latent-dim", str(detection.C.LATENT_DIM)])) == ""
    assert (
        detection.training_tag(parse(["--ref-norm", "l2", "--lambda-ref", "0.5"]))
        == "_refnorml2_lambdaref0.5"
    )
    assert detection.training_tag(parse(["--median-k", "21,101"])) == "_mediank21-101"
    default_ks = ",".join(map(str, detection.C.MEDIAN_KS))
    assert detection.training_tag(parse(["--median-k", default_ks])) == ""
