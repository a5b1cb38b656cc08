"""How a row is judged on one sequence: ranking (ROC-AUC, AP on a per-frame score, higher =
dirtier) and decision (removed % per kind and severity, clean kept %, minority kept %) apart."""

from __future__ import annotations

import math

import numpy as np

from benchmarks.external.corrupt import KINDS, SEVERITIES


def ranking(labels: np.ndarray, score: np.ndarray | None) -> tuple[float, float]:
    """ROC-AUC and AP; NaN when undefined (no score, one class only, non-finite scores)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if score is None:
        return math.nan, math.nan
    labels, score = np.asarray(labels), np.asarray(score, np.float64)
    if labels.min(initial=1) == labels.max(initial=0) or not np.isfinite(score).all():
        return math.nan, math.nan
    return float(roc_auc_score(labels, score)), float(average_precision_score(labels, score))


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def judge(seq: dict[str, np.ndarray], raw: np.ndarray, filtered: np.ndarray | None, is_clean) -> dict:
    """Everything a table shows for one row on one sequence (``seq``: the benchmark's npz arrays)."""
    labels = np.asarray(seq["labels"]).astype(bool)
    kinds, severity = np.asarray(seq["kinds"]), np.asarray(seq["severity"])
    minority = np.asarray(seq["minority"]).astype(bool)
    removed = ~np.asarray(is_clean, bool)
    auc, ap = ranking(labels, raw)
    auc_f, ap_f = ranking(labels, filtered)
    out = {
        "n": int(labels.size),
        "n_dirty": int(labels.sum()),
        "roc_auc": auc,
        "ap": ap,
        "roc_auc_filtered": auc_f,
        "ap_filtered": ap_f,
        "removed": _share(removed),
        "dirty_removed": _share(removed[labels]),
        "clean_kept": _share(~removed[~labels]),
        "minority_kept": _share(~removed[minority]),
        "per_kind": {},
    }
    clean = ~labels
    for k, kind in enumerate(KINDS):
        sel = kinds == k
        if not sel.any():
            continue
        y = np.r_[np.ones(sel.sum()), np.zeros(clean.sum())]
        kind_auc = ranking(y, np.r_[raw[sel], raw[clean]])[0]
        out["per_kind"][kind] = {
            "roc_auc": kind_auc,
            "removed": _share(removed[sel]),
            "by_severity": {
                str(s): {
                    "n": int((sel & (severity == s)).sum()),
                    "removed_n": int((removed & sel & (severity == s)).sum()),
                }
                for s in SEVERITIES
                if (sel & (severity == s)).any()
            },
        }
    return out
