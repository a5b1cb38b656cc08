"""From per-frame scores to the keep / remove decision, the removed segments and sanity warnings.

Every score has a direction (``score.DIRECTION``: +1 higher = cleaner, -1 higher = dirtier,
0 either tail is dirty). ``decide`` median-filters the raw score over the frame index at each
length in ``cfg.median_k``, applies the rule named by ``cfg.threshold`` and reports:

- ``paper``: exactly as published, ``delta = median(PCC_med) - DELTA_MARGIN`` and a frame is clean
  when ``PCC_med >= delta`` (for a score where higher is dirtier the mirror image).
- ``mad``: robust z-scores ``(s - median) / (1.4826 MAD)`` of the filtered score, one-sided in the
  dirty direction (or two-sided), a frame is removed when z > ``mad_k``. Optionally against a
  *local* baseline: the score minus its rolling median over ``detrend`` frames, so slow drifts of
  the whole sequence (lighting, scenery) do not hide a run or flag a whole stretch.
- ``contamination``: the top ``contamination`` fraction of that same z statistic.
- ``fixed``: a frame is removed when its filtered score is dirtier than ``fixed``.
- ``best-f1``: ``fixed`` at the cut that maximises F1 against labels (``best_f1_cut``); ``run.py``
  finds it on labelled data and puts it in ``cfg.best_f1_cut`` before calling ``decide``.

With several filter lengths the z-based rules take, per frame, the largest z over the scales (a
short filter keeps short runs that a long one erases); ``paper`` and ``fixed``, which cut in the
score's own units, take the dirtiest filtered value over the scales.

The paper rule's fixed offset can lie outside the whole spread of a model's scores, and a score can
point the wrong way on some corruptions (blur reconstructs *better*); ``decide`` does not keep
everything silently in those cases but returns warnings for the caller to show.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from cae_fast.config import DELTA_MARGIN, LONG_FILTER_GATE, PAPER_MEDIAN_KS, Config
from cae_fast.score.median import effective_k, median_filter_1d
from cae_fast.score.terms import MAD_TO_SIGMA, robust_z


@dataclass
class Threshold:
    delta: float  # the cut on ``stat``
    is_clean: np.ndarray  # (N,) bool, True = keep
    rule: str  # human-readable description of the rule and its parameters
    stat: np.ndarray | None = None  # (N,) what was compared with delta (None: the filtered score itself)
    stat_name: str = ""  # e.g. "pcc_med", "robust z"
    flag_above: bool = False  # True: removed when stat > delta; False: removed when stat < delta
    in_score_units: bool = True  # stat is the filtered score itself (False: a robust z)


ThresholdRule = Callable[[list[np.ndarray], int, Config], Threshold]


def paper_rule(pcc_med: np.ndarray, margin: float, direction: int = +1, name: str = "pcc_med") -> Threshold:
    """``delta = median(pcc_med) - margin``; clean iff ``pcc_med >= delta``.

    For a score where higher means dirtier (``direction`` -1) the mirror image: ``median + margin``,
    clean iff ``score_med <= delta``.
    """
    pcc_med = np.asarray(pcc_med)
    _need_one_sided(direction, "paper")
    delta = float(np.median(pcc_med)) - direction * float(margin)
    is_clean = pcc_med >= delta if direction > 0 else pcc_med <= delta
    sign = "-" if direction > 0 else "+"
    return Threshold(
        delta, is_clean, f"paper: median({name}) {sign} {margin:g}", pcc_med, name, direction < 0
    )


def fixed_rule(score_med: np.ndarray, value: float, direction: int, name: str = "score_med") -> Threshold:
    """Removed when the filtered score is dirtier than ``value`` (a frame exactly at it is kept)."""
    _need_one_sided(direction, "fixed")
    score_med = np.asarray(score_med)
    is_clean = score_med >= value if direction > 0 else score_med <= value
    return Threshold(float(value), is_clean, f"fixed: {name} at {value:g}", score_med, name, direction < 0)


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


def _best_f1(score_med: np.ndarray, direction: int, cfg: Config) -> Threshold:
    """``fixed`` at ``cfg.best_f1_cut`` (in the score's units), named for where it came from."""
    if cfg.best_f1_cut is None:
        raise ValueError("best-f1 needs labels to choose its cut: --val-data, labels with the data, or a "
                         "--score-only checkpoint that stores one")  # fmt: skip
    name = cfg.score + "_med"
    t = fixed_rule(score_med, cfg.best_f1_cut, direction, name)
    t.rule = f"best-f1: {name} at {cfg.best_f1_cut:.6g}, the F1-optimal cut on labels"
    return t


def _need_one_sided(direction: int, rule: str) -> None:
    if direction not in (+1, -1):
        raise ValueError(f"the {rule} threshold cuts in the score's units and needs a one-sided score")


def dirty_z(
    filtered: Sequence[np.ndarray],
    direction: int,
    detrend: int = 0,
    mode: str = "reflect",
    two_sided: bool = False,
) -> np.ndarray:
    """Per frame, the largest robust z over the filter scales, signed so that larger = dirtier.

    ``detrend`` > 0 first subtracts each filtered score's rolling median over that many frames
    (shrunk like a median filter when the sequence is shorter). Two-sided (or a score of
    direction 0): ``|z|``, either tail is dirty.
    """
    zs = []
    for f in filtered:
        f = np.asarray(f, dtype=np.float64)
        if detrend > 1:
            f = f - median_filter_1d(f, effective_k(len(f), detrend), mode)
        z = robust_z(f)
        zs.append(np.abs(z) if two_sided or direction == 0 else -direction * z)
    # Longer filters only confirm frames the first (shortest) one already finds unusual: they add
    # weak long runs, not the clean margins around a run that a long window's median drags up.
    first = zs[0]
    return np.max([first, *(np.where(first > LONG_FILTER_GATE, z, first) for z in zs[1:])], axis=0)


def _z_name(cfg: Config, direction: int) -> str:
    sided = "two-sided" if cfg.two_sided or direction == 0 else "one-sided"
    local = f", detrended over {cfg.detrend}" if cfg.detrend > 1 else ""
    return f"robust z ({sided}{local})"


def mad_rule(filtered: list[np.ndarray], direction: int, cfg: Config) -> Threshold:
    """Removed when the robust z in the dirty direction exceeds ``cfg.mad_k`` (= k MADs * 1.4826)."""
    z = dirty_z(filtered, direction, cfg.detrend, cfg.median_mode, cfg.two_sided)
    name = _z_name(cfg, direction)
    return Threshold(float(cfg.mad_k), z <= cfg.mad_k, f"mad: {name} > {cfg.mad_k:g}", z, name, True, False)


def contamination_rule(filtered: list[np.ndarray], direction: int, cfg: Config) -> Threshold:
    """Removes the ``cfg.contamination`` fraction (rounded) with the largest z; ties at the cut go too."""
    q = cfg.contamination
    if q is None or not 0.0 <= q < 1.0:
        raise ValueError(f"contamination must be a fraction in [0, 1), got {q}")
    z = dirty_z(filtered, direction, cfg.detrend, cfg.median_mode, cfg.two_sided)
    m = int(round(q * len(z)))
    name = _z_name(cfg, direction)
    if m == 0:
        cut, is_clean = np.inf, np.ones(len(z), bool)
    else:
        cut = float(np.partition(z, len(z) - m)[len(z) - m])  # the m-th largest
        is_clean = z < cut
    return Threshold(cut, is_clean, f"contamination: top {q:g} of {name}", z, name, True, False)


def _in_units(rule: Callable[[np.ndarray, int, Config], Threshold]) -> ThresholdRule:
    """A rule that cuts in the score's own units, on the dirtiest filtered value over the scales."""
    return lambda filtered, direction, cfg: rule(dirtiest(filtered, direction), direction, cfg)


THRESHOLDS: dict[str, ThresholdRule] = {
    "paper": _in_units(lambda s, d, cfg: paper_rule(s, cfg.delta_margin, d, cfg.score + "_med")),
    "mad": mad_rule,
    "contamination": contamination_rule,
    "fixed": _in_units(lambda s, d, cfg: fixed_rule(s, _need_value(cfg.fixed), d, cfg.score + "_med")),
    "best-f1": _in_units(_best_f1),
}


def _need_value(value: float | None) -> float:
    if value is None:
        raise ValueError("the fixed threshold needs a value")
    return float(value)


def apply_threshold(
    name: str, filtered: np.ndarray | Sequence[np.ndarray], cfg: Config, direction: int = +1
) -> Threshold:
    """Rule ``name`` on the filtered score (one array, or one per filter length)."""
    try:
        rule = THRESHOLDS[name]
    except KeyError:
        raise ValueError(f"unknown threshold {name!r}; known: {', '.join(THRESHOLDS)}") from None
    scales = [filtered] if isinstance(filtered, np.ndarray) and filtered.ndim == 1 else list(filtered)
    return rule(scales, direction, cfg)


def dirtiest(filtered: Sequence[np.ndarray], direction: int) -> np.ndarray:
    """Per frame, the dirtiest of the filtered values over the scales (the only one, for one scale).

    For a two-sided score (direction 0) the value whose robust z is farthest from 0.
    """
    if len(filtered) == 1:
        return np.asarray(filtered[0])
    stack = np.stack(filtered)
    if direction > 0:
        return stack.min(axis=0)
    if direction < 0:
        return stack.max(axis=0)
    far = np.argmax(np.abs(np.stack([robust_z(f) for f in filtered])), axis=0)
    return stack[far, np.arange(stack.shape[1])]


def removed_segments(
    is_clean: np.ndarray, stat: np.ndarray, flag_above: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous runs of removed frames as ``(S, 2)`` int64 ``[start, end)`` and the peak of ``stat``
    in each (its maximum when frames are removed for being above the cut, else its minimum)."""
    removed = ~np.asarray(is_clean, bool)
    edges = np.diff(np.concatenate([[0], removed.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    segments = np.stack([starts, ends], axis=1).astype(np.int64).reshape(-1, 2)
    pick = np.max if flag_above else np.min
    peaks = np.array([pick(stat[a:b]) for a, b in segments], dtype=np.float64)
    return segments, peaks


@dataclass
class Decision:
    """Everything ``decide`` found, as plain arrays for export, printing and the report."""

    score: str
    direction: int
    ks: tuple[int, ...]  # filter lengths actually used (shrunk to the sequence when needed)
    score_med: np.ndarray  # (N,) the filtered score, dirtiest over the scales, in the score's units
    threshold: Threshold
    segments: np.ndarray  # (S, 2) int64 [start, end) of removed runs
    segment_peak: np.ndarray  # (S,) peak of the thresholded statistic in each run
    warnings: list[str] = field(default_factory=list)
    typicality: np.ndarray | None = None  # (N,) the veto's measure, when applied (decide.postprocess)

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
            **({} if self.typicality is None else {"typicality": self.typicality}),
        }


def filtered(raw: np.ndarray, ks: Sequence[int], mode: str, direction: int) -> np.ndarray:
    """``raw`` median-filtered at each length in ``ks`` (each <= len(raw)), dirtiest over the scales."""
    return dirtiest([median_filter_1d(raw, k, mode) for k in ks], direction)


def decide(raw: np.ndarray, score: str, direction: int, cfg: Config) -> Decision:
    """Filter ``raw`` (one value per frame, in frame order) at each length of ``cfg.median_k``,
    threshold it with ``cfg.threshold``, and collect the removed segments and warnings."""
    raw = np.asarray(raw)
    ks = tuple(sorted({effective_k(len(raw), k) for k in cfg.median_k}))  # shortest first: see dirty_z
    filtered = [median_filter_1d(raw, k, cfg.median_mode) for k in ks]
    t = apply_threshold(cfg.threshold, filtered, cfg, direction)
    stat = t.stat if t.stat is not None else dirtiest(filtered, direction)
    segments, peaks = removed_segments(t.is_clean, stat, t.flag_above)
    decision = Decision(score, direction, ks, dirtiest(filtered, direction), t, segments, peaks)
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
    """The published rule on ``pcc`` whatever the run's own settings: PCC median-filtered over
    ``PAPER_MEDIAN_KS`` frames, removed below ``median(PCC_med) - DELTA_MARGIN``. Shown beside the
    tool's own decision, because this rule can keep every corrupted frame without a sign (smooth
    corruptions reconstruct *better*; docs/detection.md) and a user comparing with the paper should
    see what it would have done on their data."""
    cfg = Config(
        score="pcc", threshold="paper", median_k=PAPER_MEDIAN_KS, median_mode=mode, delta_margin=DELTA_MARGIN
    )
    with warnings.catch_warnings():  # a sequence shorter than 101 frames shrinks the filter: ks says so
        warnings.simplefilter("ignore")
        return decide(pcc, "pcc", +1, cfg)


def sanity_warnings(raw: np.ndarray, d: Decision, cfg: Config) -> list[str]:
    """Why a decision may be useless: nothing or everything removed, or the removed frames' raw
    scores going the opposite way of what the score assumes. One sentence each."""
    out = []
    is_clean, n = d.threshold.is_clean, len(raw)
    n_removed = int(n - is_clean.sum())
    if n_removed == 0 and n:
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
    if 0 < n_removed < n and d.direction != 0:
        med_removed, med_kept = float(np.median(raw[~is_clean])), float(np.median(raw[is_clean]))
        if d.direction * (med_removed - med_kept) > 0:
            higher = "higher" if med_removed > med_kept else "lower"
            cleaner = "higher" if d.direction > 0 else "lower"
            out.append(
                f"removed frames have a {higher} {d.score} (median {med_removed:.4g}) than kept frames "
                f"({med_kept:.4g}), but a {cleaner} {d.score} is supposed to mean cleaner: on this data the "
                "score may point the wrong way (corruptions that simplify a frame, like blur, haze or fog, "
                "reconstruct better); check the report or try another --score"
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
