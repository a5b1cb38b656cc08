"""The one fitting path, owned by the API: train -> score -> decide.

``FrameFilter.fit`` and the command line (``cae_fast.cli.main``) both call these two steps, so the
same settings and seed give bit-identical scores and the same decision whichever door a user
takes; the command line only adds its output folder, printed lines, exports and report.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae_fast.config import Config
from cae_fast.decide import postprocess
from cae_fast.decide.best_f1 import Cut, choose_cut
from cae_fast.decide.rules import Decision
from cae_fast.errors import InputError
from cae_fast.model.cae import check_image_size
from cae_fast.score.terms import SCORE_NAMES, score_frames
from cae_fast.train.loop import CHECKPOINT_NAME, load_checkpoint, train, train_subset

Flag = Callable[[str], str]  # a setting's name as the caller's user spells it ("--lr" or "lr")


def api_name(name: str) -> str:
    return name


def check_settings(cfg: Config, flag: Flag = api_name) -> None:
    """The settings no later step can meet, refused before any frame is read: an image size the
    network cannot halve down to its bottleneck, an unknown score."""
    try:
        check_image_size(cfg.image_size, cfg.channels)
    except ValueError as exc:
        raise InputError(flag("image_size"), str(exc)) from None
    if cfg.score not in SCORE_NAMES:
        raise InputError(flag("score"), f"unknown score {cfg.score!r}; known: {', '.join(SCORE_NAMES)}")


@dataclasses.dataclass
class Trained:
    """The network, training's history and which frames its last epoch trained on (None: it did
    not train), with the seconds training took."""

    model: torch.nn.Module
    history: list
    trained_on: np.ndarray | None
    seconds: float


@dataclasses.dataclass
class Scored:
    """Every computed score (higher = dirtier), the best-f1 cut (None for other rules), ``cfg``
    with that cut filled in, and the decision."""

    scores: dict[str, np.ndarray]
    cut: Cut | None
    cfg: Config
    decision: Decision


def train_network(
    images: np.ndarray, cfg: Config, workdir: str | os.PathLike, where: Any, flag: Flag = api_name
) -> Trained:
    """Train on ``images`` (checkpoint and log in ``workdir``; ``cfg.resume`` continues one).
    ``where`` names the frames in an error; ``flag`` spells setting names in errors."""
    if len(images) < cfg.batch_size:
        raise InputError(
            where, f"only {len(images)} frames, fewer than one batch ({flag('batch_size')} {cfg.batch_size})"
        )
    workdir, t0 = Path(workdir), time.perf_counter()
    try:
        model, history = train(images, cfg, workdir)
    except OSError as exc:  # the checkpoint or log could not be written
        raise InputError(exc.filename or workdir, f"cannot write ({exc.strerror or exc})") from None
    except FloatingPointError as exc:  # diverged: a setting the user chose, e.g. lr=1e30
        raise InputError(flag("lr"), str(exc)) from None
    seconds = time.perf_counter() - t0
    checkpoint = workdir / CHECKPOINT_NAME if history else Path(cfg.resume) if cfg.resume else None
    if checkpoint is None:  # epochs=0: nothing was trained on
        return Trained(model, history, None, seconds)
    pool = load_checkpoint(checkpoint).get("pool")
    if pool is None:
        pool = train_subset(len(images), cfg)
    trained_on = np.ones(len(images), bool)
    if pool is not None:
        trained_on[:] = False
        trained_on[pool.numpy()] = True
    return Trained(model, history, trained_on, seconds)


def score_and_decide(
    model: torch.nn.Module,
    images: np.ndarray,
    cfg: Config,
    device: torch.device,
    *,
    extra: tuple[str, ...] = (),
    labels: np.ndarray | None = None,
    stored_cut: dict | None = None,
    ordinary: np.ndarray | None = None,
    flag: Flag = api_name,
    new_cut: bool = True,
) -> Scored:
    """Score ``images`` (``extra`` scores too, computed first), choose the best-f1 cut from
    ``labels`` (or apply ``stored_cut``; ``new_cut=False``: ``cfg.best_f1_cut`` as it is) and decide;
    ``ordinary``: the frames training trusted (``keep_ordinary``'s idea of an ordinary frame)."""
    needs = postprocess.NEEDS if postprocess.reads_unusualness(cfg) else ()
    scores = score_frames(model, images, cfg, device, tuple(dict.fromkeys((*extra, cfg.score, *needs))))
    cut = None
    if cfg.threshold == "best-f1" and new_cut:
        cut = choose_cut(cfg, model, device, scores[cfg.score], labels, stored_cut)
        cfg = dataclasses.replace(cfg, best_f1_cut=cut.value)
    try:
        decision = postprocess.decide_frames(scores, cfg, ordinary)
    except ValueError as exc:  # a rule that does not fit the score (e.g. fixed on a two-sided one)
        raise InputError(flag("threshold"), str(exc)) from None
    return Scored(scores, cut, cfg, decision)
