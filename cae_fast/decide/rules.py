"""From per-frame scores to the keep / remove decision, the removed segments and sanity warnings.

Every score arrives higher = dirtier (``score.terms``). ``decide`` median-filters the raw score
over the frame index at each length in ``cfg.median_k``, applies the rule named by
``cfg.threshold`` and reports:

- ``paper``: exactly as published, ``delta = median(PCC_med) - DELTA_MARGIN`` and a frame is clean
  when ``PCC_med >= delta``; on the ``pcc`` score (1 - PCC) that is ``median + DELTA_MARGIN``, and
  a frame is clean when its filtered score is at most that.
- ``mad``: robust z-scores ``(s - median) / (1.4826 MAD)`` of the filtered score, a frame is
  removed when z > ``mad_k`` (with ``stand_out`` > 0, only once some frame's z exceeds it; off by
  default, docs/external.md "Nothing stands out"). Optionally against a
  *local* baseline: the score minus its rolling median over ``detrend`` frames, so slow drifts of
  the whole sequence (lighting, scenery) do not hide a run or flag a whole stretch.
- ``contamination``: the top ``contamination`` fraction of that same z statistic.
- ``fixed``: a frame is removed when its filtered score is above ``fixed``.
- ``best-f1``: ``fixed`` at the cut that maximises F1 against labels (``best_f1_cut``); ``run.py``
  finds it on labelled data and puts it in ``cfg.best_f1_cut`` before calling ``decide``.

With several filter lengths the z-based rules take, per frame, the largest z over the scales (a
short filter keeps short runs that a long one erases); ``paper`` and ``fixed``, which cut in the
score's own units, take the largest filtered value over the scales.

The paper rule's fixed offset can lie outside the whole spread of a model's scores; ``decide`` does
not keep everything silently then but returns a warning for the caller to show. (A score that points
the wrong way on some corruption, as blur reconstructing *better*, only labels reveal:
``output.evaluate.direction_warnings``.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from cae_fast.config import DELTA_MARGIN, LONG_FILTER_GATE, PAPER_MEDIAN_KS, STAND_OUT, Config
from cae_fast.score.combine import MAD_TO_SIGMA, robust_z
from cae_fast.score.median import effective_k, median_filter_1d


@dataclass
class Threshold:
    delta: float  # the cut on ``stat``
    is_clean: np.ndarray  # (N,) bool, True = keep
    rule: str  # human-readable description of the rule and its parameters
    stat: np.ndarray | None = None  # (N,) what was compared with delta (None: the filtered score itself)
    stat_name: str = ""  # e.g. "pcc_med", "robust z"; a frame is removed when stat > delta
    in_score_units: bool = True  # stat is the filtered score itself (False: a robust z)


ThresholdRule = Callable[[list[np.ndarray], Config], Threshold]


def paper_rule(score_med: np.ndarray, margin: float, name: str = "pcc_med") -> Threshold:
    """``delta = median(score_med) + margin``; clean iff ``score_med <= delta``. On the ``pcc`` score
    (1 - PCC) this is the published ``PCC_med >= median(PCC_med) - margin``."""
    score_med = np.asarray(score_med)
    delta = float(np.median(score_med)) + float(margin)
    return Threshold(delta, score_med <= delta, f"paper: median({name}) + {margin:g}", score_med, name)


def fixed_rule(score_med: np.ndarray, value: float, name: str = "score_med") -> Threshold:
    """Removed when the filtered score is above ``value`` (a frame exactly at it is kept)."""
    score_med = np.asarray(score_med)
    return Threshold(float(value), score_med <= value, f"fixed: {name} at {value:g}", score_med, name)


def best_f1_cut(dirt: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The cut on ``dirt`` (higher = dirtier; flagged when ``dirt > cut``) with the highest F1
    against ``labels`` (1 = dirty), and that F1.

    Only cuts between distinct values change anything, so the candidates are the midpoints
    between neighbouring distinct values (midway: new data near the boundary is split evenly)
    and one below the smallest (everything flagged). Ties in F1 go to the higher cut (fewer
    frames flagged). Labels must hold both classes.
    """
    dirt = np.asarray(dirt, np.float64)
    y = np.asarray(labels).astype(bool)
    if dirt.shape != y.shape or dirt.ndim != 1:
        raise ValueError(f"need one label per score, got {y.shape} labels for {dirt.shape} scores")
    if y.all() or not y.any():
        raise ValueError("the F1-optimal cut needs labels with both clean (0) and dirty (1) frames")
    if not np.isfinite(dirt).all():
        raise ValueError("scores must be finite to choose a cut")
    values, inverse = np.unique(dirt, return_inverse=True)  # ascending distinct values
    values, pos_at, n_at = values[::-1], np.bincount(inverse, y)[::-1], np.bincount(inverse)[::-1]
    tp = np.cumsum(pos_at)  # flagging every value down to values[j]
    flagged = np.cumsum(n_at)
    f1 = 2.0 * tp / (flagged + y.sum())
    j = int(np.argmax(f1))  # the first maximum: the highest cut
    below = values[j + 1] if j + 1 < len(values) else values[j] - max(1.0, abs(values[j]))
    return float((values[j] + below) / 2.0), float(f1[j])


