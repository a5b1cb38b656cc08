"""From median-filtered scores to the keep / remove decision.

The paper's rule, exactly as published: ``delta = median(PCC_med) - DELTA_MARGIN`` and a frame
is clean when ``PCC_med >= delta``. Rules are functions in a registry, each taking the filtered
score and the config and returning a ``Threshold``, so other rules can be added by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cae_fast.config import Config


@dataclass
class Threshold:
    delta: float  # the cut on the filtered score
    is_clean: np.ndarray  # (N,) bool, True = keep
    rule: str


def paper_rule(pcc_med: np.ndarray, margin: float) -> Threshold:
    """``delta = median(pcc_med) - margin``; clean iff ``pcc_med >= delta``."""
    pcc_med = np.asarray(pcc_med)
    delta = float(np.median(pcc_med)) - float(margin)
    return Threshold(delta=delta, is_clean=pcc_med >= delta, rule=f"paper: median(pcc_med) - {margin:g}")


ThresholdRule = Callable[[np.ndarray, Config], Threshold]

THRESHOLDS: dict[str, ThresholdRule] = {
    "paper": lambda score_med, cfg: paper_rule(score_med, cfg.delta_margin),
}


def apply_threshold(name: str, score_med: np.ndarray, cfg: Config) -> Threshold:
    try:
        rule = THRESHOLDS[name]
    except KeyError:
        raise ValueError(f"unknown threshold {name!r}; known: {', '.join(THRESHOLDS)}") from None
    return rule(score_med, cfg)
