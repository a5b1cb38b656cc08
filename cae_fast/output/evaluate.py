"""Detection quality against known labels (1 = dirty): ranking metrics of the scores and the
confusion at the chosen threshold, overall and per corruption kind.

Every metric comes from scikit-learn; nothing here re-derives one. Scores enter as they leave
scoring, higher = dirtier, so an ROC-AUC below 0.5 means the score points the wrong
way on this data. Labels come from ``--labels FILE``, an npz's ``labels`` or the built-in data.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from cae_fast.decide.rules import Decision
from cae_fast.errors import InputError
from cae_fast.output.export import atomic_write_bytes

METRICS_NAME = "metrics.json"


def load_labels(path: str | os.PathLike[str], n_frames: int) -> np.ndarray:
    """One 0/1 per frame (1 = dirty) from ``.npy`` or a text file (whitespace-separated, ``#``
    comments): uint8 ``(n_frames,)``. Anything else is an ``InputError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such labels file")
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            values = np.loadtxt(path, dtype=np.float64, ndmin=1, comments="#")
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read labels ({exc})") from None
    values = np.asarray(values)
    if values.ndim == 2 and 1 in values.shape:  # a column or a row vector
        values = values.reshape(-1)
    if values.ndim != 1:
        raise InputError(path, f"labels must be one value per frame, got shape {values.shape}")
    if values.dtype.kind not in "biuf" or not np.isin(values, (0, 1)).all():
        raise InputError(path, "labels must be 0 (clean) or 1 (dirty)")
    if len(values) != n_frames:
        raise InputError(path, f"{len(values)} labels for {n_frames} frames")
    return values.astype(np.uint8)


def evaluation_series(raw: np.ndarray, d: Decision) -> dict[str, np.ndarray]:
    """What a ranking is judged on, every one higher = dirtier and untouched by ``--keep-ordinary``
    or ``--grow-runs``: the filtered score (primary), the raw score, and the robust z statistic when the
    rule thresholded that instead."""
    series = {f"{d.score}_med": np.asarray(d.score_med, np.float64), d.score: np.asarray(raw, np.float64)}
    if not d.threshold.in_score_units:
        series[d.threshold.stat_name] = np.asarray(d.stat, np.float64)
    return series


