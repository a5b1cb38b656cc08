"""Diagnostics report: PNG plots in ``<out>/report/`` and one ``report.html`` beside them.

- ``scores.png``: the raw and median-filtered score over the frame index, the threshold, labelled
  dirty runs shaded, removed segments and the frames left out of training marked (plus the
  robust z panel for z-based rules);
- ``paper.png``: the published threshold on this network's PCC (median-filtered over 101 frames,
  delta = median - 0.05) when the run used another rule, for comparison;
- ``hist.png`` and ``roc.png`` when labels are known: clean vs dirty distributions, ROC curves
  (overall and per corruption kind);
- ``extremes.png``: original / reconstruction / |residual| of the most and least anomalous frames;
- ``segments.png``: first, middle and last frame of the longest removed segments: dirt on the lens,
  or rare scenery the trimming left out of training (docs/history.md, item 15)?
- ``training.png``: L_rec, L_ref and mean ||z|| per epoch from the run's ``train_log.jsonl``.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never through
pyplot, so nothing needs a display and no global figure state leaks between runs. Every file is
written atomically.
"""

from __future__ import annotations

import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cae_fast.decide.rules import Decision
from cae_fast.output.export import atomic_write_bytes
from cae_fast.output.extremes import Extremes

REPORT_DIR = "report"
HTML_NAME = "report.html"


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # imported on use: plotting is optional

    return Figure(figsize=(width, height), layout="constrained")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the True runs of ``mask``."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _robust_limits(*arrays: np.ndarray) -> tuple[float, float]:
    """y limits that keep the bulk visible when a few frames score far outside it."""
    v = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
    v = v[np.isfinite(v)]
    if not len(v):
        return 0.0, 1.0
    lo, hi = np.percentile(v, [0.5, 99.5])
    pad = 0.08 * (hi - lo) or 0.05 * (abs(hi) or 1.0)
    return float(lo - pad), float(hi + pad)


def plot_scores(
    path: Path, raw: np.ndarray, d: Decision, labels, kinds, kind_names, trained_on: np.ndarray | None = None
) -> None:
    t = d.threshold
    z_panel = not t.in_score_units
    fig = _figure(11, 5.5 if z_panel else 3.6)
    axes = fig.subplots(2 if z_panel else 1, 1, sharex=True, squeeze=False)[:, 0]
    x = np.arange(len(raw))
    med_label = f"{d.score}_med (k={','.join(map(str, d.ks))})"
    _shade_labels(axes, labels, kinds, kind_names)
    ax = axes[0]
    ax.plot(x, raw, ".", ms=1.5, color="0.55", label=f"{d.score} (raw)", rasterized=True)
    ax.plot(x, d.score_med, "-", lw=1.2, color="C0", label=med_label)
    if t.in_score_units:
        ax.axhline(t.delta, color="k", ls="--", lw=1, label=f"threshold {t.delta:.4g}")
    ax.set_ylim(*_robust_limits(raw, d.score_med))
    ax.set_ylabel(f"{d.score} (higher = dirtier)")
    if z_panel:
        ax = axes[1]
        ax.plot(x, d.stat, "-", lw=1, color="C1", label=t.stat_name)
        ax.axhline(t.delta, color="k", ls="--", lw=1, label=f"cut {t.delta:.3g}")
        ax.set_ylabel("robust z (higher = dirtier)")
    for a, b in d.segments.tolist():  # removed runs as a bar along the bottom of the last panel
        axes[-1].axvspan(a - 0.5, b - 0.5, ymin=0, ymax=0.04, color="k", lw=0)
    xlabel = "frame index   (black bar at the bottom: removed frames"
    if trained_on is not None and not np.all(trained_on):
        # Above it, the frames the trimming left out of training: a removed frame the network never
        # saw may be rare but clean scenery rather than a corruption.
        for a, b in _runs(~np.asarray(trained_on, bool)):
            axes[-1].axvspan(a - 0.5, b - 0.5, ymin=0.05, ymax=0.09, color="0.6", lw=0)
        xlabel += "; grey bar above it: left out of training"
    axes[-1].set_xlabel(xlabel + ")")
    axes[0].set_title(f"{t.rule}: {int((~t.is_clean).sum())} of {len(raw)} frames removed", fontsize=10)
    for ax in axes:
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # headroom: the legend sits above the curves
        ax.legend(loc="upper right", fontsize=7, ncols=4)
        ax.set_xlim(-0.5, len(raw) - 0.5)
    _save(fig, path)


