"""Evaluation against labels: our numbers are scikit-learn's, per kind too; labels files; JSON / npz."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from cae_fast.errors import InputError
from cae_fast.output.evaluate import (
    direction_warnings,
    evaluate,
    format_table,
    load_labels,
    to_arrays,
    write_metrics_json,
)

# 12 frames: 4 dirty (two kinds), a score that ranks most but not all of them right.
LABELS = np.array([0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0], np.uint8)
KINDS = np.array([-1, -1, -1, 0, 0, -1, -1, 1, 1, -1, -1, -1], np.int8)
SCORE = np.array([0.1, 0.3, 0.2, 0.9, 0.35, 0.4, 0.05, 0.8, 0.7, 0.6, 0.15, 0.25])  # higher = dirtier
IS_CLEAN = SCORE < 0.5  # removes frames 3, 7, 8, 9: 3 true positives, 1 false positive, 1 miss


def test_numbers_are_sklearns_on_fixed_arrays():
    raw = SCORE[::-1].copy()
    m = evaluate(LABELS, {"loudest_med": SCORE, "loudest": raw}, IS_CLEAN)
    pred = (~IS_CLEAN).astype(int)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(LABELS, SCORE))
    assert m["average_precision"] == pytest.approx(average_precision_score(LABELS, SCORE))
    assert m["ranking"]["loudest"]["roc_auc"] == pytest.approx(roc_auc_score(LABELS, raw))
    assert m["precision"] == pytest.approx(precision_score(LABELS, pred)) == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(recall_score(LABELS, pred)) == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(f1_score(LABELS, pred))
    assert m["confusion"] == confusion_matrix(LABELS, pred).tolist() == [[7, 1], [1, 3]]
    assert m["dirty_removed"] == pytest.approx(3 / 4) and m["clean_kept"] == pytest.approx(7 / 8)
    assert (m["n_frames"], m["n_dirty"], m["n_clean"]) == (12, 4, 8)


def test_per_kind_is_each_kind_against_the_clean_frames():
    m = evaluate(LABELS, {"s": SCORE}, IS_CLEAN, KINDS, ("raindrop", "mud"))
    rows = {r["kind"]: r for r in m["per_kind"]}
    assert list(rows) == ["raindrop", "mud"]
    for j, name in enumerate(("raindrop", "mud")):
        subset = (KINDS == j) | (KINDS == -1)
        assert rows[name]["roc_auc"]["s"] == pytest.approx(roc_auc_score(LABELS[subset], SCORE[subset]))
        assert rows[name]["average_precision"]["s"] == pytest.approx(
            average_precision_score(LABELS[subset], SCORE[subset])
        )
        assert rows[name]["n"] == 2
    assert rows["raindrop"]["removed"] == 0.5 and rows["mud"]["removed"] == 1.0


def test_one_class_gives_nan_not_a_crash_and_wrong_direction_warns():
    m = evaluate(np.zeros(5, np.uint8), {"s": np.arange(5.0)}, np.ones(5, bool))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["dirty_removed"]) and m["clean_kept"] == 1.0
    assert direction_warnings(m) == []
    flipped = evaluate(LABELS, {"pcc_med": -SCORE}, IS_CLEAN)
    assert flipped["roc_auc"] < 0.5
    assert "points the wrong way" in direction_warnings(flipped)[0]


def test_arrays_json_and_table(tmp_path):
    m = evaluate(LABELS, {"a": SCORE, "b": -SCORE}, IS_CLEAN, KINDS, ("raindrop", "mud"))
    arrays = to_arrays(m)
    assert arrays["eval_roc_auc"] == pytest.approx(m["roc_auc"])
    assert arrays["eval_confusion"].tolist() == [[7, 1], [1, 3]]
    assert arrays["eval_series"].tolist() == ["a", "b"] and arrays["eval_kind_roc_auc"].shape == (2, 2)
    assert arrays["eval_kind_names"].tolist() == ["raindrop", "mud"]
    assert all(v.dtype != object for v in arrays.values())
    path = write_metrics_json(tmp_path, evaluate(np.zeros(3, np.uint8), {"s": np.ones(3)}, np.ones(3, bool)))
    assert json.loads(path.read_text())["roc_auc"] is None  # NaN -> null, still valid JSON
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    table = "\n".join(format_table(m))
    assert "ROC-AUC" in table and "dirty removed   75.0%" in table and "raindrop" in table


def test_clean_only_labels_say_so_instead_of_nan():
    """Nothing labelled dirty: no ROC-AUC to print and no precision; what is left to judge is how much
    of the clean set the decision kept (here 3 of 4 frames)."""
    m = evaluate(np.zeros(4, np.uint8), {"s": np.arange(4.0)}, np.array([1, 1, 0, 1], bool))
    (line,) = format_table(m)
    assert "no corrupted frames labelled" in line and "clean kept 75.0% (3 / 4), removed 1" in line
    assert "nan" not in line and "precision" not in line


@pytest.mark.parametrize(
    "name,content,problem",
    [
        ("l.txt", "0\n1\n0\n", "3 labels for 4 frames"),
        ("l.txt", "0\n1\n2\n0\n", r"0 \(clean\) or 1"),
        ("l.txt", "0\nx\n1\n0\n", "cannot read"),
        ("l.npy", np.zeros((2, 2)), "one value per frame"),
    ],
)
def test_bad_labels_files(tmp_path, name, content, problem):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        np.save(path, content)
    with pytest.raises(InputError, match=problem) as exc:
        load_labels(path, 4)
    assert exc.value.path == str(path)


def test_good_labels_files(tmp_path):
    (tmp_path / "l.txt").write_text("# frame labels\n0\n1\n1\n0\n")
    np.save(tmp_path / "l.npy", np.array([True, False, False, True]))
    assert load_labels(tmp_path / "l.txt", 4).tolist() == [0, 1, 1, 0]
    got = load_labels(tmp_path / "l.npy", 4)
    assert got.tolist() == [1, 0, 0, 1] and got.dtype == np.uint8
    with pytest.raises(InputError, match="no such"):
        load_labels(tmp_path / "missing.txt", 4)
