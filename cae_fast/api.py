"""The Python API: ``FrameFilter``, a detector in the scikit-learn / PyOD style.

    >>> f = FrameFilter(image_size=96).fit("frames/")     # doctest: +SKIP
    >>> f.decision_scores_, f.threshold_, f.labels_        # doctest: +SKIP

``fit`` and ``python -m cae_fast.run`` share one path (``cae_fast.fitting``: train, score,
decide), so on the same settings both give the same scores and the same decision. It prints
nothing and leaves no file behind: training's checkpoint and the frame cache live in a temporary
folder (unless ``cache_dir`` is given) that is removed when ``fit`` returns; only ``save`` writes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from cae_fast import fitting
from cae_fast.config import Config, current_names, score_name
from cae_fast.data import load_frames
from cae_fast.data.sources import array_frames
from cae_fast.decide.best_f1 import CHECKPOINT_KEY
from cae_fast.errors import InputError
from cae_fast.model.zoo import hparams_of
from cae_fast.score.terms import SCORE_NAMES, score_frames
from cae_fast.train import loop
from cae_fast.train.loop import load_checkpoint, network_of, pick_device

__all__ = ["FrameFilter", "NotFittedError", "Segment"]

log = logging.getLogger("cae_fast")
FramesLike = np.ndarray | str | os.PathLike
# Settings that name files of a command-line job; the API takes frames as arguments instead.
_JOB_ONLY = ("data", "train_data", "out", "score_only", "resume", "report", "labels")
_SAVED_KEY = "frame_filter"  # the fitted attributes inside a saved checkpoint


class Segment(NamedTuple):
    """A run of removed frames: ``start`` to ``end`` (exclusive), and the largest value of
    ``threshold_scores_`` in it."""

    start: int
    end: int
    peak: float


class NotFittedError(ValueError, AttributeError):
    """A method that needs the trained network was called before ``fit`` or ``load``."""


class FrameFilter:
    """Find the corrupted frames of a sequence (raindrops, dirt, glare, blur) without labels.

    Parameters
    ----------
    paper : bool, default False
        Start from the published recipe (score ``pcc``, the ``paper`` threshold, a 101-frame
        median filter, no trimming, 100 epochs over every frame), as ``--paper`` does.
    verbose : bool, default False
        Log what each stage did to the ``"cae_fast"`` logger at INFO level (configure ``logging``
        to see it). Progress bars are the separate setting ``progress``.
    config : Config, optional
        Start from this ``Config`` instead of the defaults; ``settings`` still override it. For
        frames that are all normal (fit on them, then ``decision_function`` on a test set), start
        from ``Config().normal_training()``, the settings ``--train-data`` implies.
    **settings
        Any ``Config`` field, e.g. ``image_size=96``, ``epochs=2``, ``mad_k=3.0``,
        ``device="cpu"``, ``seed=0``, ``cache_dir="/scratch/cache"``. A field left out takes the
        command line's default for a ``--data`` run; ``progress`` is off here.

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_frames,)
        The raw score of each fitted frame (``config_.score``), higher = dirtier, exactly as
        scored (``filter_result.npz`` stores it under the score's name).
    threshold_ : float
        The cut, in the units of ``threshold_scores_`` (named by ``threshold_units_``): for the
        default ``mad`` rule a robust z of the median-filtered score; for ``paper``, ``fixed``
        and ``best-f1`` the median-filtered score itself.
    threshold_scores_ : ndarray of shape (n_frames,)
        What ``threshold_`` was compared with, per frame, higher = dirtier. ``keep_ordinary`` may
        keep a frame above the cut and ``grow_runs`` add one below it (``threshold_rule_`` says so).
    scores_ : dict of str to ndarray
        Every score the fit computed, the chosen one and its terms (which term flagged a frame),
        each higher = dirtier; not kept by ``save``.
    filtered_scores_ : ndarray of shape (n_frames,)
        ``decision_scores_`` median-filtered over the frame index, in the score's units.
    labels_ : ndarray of shape (n_frames,) of int
        1 = remove, 0 = keep.
    segments_ : list of Segment
        The runs of removed frames, ``(start, end, peak)``, end exclusive.
    trained_on_ : ndarray of shape (n_frames,) of bool, or None
        The frames the network trained on after the trimming (None: untrained).
    frame_names_ : list of str, or None
        The source of each frame for path input (image file or ``array.npz[i]``).
    threshold_rule_, threshold_units_ : str
        The rule as applied, and the name of the statistic it cut.
    warnings_ : list of str
        Why the decision may be useless (nothing or everything removed, ...); also raised as
        ``UserWarning``.
    config_ : Config
        The resolved settings of the fit.
    """

    def __init__(self, *, paper: bool = False, verbose: bool = False, config: Config | None = None,
                 **settings: Any) -> None:  # fmt: skip
        settings = current_names(settings)  # veto=, score="combo_rss", ...: the names before issue 30
        for name in settings:
            if name not in Config.__dataclass_fields__:
                raise TypeError(
                    f"FrameFilter got an unknown setting {name!r}; the settings are Config's fields"
                )
            if name in _JOB_ONLY:
                raise TypeError(f"FrameFilter does not take {name!r}: pass frames to fit() and use save()")
        self.paper, self.verbose, self.base_config, self.settings = paper, verbose, config, dict(settings)

    # -- scikit-learn conventions ----------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (scikit-learn's ``clone`` and grid searches use them)."""
        return {"paper": self.paper, "verbose": self.verbose, "config": self.base_config, **self.settings}

    def set_params(self, **params: Any) -> FrameFilter:
        """Change constructor arguments; returns ``self``."""
        p = {**self.get_params(), **params}
        self.__init__(**p)
        return self

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params().items() if v is not False and v is not None
        )
        return f"FrameFilter({args})"

    @property
    def config(self) -> Config:
        """The settings a ``fit`` would use now, with every default filled in as for a ``--data``
        run of the command line (``--paper`` for ``paper=True``)."""
        cfg = self.base_config or Config()
        if self.paper:
            cfg = cfg.paper()
        values = {"progress": False, "score": score_name(cfg.score)}
        values |= {k: _as_field(k, v) for k, v in self.settings.items()}
        cfg = dataclasses.replace(cfg, **values)
        # Defaults that differ between the demo and user data take the user-data side.
        return dataclasses.replace(cfg, data=cfg.data or "<frames>").resolved()

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, X: FramesLike, y: np.ndarray | None = None) -> FrameFilter:
        """Train the network on ``X``, score every frame and decide which to remove.

        Parameters
        ----------
        X : ndarray or path
            Frames in order: a uint8 array ``(N, H, W, 3)`` (also ``(N, H, W)`` gray,
            ``(N, 3, H, W)``, 1 or 4 channels, or float in [0, 1]), a folder of images, or an
            ``.npy`` / ``.npz`` file (``images``, optional ``labels``). Resized to ``image_size``.
        y : ndarray of shape (n_frames,), optional
            Labels (1 = dirty), only read by ``threshold="best-f1"`` (else ignored); an ``.npz``
            with ``labels`` supplies them too.

        Returns
        -------
        self : FrameFilter
        """
        cfg = self.config
        fitting.check_settings(cfg)
        device = pick_device(cfg.device)
        with _workspace() as tmp:
            images, labels, names, cfg = _frames(X, cfg, tmp)
            self._say(f"{len(images)} frames, {cfg.image_size}x{cfg.image_size}, device {device}")
            where = str(X) if isinstance(X, str | os.PathLike) else "frames"
            trained = fitting.train_network(images, cfg, tmp, where)
            for h in trained.history[-1:]:
                self._say(f"epoch {h.epoch}/{cfg.epochs}: L_rec {h.l_rec:.4g}, L_ref {h.l_ref:.4g}")
            if cfg.threshold == "best-f1":
                labels = labels if y is None else _labels(y, len(images))
            s = fitting.score_and_decide(
                trained.model, images, cfg, device, labels=labels, ordinary=trained.trained_on
            )
        self.model_, self.config_ = trained.model, s.cfg
        self._cut = None if s.cut is None else s.cut.to_dict()
        self.decision_scores_, self.scores_ = s.scores[s.cfg.score].astype(np.float64), s.scores
        self.trained_on_, self.frame_names_ = trained.trained_on, names
        self._set_decision(s.decision)
        self._say(f"{self.threshold_rule_}: removed {int(self.labels_.sum())} of {len(self.labels_)} frames")
        for w in self.warnings_:
            warnings.warn(w, UserWarning, stacklevel=2)
        return self

    def fit_predict(self, X: FramesLike, y: np.ndarray | None = None) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X, y).labels_

    def _set_decision(self, d: Any) -> None:
        t, self._decision = d.threshold, d  # the whole Decision, for the command line's outputs
        self.threshold_ = float(t.delta)
        self.threshold_scores_ = np.asarray(d.stat, np.float64)
        self.filtered_scores_ = np.asarray(d.score_med, np.float64)
        self.labels_ = (~np.asarray(d.is_clean, bool)).astype(np.int64)
        self.segments_ = [
            Segment(int(a), int(b), float(p)) for (a, b), p in zip(d.segments, d.segment_peak, strict=True)
        ]
        self.threshold_rule_, self.threshold_units_ = t.rule, t.stat_name
        self.warnings_ = list(d.warnings)

    # -- new frames --------------------------------------------------------------------------------
    def decision_function(self, X: FramesLike) -> np.ndarray:
        """The raw score of each frame of ``X`` under the trained network, higher = dirtier (as
        ``decision_scores_``; what ``--score-only`` computes).

        The default score and its terms are robust z's over the scored frames, so the scores of
        ``X`` are relative to ``X``: pass a sequence or a representative batch, not single frames.

        Returns
        -------
        scores : ndarray of shape (n_frames,)
        """
        return self._score(X, ())[self.config_.score].astype(np.float64)

    def predict(self, X: FramesLike) -> np.ndarray:
        """Labels (1 = remove) for the frames of ``X`` under the fitted rule, as ``--score-only``
        decides: ``mad`` and ``contamination`` cut the robust z over ``X`` at the fitted
        ``mad_k`` / fraction, ``paper`` takes its median from ``X``, ``fixed`` and ``best-f1`` apply
        ``threshold_`` as it is; ``keep_ordinary`` compares with all of ``X``.

        Returns
        -------
        labels : ndarray of shape (n_frames,) of int
        """
        cfg = self._fitted().config_
        device = next(self.model_.parameters()).device
        with _workspace() as tmp:
            images = _frames(X, cfg, tmp)[0]
            d = fitting.score_and_decide(self.model_, images, cfg, device, new_cut=False).decision
        return (~np.asarray(d.is_clean, bool)).astype(np.int64)

    def _score(self, X: FramesLike, extra: tuple[str, ...]) -> dict[str, np.ndarray]:
        cfg = self._fitted().config_
        device = next(self.model_.parameters()).device
        with _workspace() as tmp:
            images = _frames(X, cfg, tmp)[0]
            return score_frames(self.model_, images, cfg, device, tuple(dict.fromkeys((cfg.score, *extra))))

    def _fitted(self) -> FrameFilter:
        if not hasattr(self, "model_"):
            raise NotFittedError("this FrameFilter is not fitted yet: call fit() or FrameFilter.load() first")
        return self

    def _say(self, message: str) -> None:
        if self.verbose:
            log.info(message)

    # -- files ---------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the network, the settings, the cut and the fitted attributes to ``path``.

        The file is also a checkpoint that ``python -m cae_fast.run --score-only`` reads.
        """
        self._fitted()
        path = Path(path)
        state: dict[str, Any] = {
            "format": loop.CHECKPOINT_FORMAT,
            "hparams": hparams_of(self.model_),
            "model": _cpu(self.model_.state_dict()),
            "config": self.config_.to_json(),
        }
        if self._cut is not None:
            state[CHECKPOINT_KEY] = self._cut
        if hasattr(self, "labels_"):
            state[_SAVED_KEY] = {k: _saved(getattr(self, k)) for k in _FITTED}
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)  # a reader sees the old file or the new one, never half of one
        except OSError as exc:
            raise InputError(path, f"cannot write ({exc.strerror or exc})") from None
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> FrameFilter:
        """A fitted ``FrameFilter`` from ``save``, or from a command-line run's ``checkpoint.pt``
        (then without the fitted attributes: ``decision_function`` and ``predict`` work).

        Parameters
        ----------
        path : path
        device : str, optional
            Where the network runs ("cpu", "cuda", "auto"); default: the saved setting.
        """
        state = load_checkpoint(path)
        cfg = _config_from_json(state.get("config"), path)
        cfg = dataclasses.replace(cfg, progress=False, **({} if device is None else {"device": device}))
        if cfg.score not in SCORE_NAMES:  # e.g. combo_ens, removed (docs/history.md, items 7 and 17)
            raise InputError(path, f"saved with score {cfg.score!r}, which this version does not have")
        if CHECKPOINT_KEY in state:
            cfg = dataclasses.replace(cfg, best_f1_cut=float(state[CHECKPOINT_KEY]["value"]))
        dev = pick_device(cfg.device)
        f = cls(config=cfg)
        cut = state.get(CHECKPOINT_KEY)
        cut = None if cut is None else {**cut, "score": score_name(cut["score"])}
        f.model_, f.config_, f._cut = network_of(state, path, dev), cfg, cut
        for k, v in state.get(_SAVED_KEY, {}).items():
            v = v.numpy() if isinstance(v, torch.Tensor) else v
            setattr(f, k, [Segment(*s) for s in v] if k == "segments_" else v)
        return f


# What save() keeps of a fit besides the network and the settings.
_FITTED = ("decision_scores_", "threshold_", "threshold_scores_", "filtered_scores_", "labels_", "segments_",
           "trained_on_", "frame_names_", "threshold_rule_", "threshold_units_", "warnings_")  # fmt: skip


def _saved(value: Any) -> Any:
    """A fitted attribute as ``torch.load(weights_only=True)`` reads it back."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    segments = isinstance(value, list) and value and isinstance(value[0], Segment)
    return [list(s) for s in value] if segments else value