def _shade_labels(axes, labels, kinds, kind_names) -> None:
    """Labelled dirty runs as background bands on every panel, coloured by kind when kinds are
    known; named in the first panel's legend only."""
    if labels is None:
        return
    if kinds is None:
        groups = [("dirty", np.asarray(labels) == 1, "C3")]
    else:
        groups = [(kind_names[j] if j < len(kind_names) else str(j), kinds == j, f"C{2 + j % 8}")
                  for j in np.unique(kinds[kinds >= 0])]  # fmt: skip
    for p, ax in enumerate(axes):
        for name, mask, color in groups:
            for r, (a, b) in enumerate(_runs(mask)):
                label = f"labelled {name}" if p == 0 and r == 0 else None
                ax.axvspan(a - 0.5, b - 0.5, color=color, alpha=0.18, lw=0, label=label)


def plot_histograms(path: Path, raw: np.ndarray, d: Decision, labels: np.ndarray) -> None:
    dirty = np.asarray(labels) == 1
    t = d.threshold
    panels = [
        (f"{d.score} (raw)", raw, None),
        (f"{d.score}_med", d.score_med, t.delta if t.in_score_units else None),
    ]
    if not t.in_score_units:
        panels.append((t.stat_name, d.stat, t.delta))
    fig = _figure(4 * len(panels), 3.2)
    for ax, (name, values, cut) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        lo, hi = _robust_limits(values)
        bins = np.linspace(lo, hi, 60)
        clipped = np.clip(values, lo, hi)
        ax.hist(
            clipped[~dirty],
            bins=bins,
            density=True,
            alpha=0.55,
            color="C0",
            label=f"clean ({(~dirty).sum()})",
        )
        ax.hist(
            clipped[dirty], bins=bins, density=True, alpha=0.55, color="C3", label=f"dirty ({dirty.sum()})"
        )
        if cut is not None and np.isfinite(cut):
            ax.axvline(cut, color="k", ls="--", lw=1, label="threshold")
        ax.set_xlabel(name)
        ax.set_yticks([])
        ax.legend(fontsize=7)
    fig.suptitle("clean vs dirty frames (labels; values outside the plot piled at its edges)", fontsize=10)
    _save(fig, path)


def plot_roc(path: Path, labels: np.ndarray, series: dict[str, np.ndarray], kinds, kind_names) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(labels).astype(int)
    with_kinds = kinds is not None and (kinds >= 0).any()
    fig = _figure(9 if with_kinds else 4.6, 4.2)
    axes = fig.subplots(1, 2 if with_kinds else 1, squeeze=False)[0]
    for ax in axes:
        ax.plot([0, 1], [0, 1], ":", color="0.6", lw=1)
        ax.set_xlabel("false positive rate (clean removed)")
        ax.set_ylabel("true positive rate (dirty removed)")
        ax.set_aspect("equal")
    for name, s in series.items():
        if np.isfinite(s).all():
            fpr, tpr, _ = roc_curve(y, s)
            axes[0].plot(fpr, tpr, lw=1.3, label=f"{name}  AUC {roc_auc_score(y, s):.3f}")
    axes[0].set_title("all frames", fontsize=10)
    axes[0].legend(fontsize=7, loc="lower right")
    if with_kinds:
        name, s = next(iter(series.items()))
        clean = kinds < 0
        for j in np.unique(kinds[kinds >= 0]):
            subset = clean | (kinds == j)
            fpr, tpr, _ = roc_curve(y[subset], s[subset])
            kind = kind_names[j] if j < len(kind_names) else str(j)
            auc = roc_auc_score(y[subset], s[subset])
            axes[1].plot(fpr, tpr, lw=1.3, color=f"C{2 + j % 8}", label=f"{kind}  AUC {auc:.3f}")
        axes[1].set_title(f"{name}, each kind vs the clean frames", fontsize=10)
        axes[1].legend(fontsize=7, loc="lower right")
    _save(fig, path)


