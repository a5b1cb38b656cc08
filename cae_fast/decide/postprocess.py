"""Keep ordinary frames (``--keep-ordinary``, "the veto" in docs/history.md): a frame the
network's score flags is kept when, seen without the network, it looks like the frames training
used. Every corruption kind of the benchmark changes how sharp a frame is (blur, fog, noise, water)
or what colour some place of it has (mud, glare, fog, drops); rare but clean scenery (a stretch of
pale buildings, trees close by) changes neither, yet the network reconstructs it badly, most of all
when the trimming judgement left it out of training (docs/history.md, items 5, 10 and 13).
``unusualness`` measures both with no model: the log variance of the Laplacian and
``stuck_colour``, each in robust z against the frames training used. The same measure also grows
removed runs (``--grow-runs``, "--extend" in the record): a frame beside a removed stretch goes
with it when the network ranks it high-ish and it is plainly unusual without the network (item 14).
Both change only which frames go: the scores, filtered or not, stay as scoring left them, so that
rankings (ROC-AUC, AP) measure the score and not the decision.
"""

from __future__ import annotations

import numpy as np

from cae_fast.config import GROW_RUNS_GATE, Config
from cae_fast.decide.rules import Decision, Threshold, decide, removed_segments, sanity_warnings
from cae_fast.score.combine import LAP_EPS, robust_z, stuck_colour

# What ``unusualness`` reads, for the scoring pass to compute beside the chosen score.
NEEDS = ("lapvar", "stuck_colour")


def reads_unusualness(cfg: Config) -> bool:
    """Whether ``decide_frames`` reads ``unusualness`` (``--keep-ordinary``, ``--grow-runs`` or both)."""
    return (cfg.keep_ordinary > 0 or cfg.grow_runs > 0) and cfg.threshold == "mad"


def decide_frames(
    scores: dict[str, np.ndarray], cfg: Config, trained_on: np.ndarray | None = None
) -> Decision:
    """``threshold.decide`` on ``scores[cfg.score]``, then ``--grow-runs`` and ``--keep-ordinary``
    when on, with the frames training used (``trained_on``, a bool mask; None: all) as what is
    ordinary. The warnings describe the final decision (``keep_ordinary`` can, say, keep every frame
    the cut flagged)."""
    raw = scores[cfg.score]
    d = decide(raw, cfg.score, cfg)
    if not reads_unusualness(cfg):
        return d
    typical = unusualness(scores, trained_on)
    if cfg.grow_runs > 0:  # first: the frames it adds are unusual, which keep_ordinary never keeps
        d = grow_runs(d, typical, cfg.grow_runs)
    if cfg.keep_ordinary > 0:
        d = keep_ordinary(d, typical, cfg.keep_ordinary)
    d.unusualness = np.asarray(typical)  # saved in the npz whichever of the two read it
    d.warnings = sanity_warnings(np.asarray(raw), d, cfg)
    return d


def unusualness(scores: dict[str, np.ndarray], reference: np.ndarray | None = None) -> np.ndarray:
    """``(N,)``: how far each frame is from ordinary, without the network: the larger of its
    sharpness robust z (either way: blur and noise both count) and its ``stuck_colour`` robust z
    (higher only), both against the frames in ``reference`` (a bool mask; None: all frames). Needs
    ``lapvar`` (minus the variance of the Laplacian) and ``tile_rgb`` (or ``stuck_colour``) in
    ``scores``, frames in order."""
    lapvar = -np.asarray(scores["lapvar"], dtype=np.float64)
    ref = np.ones(len(lapvar), bool) if reference is None else np.asarray(reference, bool)
    if not ref.any():
        ref = np.ones(len(lapvar), bool)
    sharp = np.log(np.maximum(lapvar, 0.0) + LAP_EPS)
    place = scores["stuck_colour"] if "stuck_colour" in scores else stuck_colour(scores)
    return np.maximum(np.abs(robust_z(sharp, ref)), robust_z(place, ref))


def grow_runs(d: Decision, typical: np.ndarray, z: float, gate: float = GROW_RUNS_GATE) -> Decision:
    """``d`` with each removed stretch grown over the contiguous frames beside it whose statistic
    exceeds ``z`` and whose ``unusualness`` exceeds ``gate``. Only for a robust-z rule."""
    t = d.threshold
    if t.stat is None or t.in_score_units:
        raise ValueError(f"--grow-runs needs a robust z removed above its cut, not {t.rule}")
    removed = ~t.is_clean
    joins = removed | ((t.stat > z) & (np.asarray(typical) > gate))
    edges = np.diff(np.concatenate([[0], joins.astype(np.int8), [0]]))
    grown = removed.copy()
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if removed[a:b].any():
            grown[a:b] = True
    added = grown & ~removed
    if not added.any():
        return d
    why = f"z > {z:g}, unusualness > {gate:g} (--grow-runs)"
    rule = f"{t.rule}; {int(added.sum())} frame(s) added beside removed ones: {why}"
    new_t = Threshold(t.delta, ~grown, rule, t.stat, t.stat_name, t.in_score_units)
    segments, peaks = removed_segments(~grown, t.stat)
    return Decision(d.score, d.ks, d.score_med, new_t, segments, peaks, list(d.warnings))


def keep_ordinary(d: Decision, typical: np.ndarray, c: float) -> Decision:
    """``d`` with every frame of ``unusualness`` <= ``c`` kept. Only for a robust-z rule
    (``--threshold mad``)."""
    t = d.threshold
    if t.stat is None or t.in_score_units:
        raise ValueError(f"--keep-ordinary needs a robust z removed above its cut, not {t.rule}")
    ordinary = np.asarray(typical) <= c
    is_clean = t.is_clean | ordinary
    n_kept = int((ordinary & ~t.is_clean).sum())
    rule = f"{t.rule}; {n_kept} flagged frame(s) kept: unusualness <= {c:g} (--keep-ordinary)"
    new_t = Threshold(t.delta, is_clean, rule, t.stat, t.stat_name, t.in_score_units)
    segments, peaks = removed_segments(is_clean, t.stat)
    return Decision(d.score, d.ks, d.score_med, new_t, segments, peaks, list(d.warnings), np.asarray(typical))
