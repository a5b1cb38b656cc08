"""Inputs a run reads only after training, read before it: a bad ``--labels`` file used to cost a
whole training and leave a checkpoint behind (issue 31, item 8)."""

from __future__ import annotations

import numpy as np

from cae_fast.config import Config
from cae_fast.data.builtin import is_builtin
from cae_fast.data.sources import open_source
from cae_fast.errors import InputError
from cae_fast.output import evaluate as ev


def check_late_inputs(cfg: Config, n_frames: int) -> np.ndarray | None:
    """Validate ``--labels`` (returned, one per frame, or None) and ``--val-data`` (it must hold
    labels); raises ``InputError`` naming the file."""
    labels = ev.load_labels(cfg.labels, n_frames) if cfg.labels else None
    if cfg.val_data and not is_builtin(cfg.val_data) and open_source(cfg.val_data).labels is None:
        raise InputError(cfg.val_data, "--val-data needs labels (an .npz with 'labels', or builtin:...)")
    return labels
