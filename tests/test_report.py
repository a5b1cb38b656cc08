"""The diagnostics report: every plot is a real PNG, report.html links them relatively, and the
most / least anomalous frames are picked apart from each other."""

from __future__ import annotations

import re

import numpy as np

from cae_fast.config import Config
from cae_fast.decide.rules import decide
from cae_fast.output.evaluate import evaluate, evaluation_series
from cae_fast.output.extremes import Extremes, pick_extremes
from cae_fast.output.report import longest_segments, plot_segments, read_train_log, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _labelled_sequence(n: int = 300):
    rng = np.random.default_rng(0)
    raw = 0.1 + 0.003 * rng.standard_normal(n)  # a 1 - PCC-like score: higher = dirtier
    kinds = np.full(n, -1, np.int8)
    kinds[50:80], kinds[200:230] = 0, 1
    raw[50:80] += 0.03
    raw[200:230] += 0.015
    return raw.astype(np.float32), (kinds >= 0).astype(np.uint8), kinds


def test_pick_extremes_orders_and_spaces_the_frames():
    dirt = np.zeros(200)
    dirt[[10, 11, 12, 100, 150, 190]] = [9, 8, 7, 6, 5, 4]
    dirt[[30, 31, 60, 120]] = [-9, -8, -7, -6]
    most, least = pick_extremes(dirt, n=4, gap=5)
    assert most.tolist() == [10, 100, 150, 190]  # 11 and 12 are too close to 10
    assert least.tolist() == [30, 60, 120, 0]  # 0: first of the ties at 0 far enough away
    tiny_most, tiny_least = pick_extremes(np.arange(6.0), n=4, gap=25)  # gap shrinks to fit
    assert tiny_most.tolist() == [5, 4, 3, 2] and tiny_least.tolist() == [0, 1, 2, 3]


def test_report_writes_every_plot_and_links_them(tmp_path):
    raw, labels, kinds = _labelled_sequence()
    cfg = Config(threshold="mad", mad_k=3.0, median_k=(5, 11), detrend=201)
    d = decide(raw, "pcc", cfg)
    assert np.abs(d.segments - [[50, 80], [200, 230]]).max() <= 2  # both runs
    d.warnings.append("a <made-up> warning")
    series = evaluation_series(raw, d)
    metrics = evaluate(labels, series, d.is_clean, kinds, ("raindrop", "fog"))
    rng = np.random.default_rng(1)
    ex = Extremes(np.arange(8), rng.random((8, 16, 16, 3)), rng.random((8, 16, 16, 3)), raw[:8], 4)
    log_path = tmp_path / "train_log.jsonl"
    log_path.write_text(
        "".join(
            f'{{"epoch": {e}, "l_rec": {0.1 / e}, "l_ref": {2.0 / e}, "mean_z_norm": {3 - e}}}\n'
            for e in (1, 2)
        )
        + '{"epoch": 3, "l_re'  # a line cut short by a killed run is skipped
    )
    log = read_train_log(log_path)
    assert [r["epoch"] for r in log] == [1, 2]
    frames = rng.integers(0, 256, (len(raw), 16, 16, 3), dtype=np.uint8)
    trained_on = np.ones(len(raw), bool)
    trained_on[d.segments[0][0] :] = False  # the first removed segment on: never trained on
    page = write_report(tmp_path, raw, d, labels=labels, kinds=kinds, kind_names=("raindrop", "fog"),
                        series=series, metrics=metrics, extremes=ex, train_log=log,
                        summary=["kept <many> frames"], trained_on=trained_on, frames=frames)  # fmt: skip
    folder = tmp_path / "report"
    assert page == folder / "report.html"
    expected = {"scores.png", "hist.png", "roc.png", "extremes.png", "segments.png", "training.png"}
    assert {p.name for p in folder.iterdir()} == expected | {"report.html"}  # nothing temporary left
    for name in expected:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name
    html = page.read_text()
    assert set(re.findall(r"<img src='([^']+)'", html)) == expected  # relative, next to the page
    assert "kept &lt;many&gt; frames" in html  # text is escaped
    assert "raindrop" in html and "fog" in html and f"{metrics['roc_auc']:.3f}" in html
    assert f"<td>{d.segments[0][0]}</td>" in html
    # each removed segment says how much of it the network trained on: none of either here
    assert "<th>trained on</th>" in html and html.count("<td>0%</td>") == len(d.segments) == 2
    assert "warning: a &lt;made-up&gt; warning" in html


def test_report_without_labels_or_training_has_only_what_it_can_show(tmp_path):
    raw, _, _ = _labelled_sequence(120)
    d = decide(raw, "pcc", Config(median_k=(5,)))
    page = write_report(tmp_path, raw, d)
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"scores.png", "report.html"}
    assert "Evaluation" not in page.read_text() and "trained on" not in page.read_text()


def test_segments_picture_picks_the_longest_removed_segments_in_frame_order(tmp_path):
    segments = np.array([[20, 32], [100, 130], [250, 270], [300, 330]])
    assert longest_segments(segments, 2).tolist() == [1, 3]  # equal lengths: the earlier first
    assert longest_segments(segments, 3).tolist() == [1, 2, 3]
    assert longest_segments(segments, 9).tolist() == [0, 1, 2, 3]
    assert longest_segments(np.zeros((0, 2), np.int64), 8).tolist() == []
    raw = np.full(400, 0.1, np.float32)
    for a, b in segments.tolist():
        raw[a:b] = 0.5
    d = decide(raw, "pcc", Config(median_k=(1,), threshold="fixed", fixed=0.3))
    assert d.segments.tolist() == segments.tolist()
    frames = np.zeros((400, 8, 8, 3), np.uint8)
    plot_segments(tmp_path / "s.png", frames, d, np.zeros(400, bool))
    assert (tmp_path / "s.png").read_bytes().startswith(PNG_MAGIC)


def test_score_plot_marks_the_frames_left_out_of_training(tmp_path):
    raw, _, _ = _labelled_sequence(120)
    d = decide(raw, "pcc", Config(median_k=(5,)))
    left_out = np.ones(120, bool)
    left_out[60:90] = False

    def plot(name, trained_on):
        write_report(tmp_path / name, raw, d, trained_on=trained_on)
        return (tmp_path / name / "report" / "scores.png").read_bytes()

    plain = plot("plain", None)
    assert plot("all", np.ones(120, bool)) == plain  # nothing left out: nothing drawn
    assert plot("marked", left_out) != plain
