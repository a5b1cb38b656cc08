"""Every setting of a run in one dataclass, with the paper's numbers as named constants.

The paper's network, optimiser and M_ref apply to user data (``--data``); its training length
(``EPOCHS`` passes over every frame) only to ``--paper`` and ``--train-data`` runs, because on
mixed data it was measured to be the worst case (``TRAIN_EPOCHS``, ``EPOCH_FRAMES``). The
built-in synthetic demo uses smaller ``DEMO_*`` values so that the whole job, training included,
finishes in about three minutes on a 2-core CPU; any flag given explicitly overrides both.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

# The paper's numbers.
LATENT_DIM = 256
IMAGE_SIZE = 224
M_REF = 1024
LAMBDA_REF = 1.0
LR = 5e-4
EPOCHS = 100
BATCH_SIZE = 32
MEDIAN_K = 101
DELTA_MARGIN = 0.05

# Ours (not given by the paper).
ENCODER_CHANNELS = (32, 64, 128, 256)  # one stride-2 conv per entry: total stride 16
MEDIAN_MODE = "reflect"  # median filter edges as scipy.ndimage names them: d c b a | a b c d | d c b a
SEED = 0
# Detection defaults, chosen by measurement on the built-in benchmark (docs/history.md):
# the paper's PCC + median(PCC_med) - 0.05 removed none of the fog, glare, blur or mud frames there.
# combined (all failure modes' evidence together) over loudest (the loudest one alone): measured
# on the same networks (docs/history.md, item 6, as combo_rss over combo: RENAMED_SCORES).
SCORE = "combined"
THRESHOLD = "mad"
# Names before issue 30, still accepted wherever a user or a saved file gives one (--score and the
# old flags, FrameFilter keywords, a checkpoint's stored settings and best-f1 cut); the measurement
# records (docs/history.md, docs/external.md) keep them. Glossary: docs/method.md.
RENAMED_SCORES = {
    "combo_rss": "combined", "combo": "loudest", "combo_lens": "trim_score", "lens": "stuck_colour",
    "ssim_excess": "added_structure", "detail_ratio": "lost_detail", "tile_detail": "lost_detail_tiles",
    "local": "bad_tiles",
}  # fmt: skip
RENAMED_FIELDS = {"veto": "keep_ordinary", "extend": "grow_runs"}
# One 21-frame filter: the paper's 101 alone erases runs shorter than ~50 frames (item 3), and as a
# second scale beside 21 it removed more clean frames around the runs than the weak long runs it
# added (docs/history.md, item 19). --median-k 21,101 still judges each frame at both scales.
MEDIAN_KS = (21,)
# With several filter lengths (--median-k 21,101), a longer one flags a frame only where the
# shortest one's robust z already exceeds this: it catches weak long runs but not the clean frames
# next to a run, whose long-window median the run drags up (64 px benchmark: 1.5-2.5 points more
# clean frames kept, no dirty frame lost; docs/history.md, item 3).
LONG_FILTER_GATE = 1.0
# The published recipe as a whole (--paper): the paper-exact row of every comparison.
PAPER_SCORE, PAPER_THRESHOLD, PAPER_MEDIAN_KS = "pcc", "paper", (MEDIAN_K,)
# Trimmed training (ours): after TRIM_AT[0] epochs on every frame, the network judges the whole set
# (TRIM_SCORE, filtered, robust z > TRIM_K: below the removal cut, so doubtful frames go too) and
# trains on the rest, H_ref included; it judges again, all frames, before each later epoch in
# TRIM_AT, and keeps the last judgement. Trained on everything, the CAE learns to reproduce the
# corrupted runs themselves (64 px seed-2 benchmark: fog AUC 0.998 after 3 epochs, 0.857 after 6,
# 0.42 after 15), some within one epoch (96 px seed 5: a mud run at robust z 2.44 after 2 epochs,
# 0.80 after 3), hence the first judgement after 2. The second, by a network that spent an epoch
# without the doubtful frames, sees the runs it left out more sharply and takes back clean frames
# that only a younger network doubted. Not every epoch: a later re-judgement let part of a raindrop
# run back in (64 px seed 4: 25% of it trusted, 77% removed). docs/history.md, item 1.
# The loudest term, not their sum (combined: summed evidence left out more clean frames, item 6),
# with the no-model stuck_colour among the terms for frames in order (item 20).
TRIM_SCORE = "trim_score"
# Shots (score.shots, frames in order only): a cut where consecutive 8 x 8 thumbnails correlate below
# SHOT_CUT, unless the frames on either side of a segment correlate at SHOT_BRIDGE or more (a
# corruption's onset and end on content that went on). On the external dev split a cut correlates
# at -0.6 to 0.2, consecutive frames of a shot at 0.7 to 1, and fog's onset, the loudest, at -0.1 to
# 0.5. Opt-in (--shots): it ranks far better where scenes change, but on the test split it removed
# a fifth of the clean-only video, so it was not adopted (docs/external.md, "Shot-aware scoring").
SHOT_CUT = 0.5
SHOT_BRIDGE = 0.7
# The cut is in units of the spread below the median (threshold.below_median_z), which the
# corrupted share widens less than the MAD: in whole-sequence robust z (1.5 until item 21) the
# trimming left out 4.3% of the clean frames at 20% corrupted but 8.5% at the paper's 9% (means
# over 64 px sequences), and those frames, never trained on, were what the paper's mix lost. 2.0
# leaves out about as many at 20% as 1.5 did (docs/history.md, item 21).
TRIM_K = 2.0
TRIM_AT = (2, 3)
# Training length on mixed data (ours), counted in frames seen rather than passes: TRAIN_EPOCHS
# epochs of at most EPOCH_FRAMES frames, each drawn afresh from the trusted frames. The CAE learns
# to reproduce a corrupted run with exposure, so the judgement must come early and training stop
# soon after, whatever the length of the sequence. 64 px benchmark, 20% dirty: at 2,400 frames,
# 6 epochs passed 4 of 4 sequences where 12 or 20 passed 1 of 4; at 9,600 frames, 6 passes over
# every frame passed 0 of 12 (70% of the runs caught) where 6 epochs of 2,400 frames passed 5 of
# 12 (90%). docs/history.md, item 4. The paper's EPOCHS passes: --paper, --train-data.
TRAIN_EPOCHS = 6
EPOCH_FRAMES = 2400
SCORE_BATCH = 256  # frames per batch when scoring (no gradients, so larger than training)
# --threshold mad: removed beyond k robust standard deviations (1.4826 MAD). 2.25: on the 64 px
# benchmark (seeds 1-3) 2.5 left 9% of one glare run, 2.0 kept 95.1% of clean frames.
MAD_K = 2.25
# --stand-out (opt-in): with --threshold mad, nothing is removed unless some frame's filtered robust
# z exceeds it. Off by default: on the external test2 split it gave back more good removals than
# bad (weak real runs peak at z 3-5, as clean-only tails do), and the built-in clean-only scene it
# was meant for lost its frames to the trimming at z 8.5 (docs/external.md, "Nothing stands out").
# STAND_OUT is the level below which a run is told that its removals may be only the tail.
STAND_OUT = 6.0
# --keep-ordinary (ours, "the veto" in docs/history.md): a frame flagged by --threshold mad is kept
# when, seen without the network, it is as sharp and its places as coloured as the frames training
# used (postprocess.unusualness <= KEEP_ORDINARY_C robust standard deviations). Much of the rare
# clean scenery the trimming left out passes that check, almost no corrupted frame of the benchmark
# does (1.6% of the left-out ones). 1.0 of 1.0/1.25/1.5 on 115 saved trainings, then a test
# written down beforehand: docs/history.md, item 13. Off (0) for --paper and --train-data (a test
# set of unrelated images has no frames "training used" and no places).
KEEP_ORDINARY_C = 1.0
# --grow-runs (ours, "--extend" in docs/history.md): a removed stretch also takes its neighbours
# whose robust z exceeds GROW_RUNS_Z when, seen without the network, they are far from ordinary
# (unusualness > GROW_RUNS_GATE): a weak part of a corrupted run (a blur run the network ranks at
# z 1-2 has unusualness 3-5) goes with the run, a clean margin (unusualness mostly below 2.5) does
# not. Chosen on 16 trainings, then a test written down beforehand: docs/history.md, item 14.
# Off (0) wherever keep_ordinary is.
GROW_RUNS_Z = 1.0
GROW_RUNS_GATE = 3.0
ARCH = "cae"  # the paper's network; models.ARCHS lists the others (--arch)
FCN_HIDDEN = 512  # --arch fcn: width of the hidden layer on each side of the latent
# --arch vae: weight of the KL term (per pixel value, like L_rec) and the epochs over which it ramps
# up from 0. Measured on builtin:digits (10 epochs): weight 0.1 ends at L_rec 0.044 with the KL
# falling towards 0 (the collapse), 0.02 at 0.039, 0.005 at 0.012, 1e-3 at 0.0048 (20 epochs)
# with test ROC-AUC 1.0; see README "Train on normal data, score a test set".
KL_WEIGHT = 1e-3
KL_WARMUP = 5

# The built-in demo: a 64x64 synthetic driving sequence with raindrop runs, sized for a
# 2-core CPU in <= 3 minutes including training. M_ref scales with the smaller data set.
DEMO_FRAMES = 2000
DEMO_IMAGE_SIZE = 64
DEMO_M_REF = 256
DEMO_KINDS = ("raindrop",)

# Settings whose default depends on whether the run is the demo: (paper value, demo value).
DEMO_OVERRIDES: dict[str, tuple[Any, Any]] = {
    "image_size": (IMAGE_SIZE, DEMO_IMAGE_SIZE),
    "m_ref": (M_REF, DEMO_M_REF),
}


@dataclass
class Config:
    """One run. ``None`` in a ``DEMO_OVERRIDES`` field means "the paper's or the demo's default"."""

    # data
    data: str | None = None  # None: the built-in synthetic sequence
    image_size: int | None = None
    skip_bad: bool = False
    cache_dir: str | None = None  # None: <out>/../.cae_fast_cache
    demo_frames: int = DEMO_FRAMES
    demo_kinds: tuple[str, ...] = DEMO_KINDS
    train_data: str | None = None  # normal-only training set; None: train on `data` (transductive)
    val_data: str | None = None  # labelled set that --threshold best-f1 picks its cut on
    # model and training
    arch: str = ARCH
    kl_weight: float = KL_WEIGHT
    kl_warmup: float = KL_WARMUP
    latent_dim: int = LATENT_DIM
    channels: tuple[int, ...] = ENCODER_CHANNELS
    epochs: int = TRAIN_EPOCHS  # the paper's EPOCHS in the presets paper() and normal_training()
    # Frames per epoch, drawn afresh from the training pool each epoch (None: one pass over the pool,
    # as the paper). Bounds training and the judgement schedule by frames seen, not passes.
    epoch_frames: int | None = EPOCH_FRAMES
    # Train on a fixed random subset of this many frames (None: all); every frame is still judged
    # by the trimming and scored. Bounds the cost on very large sets; how it compares with
    # epoch_frames on long sequences is measured in docs/history.md, item 4.
    train_frames: int | None = None
    batch_size: int = BATCH_SIZE
    lr: float = LR
    lambda_ref: float = LAMBDA_REF
    m_ref: int | None = None
    ref_norm: str = "none"  # "none" = the paper's literal L_ref; "l2" = on unit-normalised latents
    ref_exclude_self: bool = False  # the paper lets a frame match its own H_ref entry
    rec_loss: str = "mse"
    trim_k: float = TRIM_K  # 0 = train on every frame every epoch (the paper)
    trim_at: tuple[int, ...] = TRIM_AT  # epochs (counted from 0) before which the trusted set is judged
    seed: int = SEED
    device: str = "auto"
    amp: bool = False
    workers: int | None = None  # DataLoader, None: 0 on CPU, a few on CUDA; cache decoding, None: all CPUs
    resume: str | None = None
    progress: bool = True
    # scoring, threshold, export
    score_only: str | None = None
    score: str = SCORE
    score_batch: int = SCORE_BATCH
    median_k: tuple[int, ...] = MEDIAN_KS  # several lengths: a frame is judged at its dirtiest scale
    median_mode: str = MEDIAN_MODE
    threshold: str = THRESHOLD
    delta_margin: float = DELTA_MARGIN
    mad_k: float = MAD_K
    stand_out: float = 0.0  # > 0: remove nothing unless some frame's robust z exceeds it
    keep_ordinary: float = KEEP_ORDINARY_C  # 0 = off
    grow_runs: float = GROW_RUNS_Z  # 0 = off
    contamination: float | None = None  # --threshold contamination: fraction removed
    fixed: float | None = None  # --threshold fixed: the cut on the filtered score
    best_f1_cut: float | None = None  # --threshold best-f1: the cut found on labels (set by run.py)
    shots: bool = False  # read every term against its own shot (score.shots); measured, not adopted
    detrend: int = 0  # rolling-median window subtracted before the robust z (0 = whole-sequence baseline)
    labels: str | None = None  # --labels file (overrides labels stored with the data)
    report: bool = True  # the pictures a person reviews first: on unless --no-report
    out: str = "cae_fast_out"
    run_id: str | None = None  # set per run by the CLI and written into every output (stale ones show)

    @property
    def is_demo(self) -> bool:
        return self.data is None

    def resolved(self) -> Config:
        """A copy with every demo-dependent default filled in."""
        values = {}
        for name, (paper, demo) in DEMO_OVERRIDES.items():
            if getattr(self, name) is None:
                values[name] = demo if self.is_demo else paper
        return dataclasses.replace(self, **values)

    def paper(self) -> Config:
        """This run with the published recipe: the paper's score, threshold, filter and training
        length, and none of our additions (trimming, keep_ordinary, grow_runs, shots). The
        paper-exact row of every comparison and ``--paper``."""
        return dataclasses.replace(
            self, score=PAPER_SCORE, threshold=PAPER_THRESHOLD, median_k=PAPER_MEDIAN_KS, trim_k=0.0,
            epochs=EPOCHS, epoch_frames=None, keep_ordinary=0.0, grow_runs=0.0, shots=False,
        )  # fmt: skip

    def normal_training(self) -> Config:
        """This run trained on normal frames only (``--train-data``) and scoring a set of images: the
        paper's training length (there are no corrupted frames to learn), no trimming,
        keep_ordinary or grow_runs (nothing doubtful to leave out, no frames training used among the
        scored ones), and no filter over the frame index (each image judged on its own). On top of
        ``paper()`` it keeps the paper's score and threshold."""
        return dataclasses.replace(
            self, epochs=EPOCHS, epoch_frames=None, trim_k=0.0, keep_ordinary=0.0, grow_runs=0.0,
            median_k=(1,),
        )  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def score_name(name: str) -> str:
    """Today's name of the score ``name``, which may be one from before the renaming."""
    return RENAMED_SCORES.get(name, name)


def current_names(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (``Config`` field -> value) with old field and score names replaced by today's;
    where a setting is given under both names, the current one wins."""
    out = {RENAMED_FIELDS.get(k, k): v for k, v in settings.items() if RENAMED_FIELDS.get(k) not in settings}
    if isinstance(out.get("score"), str):
        out["score"] = score_name(out["score"])
    return out