def _best_f1(score_med: np.ndarray, cfg: Config) -> Threshold:
    """``fixed`` at ``cfg.best_f1_cut`` (in the score's units), named for where it came from."""
    if cfg.best_f1_cut is None:
        raise ValueError("best-f1 needs labels to choose its cut: --val-data, labels with the data, or a "
                         "--score-only checkpoint that stores one")  # fmt: skip
    name = cfg.score + "_med"
    t = fixed_rule(score_med, cfg.best_f1_cut, name)
    t.rule = f"best-f1: {name} at {cfg.best_f1_cut:.6g}, the F1-optimal cut on labels"
    return t


def dirty_z(filtered: Sequence[np.ndarray], detrend: int = 0, mode: str = "reflect") -> np.ndarray:
    """Per frame, the largest robust z over the filter scales.

    ``detrend`` > 0 first subtracts each filtered score's rolling median over that many frames
    (shrunk like a median filter when the sequence is shorter).
    """
    zs = []
    for f in filtered:
        f = np.asarray(f, dtype=np.float64)
        if detrend > 1:
            f = f - median_filter_1d(f, effective_k(len(f), detrend), mode)
        zs.append(robust_z(f))
    # Longer filters only confirm frames the first (shortest) one already finds unusual: they add
    # weak long runs, not the clean margins around a run that a long window's median drags up.
    first = zs[0]
    return np.max([first, *(np.where(first > LONG_FILTER_GATE, z, first) for z in zs[1:])], axis=0)


def _z_name(cfg: Config) -> str:
    return "robust z" + (f" (detrended over {cfg.detrend})" if cfg.detrend > 1 else "")


def mad_rule(filtered: list[np.ndarray], cfg: Config) -> Threshold:
    """Removed when the robust z exceeds ``cfg.mad_k`` (= k MADs * 1.4826), provided some frame's
    exceeds ``cfg.stand_out`` (0: always); otherwise nothing stands out and nothing is removed."""
    z = dirty_z(filtered, cfg.detrend, cfg.median_mode)
    name = _z_name(cfg)
    rule = f"mad: {name} > {cfg.mad_k:g}" + (
        f" if any exceeds {cfg.stand_out:g}" if cfg.stand_out > 0 else ""
    )
    is_clean = np.ones(len(z), bool) if nothing_stands_out(z, cfg) else z <= cfg.mad_k
    return Threshold(float(cfg.mad_k), is_clean, rule, z, name, False)


def nothing_stands_out(z: np.ndarray, cfg: Config) -> bool:
    """Whether no frame's robust z exceeds ``cfg.stand_out`` (with the guard on), so that a cut would
    only trim the tail every robust z has (config.STAND_OUT)."""
    return cfg.threshold == "mad" and cfg.stand_out > 0 and len(z) > 0 and float(np.max(z)) <= cfg.stand_out


def contamination_rule(filtered: list[np.ndarray], cfg: Config) -> Threshold:
    """Removes the ``cfg.contamination`` fraction (rounded) with the largest z; ties at the cut go too."""
    q = cfg.contamination
    if q is None or not 0.0 <= q < 1.0:
        raise ValueError(f"contamination must be a fraction in [0, 1), got {q}")
    z = dirty_z(filtered, cfg.detrend, cfg.median_mode)
    m = int(round(q * len(z)))
    name = _z_name(cfg)
    if m == 0:
        cut, is_clean = np.inf, np.ones(len(z), bool)
    else:
        cut = float(np.partition(z, len(z) - m)[len(z) - m])  # the m-th largest
        is_clean = z < cut
    return Threshold(cut, is_clean, f"contamination: top {q:g} of {name}", z, name, False)


def _in_units(rule: Callable[[np.ndarray, Config], Threshold]) -> ThresholdRule:
    """A rule that cuts in the score's own units, on the largest filtered value over the scales."""
    return lambda filtered, cfg: rule(dirtiest(filtered), cfg)


THRESHOLDS: dict[str, ThresholdRule] = {
    "paper": _in_units(lambda s, cfg: paper_rule(s, cfg.delta_margin, cfg.score + "_med")),
    "mad": mad_rule,
    "contamination": contamination_rule,
    "fixed": _in_units(lambda s, cfg: fixed_rule(s, _need_value(cfg.fixed), cfg.score + "_med")),
    "best-f1": _in_units(_best_f1),
}