def plot_extremes(path: Path, ex: Extremes, score: str, labels) -> None:
    k = len(ex.indices)
    fig = _figure(1.45 * k + 0.8, 5.0)
    axes = fig.subplots(3, k, squeeze=False)
    residual = np.abs(ex.originals - ex.recons).mean(axis=-1)
    vmax = float(np.percentile(residual, 99.5)) or 1.0  # one scale for the whole row: comparable
    for c in range(k):
        i = int(ex.indices[c])
        end = "most" if c < ex.n_most else "least"
        tag = "" if labels is None else (" dirty" if labels[i] else " clean")
        axes[0, c].set_title(f"{end} #{i}{tag}\n{score} {ex.scores[c]:.4g}", fontsize=7)
        axes[0, c].imshow(ex.originals[c], interpolation="nearest")  # the pixels as the model saw them
        axes[1, c].imshow(ex.recons[c], interpolation="nearest")
        axes[2, c].imshow(residual[c], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
    for r, name in enumerate(("original", "reconstruction", "|residual|")):
        axes[r, 0].set_ylabel(name, fontsize=8)
    for ax in axes.ravel():
        ax.set(xticks=[], yticks=[])
    fig.suptitle(f"most anomalous (left) and least anomalous (right) frames by {score}; "
                 f"|residual| on one scale, 0..{vmax:.3f}", fontsize=9)  # fmt: skip
    _save(fig, path)


# Removed segments shown in segments.png: the longest, drawn in frame order.
N_SEGMENTS_SHOWN = 8


def longest_segments(segments: np.ndarray, n: int) -> np.ndarray:
    """Positions in ``segments`` (``(K, 2)`` [start, end)) of the ``n`` longest, in frame order."""
    seg = np.asarray(segments).reshape(-1, 2)
    return np.sort(np.argsort(seg[:, 1] - seg[:, 0], kind="stable")[::-1][:n])


def plot_segments(path: Path, frames: np.ndarray, d: Decision, trained_on: np.ndarray | None) -> None:
    seg = np.asarray(d.segments)
    shown = longest_segments(seg, N_SEGMENTS_SHOWN)
    fig = _figure(5.2, 1.35 * len(shown) + 0.5)
    axes = fig.subplots(len(shown), 3, squeeze=False)
    for r, s in enumerate(shown.tolist()):
        a, b = (int(v) for v in seg[s])
        for c, i in enumerate((a, (a + b - 1) // 2, b - 1)):  # first, middle, last frame
            axes[r, c].imshow(frames[i], interpolation="nearest")
            axes[r, c].set_title(f"#{i}", fontsize=6, pad=2)
        info = f"{a}..{b}\n{b - a} frames\npeak {d.segment_peak[s]:.3g}"
        if trained_on is not None:
            info += f"\n{np.mean(trained_on[a:b]):.0%} trained on"
        axes[r, 0].set_ylabel(info, fontsize=6, rotation=0, ha="right", va="center")
    for ax in axes.ravel():
        ax.set(xticks=[], yticks=[])
    fig.suptitle(f"the {len(shown)} longest of {len(seg)} removed segments, in frame order", fontsize=8)
    _save(fig, path)


def read_train_log(path: str | os.PathLike[str]) -> list[dict]:
    """The JSON lines of ``train_log.jsonl`` (empty when there is none, e.g. with --score-only)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
    return rows


def plot_training(path: Path, log: list[dict]) -> None:
    epochs = [r["epoch"] for r in log]
    curves = [("l_rec", "L_rec"), ("l_ref", "L_ref"), ("mean_z_norm", "mean ||z||")]
    fig = _figure(11, 3.0)
    for ax, (key, name) in zip(fig.subplots(1, 3), curves, strict=True):
        values = [r.get(key, np.nan) for r in log]
        ax.plot(epochs, values, "o-", ms=3)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if key != "mean_z_norm" and all(v > 0 for v in values if np.isfinite(v)):
            ax.set_yscale("log")
    fig.suptitle("training (watch mean ||z||: shrinking latents satisfy the literal L_ref)", fontsize=10)
    _save(fig, path)


def write_report(
    out_dir: str | os.PathLike[str],
    raw: np.ndarray,
    decision: Decision,
    *,
    labels: np.ndarray | None = None,
    kinds: np.ndarray | None = None,
    kind_names: Sequence[str] = (),
    series: dict[str, np.ndarray] | None = None,
    metrics: dict | None = None,
    extremes: Extremes | None = None,
    train_log: list[dict] | None = None,
    summary: Sequence[str] = (),
    trained_on: np.ndarray | None = None,
    frames: np.ndarray | None = None,
    paper: tuple[np.ndarray, Decision] | None = None,
) -> Path:
    """All plots that the inputs allow, and ``report.html`` listing them; returns the html path.

    ``series``: name -> per-frame dirtiness for the ROC curves (needs ``labels``); ``summary``:
    lines of text shown at the top (what was run, what was removed); ``trained_on``: the frames the
    network's last epoch trained on, marked on the score plot and listed per removed segment;
    ``frames``: the ``(N, S, S, 3)`` uint8 images, for ``segments.png``; ``paper``: the raw PCC and
    the published rule's decision on it (``threshold.paper_view``), for ``paper.png``.
    """
    folder = Path(out_dir) / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    kinds = None if kinds is None else np.asarray(kinds)
    images: list[tuple[str, str]] = []  # (file name, caption)

    plot_scores(folder / "scores.png", raw, decision, labels, kinds, kind_names, trained_on)
    images.append(("scores.png", "Score over the frame index with the threshold"))
    if paper is not None:
        plot_scores(folder / "paper.png", paper[0], paper[1], labels, kinds, kind_names)
        images.append(("paper.png", "The paper's threshold on this network's PCC (k=101, median - 0.05)"))
    if labels is not None and 0 < int(np.sum(labels)) < len(labels):
        plot_histograms(folder / "hist.png", raw, decision, labels)
        images.append(("hist.png", "Clean vs dirty distributions"))
        if series:
            plot_roc(folder / "roc.png", labels, series, kinds, kind_names)
            images.append(("roc.png", "ROC curves"))
    if extremes is not None and len(extremes.indices):
        plot_extremes(folder / "extremes.png", extremes, decision.score, labels)
        images.append(("extremes.png", "Most and least anomalous frames"))
    if frames is not None and len(decision.segments):
        plot_segments(folder / "segments.png", frames, decision, trained_on)
        images.append(("segments.png", "What the longest removed segments look like"))
    if train_log:
        plot_training(folder / "training.png", train_log)
        images.append(("training.png", "Training curves"))
    page = render_html(decision, images, metrics, summary, trained_on)
    path = folder / HTML_NAME
    atomic_write_bytes(path, page.encode())
    return path


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def render_html(
    d: Decision,
    images: list[tuple[str, str]],
    metrics: dict | None,
    summary: Sequence[str],
    trained_on: np.ndarray | None = None,
) -> str:
    """One page: summary, warnings, the metrics table, removed segments, the plots (relative links)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>cae_fast report</title><style>"
        "body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
        "text-align:right}th{background:#eee}.warn{background:#fff3cd;border:1px solid #e0b000;"
        "padding:.4em .8em;margin:.3em 0}img{max-width:100%;border:1px solid #ddd}</style></head><body>",
        "<h1>cae_fast report</h1>",
    ]
    parts += [f"<p>{e(line)}</p>" for line in summary]
    parts += [f"<div class='warn'>warning: {e(w)}</div>" for w in d.warnings]
    if metrics:
        parts.append(_metrics_html(metrics))
    parts.append(f"<h2>Removed segments ({len(d.segments)})</h2>")
    if len(d.segments):
        name = e(d.threshold.stat_name or d.score)
        known = trained_on is not None
        rows = "".join(
            f"<tr><td>{a}</td><td>{b}</td><td>{b - a}</td><td>{p:.4g}</td>"
            + (f"<td>{np.mean(trained_on[a:b]):.0%}</td>" if known else "")
            + "</tr>"
            for (a, b), p in zip(d.segments[:50].tolist(), d.segment_peak[:50], strict=False)
        )
        more = f"<p>... {len(d.segments) - 50} more in filter_result.npz</p>" if len(d.segments) > 50 else ""
        head = "<th>start</th><th>end (excl.)</th><th>frames</th><th>peak " + name + "</th>"
        head += "<th>trained on</th>" if known else ""
        parts.append(f"<table><tr>{head}</tr>{rows}</table>{more}")
    for file, caption in images:
        parts.append(f"<h2>{e(caption)}</h2><img src='{e(file)}' alt='{e(caption)}'>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _metrics_html(m: dict) -> str:
    e = html.escape
    (tn, fp), (fn, tp) = m["confusion"]
    rank = "".join(
        f"<tr><td style='text-align:left'>{e(n)}</td><td>{_fmt(r['roc_auc'])}</td>"
        f"<td>{_fmt(r['average_precision'])}</td></tr>"
        for n, r in m["ranking"].items()
    )
    out = [
        f"<h2>Evaluation ({m['n_dirty']} dirty, {m['n_clean']} clean frames)</h2>",
        "<table><tr><th>score (higher = dirtier)</th><th>ROC-AUC</th><th>avg precision</th></tr>"
        f"{rank}</table>",
        "<table><tr><th>at the threshold</th><th>precision</th><th>recall</th><th>F1</th>"
        f"<th>dirty removed</th><th>clean kept</th></tr><tr><td></td><td>{_fmt(m['precision'])}</td>"
        f"<td>{_fmt(m['recall'])}</td><td>{_fmt(m['f1'])}</td><td>{_fmt(m['dirty_removed'])}</td>"
        f"<td>{_fmt(m['clean_kept'])}</td></tr></table>",
        "<table><tr><th></th><th>kept</th><th>removed</th></tr>"
        f"<tr><th>true clean</th><td>{tn}</td><td>{fp}</td></tr>"
        f"<tr><th>true dirty</th><td>{fn}</td><td>{tp}</td></tr></table>",
    ]
    if m["per_kind"]:
        primary = m["score"]
        rows = "".join(
            f"<tr><td style='text-align:left'>{e(r['kind'])}</td><td>{r['n']}</td>"
            f"<td>{_fmt(r['roc_auc'][primary])}</td><td>{_fmt(r['average_precision'][primary])}</td>"
            f"<td>{_fmt(r['removed'])}</td></tr>"
            for r in m["per_kind"]
        )
        out.append(
            f"<table><tr><th>kind (vs clean)</th><th>frames</th><th>ROC-AUC {e(primary)}</th>"
            f"<th>avg precision</th><th>removed</th></tr>{rows}</table>"
        )
    return "\n".join(out)