def _ranking(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and average precision, NaN when undefined (one class only, or non-finite scores)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if y.min(initial=1) == y.max(initial=0) or not np.isfinite(s).all():
        return math.nan, math.nan
    return float(roc_auc_score(y, s)), float(average_precision_score(y, s))


def evaluate(
    labels: np.ndarray,
    series: dict[str, np.ndarray],
    is_clean: np.ndarray,
    kinds: np.ndarray | None = None,
    kind_names: tuple[str, ...] = (),
) -> dict:
    """Metrics as a JSON-ready dict.

    ``series``: name -> per-frame dirtiness; the first is the primary one (``roc_auc``,
    ``average_precision``), all get a row in ``ranking``. ``is_clean``: the decision (removed =
    predicted dirty). ``kinds``: per frame -1 clean or an index into ``kind_names``.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y = np.asarray(labels).astype(np.int64)
    pred = (~np.asarray(is_clean, bool)).astype(np.int64)
    ranking = {}
    for name, s in series.items():
        auc, ap = _ranking(y, s)
        ranking[name] = {"roc_auc": auc, "average_precision": ap}
    primary = ranking[next(iter(series))]
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, pred, average="binary", pos_label=1, zero_division=0
    )
    (tn, fp), (fn, tp) = confusion_matrix(y, pred, labels=[0, 1]).tolist()
    n_dirty, n_clean = int(y.sum()), int(len(y) - y.sum())
    metrics = {
        "n_frames": len(y),
        "n_dirty": n_dirty,
        "n_clean": n_clean,
        "score": next(iter(series)),
        "roc_auc": primary["roc_auc"],
        "average_precision": primary["average_precision"],
        "ranking": ranking,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "confusion": [[tn, fp], [fn, tp]],  # rows: true clean / dirty; columns: kept / removed
        "dirty_removed": tp / n_dirty if n_dirty else math.nan,
        "clean_kept": tn / n_clean if n_clean else math.nan,
        "per_kind": _per_kind(y, series, pred, kinds, kind_names) if kinds is not None else [],
    }
    return metrics


def _per_kind(y, series, pred, kinds, kind_names) -> list[dict]:
    """For each corruption kind present: its frames against all clean frames."""
    kinds = np.asarray(kinds)
    clean = y == 0
    rows = []
    for j in np.unique(kinds[kinds >= 0]):
        mine = kinds == j
        subset = mine | clean
        ranks = {name: _ranking(y[subset], s[subset]) for name, s in series.items()}
        row = {
            "kind": kind_names[j] if j < len(kind_names) else str(j),
            "n": int(mine.sum()),
            "roc_auc": {name: r[0] for name, r in ranks.items()},
            "average_precision": {name: r[1] for name, r in ranks.items()},
            "removed": float(pred[mine].mean()),
        }
        rows.append(row)
    return rows


def direction_warnings(metrics: dict) -> list[str]:
    """Labels settle whether the score points the right way: say so when it does not."""
    auc = metrics["roc_auc"]
    if auc < 0.5:  # NaN compares False
        return [
            f"against the labels, {metrics['score']} ranks dirty frames as cleaner than clean ones "
            f"(ROC-AUC {auc:.3f} < 0.5): this score points the wrong way on this data"
        ]
    return []


def to_arrays(metrics: dict) -> dict[str, np.ndarray]:
    """``eval_*`` arrays for ``filter_result.npz`` (plain dtypes, no pickle)."""
    names = list(metrics["ranking"])
    out = {
        f"eval_{key}": np.float64(metrics[key])
        for key in (
            "roc_auc",
            "average_precision",
            "precision",
            "recall",
            "f1",
            "dirty_removed",
            "clean_kept",
        )
    }
    out["eval_confusion"] = np.asarray(metrics["confusion"], np.int64)
    out["eval_series"] = np.asarray(names, dtype=str)
    out["eval_series_roc_auc"] = np.asarray([metrics["ranking"][n]["roc_auc"] for n in names], np.float64)
    out["eval_series_average_precision"] = np.asarray(
        [metrics["ranking"][n]["average_precision"] for n in names], np.float64
    )
    rows = metrics["per_kind"]
    if rows:
        out["eval_kind_names"] = np.asarray([r["kind"] for r in rows], dtype=str)
        out["eval_kind_n"] = np.asarray([r["n"] for r in rows], np.int64)
        out["eval_kind_removed"] = np.asarray([r["removed"] for r in rows], np.float64)
        # (kinds, series), columns in the order of eval_series
        out["eval_kind_roc_auc"] = np.asarray([[r["roc_auc"][n] for n in names] for r in rows], np.float64)
        out["eval_kind_average_precision"] = np.asarray(
            [[r["average_precision"][n] for n in names] for r in rows], np.float64
        )
    return out


def write_metrics_json(out_dir: str | os.PathLike[str], metrics: dict) -> Path:
    """``metrics.json``, atomically; NaN (an undefined metric) is written as null."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    path = Path(out_dir) / METRICS_NAME
    atomic_write_bytes(path, (json.dumps(clean(metrics), indent=2, allow_nan=False) + "\n").encode())
    return path


def format_table(metrics: dict) -> list[str]:
    """The metrics as printable lines."""
    m = metrics
    (tn, fp), (fn, tp) = m["confusion"]
    w = max(len(name) for name in [*m["ranking"], "score (higher = dirtier)"])
    if m["n_dirty"] == 0:  # nothing to rank or to find: only how much of the clean set stayed
        return [
            f"evaluation against the labels: no corrupted frames labelled ({m['n_clean']} clean frames); "
            f"clean kept {m['clean_kept']:.1%} ({tn} / {m['n_clean']}), removed {fp}",
        ]
    lines = [
        f"evaluation against the labels ({m['n_dirty']} dirty, {m['n_clean']} clean frames):",
        f"  {'score (higher = dirtier)':<{w}} {'ROC-AUC':>8} {'avg prec':>9}  (AUC < 0.5: wrong way)",
    ]
    for name, r in m["ranking"].items():
        lines.append(f"  {name:<{w}} {r['roc_auc']:>8.3f} {r['average_precision']:>9.3f}")
    lines += [
        f"  at the threshold: precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}",
        f"  {'':<14}{'kept':>8}{'removed':>9}",
        f"  {'true clean':<14}{tn:>8d}{fp:>9d}",
        f"  {'true dirty':<14}{fn:>8d}{tp:>9d}",
        f"  dirty removed {m['dirty_removed']:7.1%}  ({tp} / {m['n_dirty']})",
        f"  clean kept    {m['clean_kept']:7.1%}  ({tn} / {m['n_clean']})",
    ]
    if m["per_kind"]:
        primary = m["score"]
        lines.append(
            f"  {'per kind (vs clean)':<20}{'frames':>7}{'ROC-AUC':>9}{'avg prec':>10}{'removed':>9}"
        )
        for r in m["per_kind"]:
            lines.append(
                f"  {r['kind']:<20}{r['n']:>7d}{r['roc_auc'][primary]:>9.3f}"
                f"{r['average_precision'][primary]:>10.3f}{r['removed']:>9.1%}"
            )
    return lines