def _need_value(value: float | None) -> float:
    if value is None:
        raise ValueError("the fixed threshold needs a value")
    return float(value)


def apply_threshold(name: str, filtered: np.ndarray | Sequence[np.ndarray], cfg: Config) -> Threshold:
    """Rule ``name`` on the filtered score (one array, or one per filter length)."""
    try:
        rule = THRESHOLDS[name]
    except KeyError:
        raise ValueError(f"unknown threshold {name!r}; known: {', '.join(THRESHOLDS)}") from None
    scales = [filtered] if isinstance(filtered, np.ndarray) and filtered.ndim == 1 else list(filtered)
    return rule(scales, cfg)


def dirtiest(filtered: Sequence[np.ndarray]) -> np.ndarray:
    """Per frame, the largest of the filtered values over the scales (the only one, for one scale)."""
    if len(filtered) == 1:
        return np.asarray(filtered[0])
    return np.stack(filtered).max(axis=0)


def removed_segments(is_clean: np.ndarray, stat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous runs of removed frames as ``(S, 2)`` int64 ``[start, end)`` and the peak (maximum)
    of ``stat`` in each."""
    removed = ~np.asarray(is_clean, bool)
    edges = np.diff(np.concatenate([[0], removed.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    segments = np.stack([starts, ends], axis=1).astype(np.int64).reshape(-1, 2)
    peaks = np.array([np.max(stat[a:b]) for a, b in segments], dtype=np.float64)
    return segments, peaks


@dataclass
class Decision:
    """Everything ``decide`` found, as plain arrays for export, printing and the report."""

    score: str
    ks: tuple[int, ...]  # filter lengths actually used (shrunk to the sequence when needed)
    score_med: np.ndarray  # (N,) the filtered score, largest over the scales; never edited after decide
    threshold: Threshold
    segments: np.ndarray  # (S, 2) int64 [start, end) of removed runs
    segment_peak: np.ndarray  # (S,) peak of the thresholded statistic in each run
    warnings: list[str] = field(default_factory=list)
    unusualness: np.ndarray | None = None  # (N,) keep_ordinary's and grow_runs' measure (decide.postprocess)

    @property
    def stat(self) -> np.ndarray:
        t = self.threshold
        return t.stat if t.stat is not None else self.score_med

    @property
    def is_clean(self) -> np.ndarray:
        return self.threshold.is_clean

    def arrays(self) -> dict[str, np.ndarray]:
        """The decision's part of ``filter_result.npz``."""
        return {
            "score_med": self.score_med,
            "threshold_stat": self.stat,
            "delta": np.float64(self.threshold.delta),
            "is_clean": self.is_clean,
            "segments": self.segments,
            "segment_peak": self.segment_peak,
            "warnings": np.asarray(self.warnings, dtype=str).reshape(-1),
            **({} if self.unusualness is None else {"unusualness": self.unusualness}),
        }


def filtered(raw: np.ndarray, ks: Sequence[int], mode: str) -> np.ndarray:
    """``raw`` median-filtered at each length in ``ks`` (each <= len(raw)), largest over the scales."""
    return dirtiest([median_filter_1d(raw, k, mode) for k in ks])


def decide(raw: np.ndarray, score: str, cfg: Config) -> Decision:
    """Filter ``raw`` (one value per frame, in frame order) at each length of ``cfg.median_k``,
    threshold it with ``cfg.threshold``, and collect the removed segments and warnings."""
    raw = np.asarray(raw)
    ks = tuple(sorted({effective_k(len(raw), k) for k in cfg.median_k}))  # shortest first: see dirty_z
    filtered = [median_filter_1d(raw, k, cfg.median_mode) for k in ks]
    t = apply_threshold(cfg.threshold, filtered, cfg)
    stat = t.stat if t.stat is not None else dirtiest(filtered)
    segments, peaks = removed_segments(t.is_clean, stat)
    decision = Decision(score, ks, dirtiest(filtered), t, segments, peaks)
    decision.warnings = sanity_warnings(raw, decision, cfg)
    return decision


def below_median_z(z: np.ndarray) -> np.ndarray:
    """A robust z (larger = dirtier) in units of the spread of the frames below its median
    (``MAD_TO_SIGMA`` x their median distance from it) rather than the whole sequence's MAD. The
    corrupted frames lie above the median: they widen this unit only by moving the median, about
    half as much as they widen the MAD. In MAD units a fixed cut left about twice as many clean
    frames out of training at the paper's 9% corrupted as at the benchmark's 20% (item 21)."""
    z = np.asarray(z, dtype=np.float64)
    below = -z[z < 0]
    scale = MAD_TO_SIGMA * np.median(below) if below.size else 1.0
    return z / (scale if scale > 0 else 1.0)


def paper_view(pcc: np.ndarray, mode: str = "reflect") -> Decision:
    """The published rule on the ``pcc`` score (1 - PCC) whatever the run's own settings: filtered
    over ``PAPER_MEDIAN_KS`` frames, removed where PCC_med is below ``median(PCC_med) - DELTA_MARGIN``.
    Shown beside the tool's own decision, because this rule can keep every corrupted frame without a
    sign (smooth corruptions reconstruct *better*; docs/history.md) and a user comparing with the
    paper should see what it would have done on their data."""
    cfg = Config(
        score="pcc", threshold="paper", median_k=PAPER_MEDIAN_KS, median_mode=mode, delta_margin=DELTA_MARGIN
    )
    with warnings.catch_warnings():  # a sequence shorter than 101 frames shrinks the filter: ks says so
        warnings.simplefilter("ignore")
        return decide(pcc, "pcc", cfg)


def sanity_warnings(raw: np.ndarray, d: Decision, cfg: Config) -> list[str]:
    """Why a decision may be useless: nothing or everything removed. One sentence each. (Whether a
    score points the wrong way on this data only labels can say: ``evaluate.direction_warnings``.)"""
    out = []
    is_clean, n = d.threshold.is_clean, len(raw)
    n_removed = int(n - is_clean.sum())
    if n_removed == 0 and n and d.threshold.stat is not None and nothing_stands_out(d.threshold.stat, cfg):
        top = float(np.max(d.threshold.stat))
        out.append(f"nothing stands out: the highest {d.threshold.stat_name} is {top:.2f}, not above "
                   f"--stand-out {cfg.stand_out:g}, so no frame was removed")  # fmt: skip
    elif n_removed == 0 and n:
        t = d.threshold
        msg = f"the {cfg.threshold} threshold removed no frames ({t.rule}, delta {t.delta:.4g})"
        if cfg.threshold == "paper":
            s = np.asarray(d.score_med, np.float64)
            spread = MAD_TO_SIGMA * float(np.median(np.abs(s - np.median(s))))
            reach = f"{cfg.delta_margin / spread:.1f} robust SDs" if spread > 0 else "beyond a zero MAD"
            msg += (
                f": the margin {cfg.delta_margin:g} is {reach} of {d.score}_med from its median "
                f"(range {s.min():.4g}..{s.max():.4g}); the fixed offset may not fit this model's scale, "
                "try --threshold mad"
            )
        out.append(msg)
    elif n_removed == n:
        out.append(f"the {cfg.threshold} threshold removed every frame ({d.threshold.rule})")
    elif cfg.threshold == "mad" and cfg.stand_out <= 0 and d.threshold.stat is not None:
        top = float(np.max(d.threshold.stat))
        if top <= STAND_OUT:  # the decision stays: on real footage weak runs peak this low too
            out.append(
                f"no frame stands out far from the rest (the highest {d.threshold.stat_name} is {top:.2f}, "
                f"not above {STAND_OUT:g}): the {n_removed} removed frame(s) may be only the tail that every "
                f"spread has; review them before deleting (--stand-out {STAND_OUT:g} removes nothing then)"
            )
    return out


def format_decision(d: Decision, mode: str) -> list[str]:
    """What was decided, in two lines for printing."""
    t, n = d.threshold, len(d.is_clean)
    removed = int(n - d.is_clean.sum())
    return [
        f"{d.score}, median filter k={','.join(map(str, d.ks))} ({mode}); delta = {t.delta:.4f} ({t.rule})",
        f"kept {n - removed}, removed {removed} of {n} frames",
    ]


def format_segments(d: Decision, first: int = 5, trained_on: np.ndarray | None = None) -> list[str]:
    """A few lines listing the removed segments (the first ``first``), for printing; with
    ``trained_on`` (bool per frame), how much of each segment the network trained on."""
    s = d.segments
    if not len(s):
        return ["removed segments: none"]
    name = d.threshold.stat_name or d.score + "_med"
    lines = [f"removed segments: {len(s)} ([start, end) frame index, peak {name}):"]
    for (a, b), peak in zip(s[:first], d.segment_peak[:first], strict=False):
        seen = "" if trained_on is None else f", {np.mean(trained_on[a:b]):.0%} trained on"
        lines.append(f"  {a:>7d} .. {b:<7d} ({b - a:>5d} frames)  peak {peak:.4g}{seen}")
    if len(s) > first:
        lines.append(f"  ... and {len(s) - first} more (all in filter_result.npz 'segments')")
    return lines