def _as_field(name: str, value: Any) -> Any:
    """A single number or a list for a tuple-valued setting (``median_k=5``) as the tuple."""
    default = Config.__dataclass_fields__[name].default
    if isinstance(default, tuple) and not isinstance(value, tuple):
        return tuple(value) if isinstance(value, list | np.ndarray) else (value,)
    return value


def _workspace() -> tempfile.TemporaryDirectory:
    # ignore_cleanup_errors: a memmap of the frame cache may still be open (Windows cannot delete it).
    return tempfile.TemporaryDirectory(prefix="cae_fast_", ignore_cleanup_errors=True)


def _frames(
    X: FramesLike, cfg: Config, tmp: str
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, Config]:
    """uint8 ``(N, S, S, 3)`` frames of ``X``, their labels and names (None for arrays), and
    ``cfg`` with ``data`` naming the source. Paths go through ``load_frames`` like ``--data``."""
    if isinstance(X, str | os.PathLike):
        cfg = dataclasses.replace(cfg, data=str(X))
        frames = load_frames(dataclasses.replace(cfg, cache_dir=cfg.cache_dir or tmp))
        return frames.images, frames.labels, frames.names, cfg
    out = array_frames(X, cfg.image_size)
    return out, None, None, dataclasses.replace(cfg, data=None)


def _labels(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.isin(y, (0, 1)).all():
        raise InputError("y", f"expected one label per frame, 0 (clean) or 1 (dirty): shape ({n},)")
    return y.astype(np.uint8)


def _cpu(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in sd.items()}


def _config_from_json(text: str | None, path: Any) -> Config:
    """The ``Config`` a checkpoint stores, old names read as today's (``config.current_names``);
    settings this version no longer has are dropped."""
    try:
        stored = json.loads(text)
    except (TypeError, ValueError):
        raise InputError(path, "the checkpoint stores no settings") from None
    fields = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: _as_field(k, v) for k, v in current_names(stored).items() if k in fields})
