"""Where ``--threshold best-f1`` gets its cut, and how the cut stays with the checkpoint.

The labels come from the first of these that applies:

1. ``--val-data``: a labelled validation set scored with the same network. The honest choice:
   the cut never sees the frames it then judges.
2. With ``--score-only``: the cut the training run stored in the checkpoint, so later scoring
   of new data applies the same cut.
3. The labels of the scored data itself (``--labels``, or those stored with ``--data``). The F1
   reported there is optimistic, since cut and F1 come from the same frames: right for comparing
   networks on one test set, not as a promise for new data.

A cut is in the units of the filtered score (``score_med``, what the ``fixed`` rule compares), and
it is kept together with the score's name and the filter lengths it was found with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from cae_fast.config import Config, score_name
from cae_fast.data import load_frames
from cae_fast.decide.rules import best_f1_cut, filtered
from cae_fast.errors import InputError
from cae_fast.score.median import effective_k
from cae_fast.score.terms import score_frames

CHECKPOINT_KEY = "best_f1"  # where the cut lives in a checkpoint


@dataclass
class Cut:
    value: float  # in the filtered score's own units: removed when dirtier than this
    score: str
    median_k: list[int]
    source: str  # where the labels came from
    n_frames: int
    precision: float  # on the frames the cut was chosen on
    recall: float
    f1: float
    confusion: list[list[int]]  # [[tn, fp], [fn, tp]]: rows true clean / dirty, columns kept / removed

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def cut_on(raw: np.ndarray, labels: np.ndarray, cfg: Config, source: str) -> Cut:
    """The F1-optimal cut for scores ``raw`` (one per frame, in order) against ``labels``."""
    ks = tuple(dict.fromkeys(effective_k(len(raw), k) for k in cfg.median_k))
    dirt = filtered(raw, ks, cfg.median_mode)
    try:
        cut, f1 = best_f1_cut(dirt, labels)
    except ValueError as exc:  # labels of one class only
        raise InputError(source, str(exc)) from None
    y, removed = np.asarray(labels).astype(bool), dirt > cut
    tp, fp, fn = int((y & removed).sum()), int((~y & removed).sum()), int((y & ~removed).sum())
    tn = len(y) - tp - fp - fn
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return Cut(cut, cfg.score, list(ks), source, len(raw), precision, recall, f1, [[tn, fp], [fn, tp]])


def choose_cut(
    cfg: Config, model: torch.nn.Module, device: torch.device, raw: np.ndarray,
    labels: np.ndarray | None, stored: dict | None,
) -> Cut:  # fmt: skip
    """The cut for this run, from the first source in the module's list that applies; ``model`` is
    the trained network (it scores ``--val-data``); ``stored`` is what the
    ``--score-only`` checkpoint holds under ``CHECKPOINT_KEY`` (None: nothing)."""
    if cfg.val_data:
        val = load_frames(dataclasses.replace(cfg, data=cfg.val_data))
        if val.labels is None:
            raise InputError(cfg.val_data, "--val-data needs labels (an .npz with 'labels', or builtin:...)")
        val_raw = score_frames(model, val.images, cfg, device, (cfg.score,))[cfg.score]
        return cut_on(val_raw, val.labels, cfg, f"--val-data {cfg.val_data}")
    if stored is not None:
        cut = Cut(**{**stored, "score": score_name(stored["score"])})  # the name may predate issue 30
        cut.source = f"{cut.source}, stored in {cfg.score_only}"
        if cut.score != cfg.score:
            raise InputError(
                "--score", f"the checkpoint's best-f1 cut is on {cut.score}; score with --score {cut.score}"
            )
        return cut
    if labels is None:
        raise InputError(
            "--threshold", "best-f1 needs labels: --val-data, labels with --data or --labels, or a "
            "--score-only checkpoint that stores a cut"
        )  # fmt: skip
    return cut_on(raw, labels, cfg, "the labels of the scored data")


def format_cut(cut: Cut) -> list[str]:
    """The cut and how it does on the frames it was chosen on, for printing."""
    (tn, fp), (fn, tp) = cut.confusion
    return [
        f"best-f1 cut: {cut.score}_med at {cut.value:.6g} (median k={','.join(map(str, cut.median_k))}), "
        f"chosen on {cut.source} ({cut.n_frames} frames)",
        f"  there: precision {cut.precision:.3f}, recall {cut.recall:.3f}, F1 {cut.f1:.3f}; "
        f"kept/removed: true clean {tn}/{fp}, true dirty {fn}/{tp}",
    ]
