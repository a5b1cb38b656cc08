"""The command line, as flags: ``build_parser`` documents every setting with the paper's default,
``config_from_args`` turns the parsed flags into the one ``Config`` the stages read.
``run.py`` owns argv, printing and exit codes; this module only describes and converts flags."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from cae_fast import config as C
from cae_fast.cli import argtypes as T
from cae_fast.config import Config
from cae_fast.data import builtin
from cae_fast.decide.rules import THRESHOLDS
from cae_fast.errors import InputError
from cae_fast.model.losses import REC_LOSSES, REF_NORMS
from cae_fast.model.zoo import ARCHS
from cae_fast.score.median import MEDIAN_MODES
from cae_fast.score.terms import SCORE_NAMES
from cae_fast.train.loop import CHECKPOINT_NAME, load_checkpoint


def build_parser() -> argparse.ArgumentParser:
    p = T.Parser(
        prog="cae-fast",
        description="Find and remove corrupted frames (raindrops, dirt, glare, blur) from an unlabeled image "
        "set: a convolutional autoencoder is trained on the set itself, each frame gets a score (higher = "
        "dirtier) from how its reconstruction and its look differ from the rest, the score is filtered over "
        "the frame index and cut. Without --data it runs a built-in, labelled synthetic demo sized for a "
        "CPU and prints its evaluation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        metavar="PATH",
        help="folder of images (png/jpg/jpeg/bmp/webp, recursive, natural "
        "sort = frame order), .npy (N,H,W,3 | N,3,H,W | N,H,W; uint8 or float in [0,1]) or .npz with "
        "'images' and optional 'labels' (1 = dirty), or a built-in labelled set builtin:digits / "
        "builtin:drive[:train|val|test][:N] (see --train-data) / builtin:drive-clean[:split][:N] (the "
        "same driving, nothing corrupted). Default: the built-in synthetic sequence",
    )
    d.add_argument(
        "--train-data",
        metavar="PATH",
        help="normal-only training set, in the formats of --data and of the same image size: the network "
        "trains on it and scores --data (default: it trains on --data itself). Then, as with built-in "
        "labelled --data, --median-k defaults to 1: a test set is a set of images, not a sequence. "
        "builtin:NAME picks the train split",
    )
    d.add_argument(
        "--val-data",
        metavar="PATH",
        help="labelled validation set (.npz with 'labels', or builtin:NAME, its val split) on which "
        "--threshold best-f1 chooses its cut",
    )
    d.add_argument(
        "--image-size",
        type=T.positive,
        metavar="S",
        help=f"frames are resized to S x S; a multiple of 16 "
        f"(paper: {C.IMAGE_SIZE}; demo: {C.DEMO_IMAGE_SIZE}; builtin: digits 32, drive 64)",
    )
    d.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable images (listed in the npz as "
        "'skipped_paths') instead of stopping with an error",
    )
    d.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where decoded frames are cached as a uint8 memmap (default: .cae_fast_cache next to --out)",
    )
    d.add_argument(
        "--demo-frames", type=T.positive, default=C.DEMO_FRAMES, help="frames of the built-in demo"
    )
    t = p.add_argument_group("model and training")
    t.add_argument(
        "--arch",
        choices=tuple(ARCHS),
        default=C.ARCH,
        help="network: 'cae' (the paper's convolutional autoencoder), 'fcn' (fully connected), 'cae-bn' "
        "(BatchNorm on the latent too), 'vae' (variational, KL warmed up); same training and scores",
    )
    t.add_argument(
        "--kl-weight",
        type=T.nonnegative_float,
        default=C.KL_WEIGHT,
        help="'vae': weight of the KL term (per pixel value, like L_rec) once warmed up",
    )
    t.add_argument(
        "--kl-warmup",
        type=T.nonnegative_float,
        default=C.KL_WARMUP,
        metavar="EPOCHS",
        help="'vae': epochs over which the KL weight ramps linearly from 0 (0 = full weight at once)",
    )
    t.add_argument(
        "--epochs",
        type=T.nonnegative,
        metavar="N",
        help=f"training epochs (default {C.TRAIN_EPOCHS} of at most --epoch-frames frames; paper: {C.EPOCHS} "
        "passes over every frame, the default with --paper and --train-data); 0 scores the untrained network",
    )
    t.add_argument(
        "--epoch-frames",
        type=T.nonnegative,
        metavar="N",
        help=f"frames per epoch, drawn at random (without repeats) from the frames training uses "
        f"(default {C.EPOCH_FRAMES}; 0 = all of them, one pass, as --paper and --train-data). Epochs, "
        "--trim-at and checkpoints count these epochs: training and the trimming judgements stay at a "
        "fixed number of frames seen, whatever the length of the sequence (docs/history.md, item 4)",
    )
    t.add_argument(
        "--train-frames",
        type=T.positive,
        metavar="N",
        help="train on a fixed random subset of N frames (default: all); every frame is still judged by "
        "the trimming and scored (docs/history.md, item 4)",
    )
    t.add_argument("--batch-size", type=T.positive, default=C.BATCH_SIZE, help="frames per step (paper)")
    t.add_argument("--lr", type=T.learning_rate, default=C.LR, help="Adam learning rate (paper)")
    t.add_argument(
        "--lambda-ref",
        type=T.nonnegative_float,
        default=C.LAMBDA_REF,
        help="weight of L_ref in L_rec + lambda*L_ref (paper)",
    )
    t.add_argument(
        "--m-ref",
        type=T.positive,
        metavar="M",
        help=f"frames drawn each epoch to form H_ref (paper: "
        f"{C.M_REF}; demo: {C.DEMO_M_REF}; capped at the number of frames)",
    )
    t.add_argument(
        "--rec-loss",
        choices=tuple(REC_LOSSES),
        default="mse",
        help="mse = the paper's pixel MSE; ssim = 1 - SSIM (7x7 window), "
        "the structure measure the default score also uses",
    )
    t.add_argument(
        "--ref-norm",
        choices=REF_NORMS,
        default="none",
        help="how L_ref compares latents: 'none' = the paper's squared L2 (the network can satisfy it "
        "by shrinking every latent), 'l2' = on unit-normalised latents (scale-invariant)",
    )
    t.add_argument(
        "--ref-exclude-self",
        action="store_true",
        help="a batch frame that is also in H_ref may not "
        "match itself in L_ref (the paper does not exclude it)",
    )
    t.add_argument(
        "--trim-k",
        type=T.finite,
        metavar="K",
        help=f"after {C.TRIM_AT[0]} epochs on every frame, train (and draw H_ref) only on the frames whose "
        f"filtered '{C.TRIM_SCORE}' robust z, in units of the spread below its median, is <= K, so the "
        f"network does not learn to reproduce the corrupted runs (default {C.TRIM_K}; 0 = every frame, "
        "as the paper; --paper and --train-data: 0)",
    )
    t.add_argument(
        "--trim-at",
        type=T.epochs_list,
        default=C.TRIM_AT,
        metavar="EPOCHS",
        help=f"the trusted frames are judged (all frames, each time) before these epochs, counted from 0 "
        f"(default {','.join(map(str, C.TRIM_AT))}: after 2 epochs, and again after one without the "
        "doubtful frames)",
    )
    t.add_argument(
        "--latent-dim", type=T.positive, default=C.LATENT_DIM, help="size of the latent code (paper)"
    )
    t.add_argument(
        "--channels",
        type=T.channels,
        default=",".join(map(str, C.ENCODER_CHANNELS)),
        help="encoder widths, one stride-2 conv each (image size must be a multiple of 2**len); "
        "16,32,64,128 trains about 3x faster on a CPU",
    )
    t.add_argument(
        "--seed", type=T.seed, default=C.SEED, help="seeds the weights, shuffling, H_ref draws and demo data"
    )
    t.add_argument(
        "--device",
        type=T.device,
        default="auto",
        help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ...",
    )
    t.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (ignored on CPU)")
    t.add_argument(
        "--workers",
        type=T.nonnegative,
        help="DataLoader workers (default: 0 on CPU, up to 4 on CUDA); also the processes that decode "
        "a folder into the frame cache (default: one per CPU; 0 or 1: none)",
    )
    t.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="CHECKPOINT",
        help=f"continue a killed run from CHECKPOINT (default: --out/{CHECKPOINT_NAME}) up to --epochs",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    s = p.add_argument_group("scoring, threshold, output")
    s.add_argument(
        "--score-only",
        metavar="CHECKPOINT",
        help="skip training: score the data with this trained checkpoint",
    )
    s.add_argument(
        "--paper",
        action="store_true",
        help=f"the published recipe exactly: --score pcc --threshold paper --median-k 101 --trim-k 0 "
        f"--epochs {C.EPOCHS} --epoch-frames 0 (overrides --score and --threshold; an explicit --median-k, "
        "--trim-k, --epochs or --epoch-frames still applies); with the default --ref-norm none and "
        "--lambda-ref 1 this is the paper-exact configuration",
    )
    s.add_argument(
        "--score",
        type=C.score_name,  # a name from before the renaming (combo_rss, ...) still works, unlisted
        choices=SCORE_NAMES,
        default=C.SCORE,
        help="per-frame score, higher = dirtier (glossary: docs/method.md): 'combined' (the evidence of "
        "every term together: root-sum-square of the positive robust z's of added_structure, "
        "|lost_detail|, bad_tiles, stuck_colour, |fine_detail|), 'loudest' (the largest of "
        "added_structure, |lost_detail|, |lost_detail_tiles|, bad_tiles), 'trim_score' (the larger of "
        "loudest and stuck_colour: the trimming's), 'added_structure' (1 - SSIM beyond what the "
        "frame's detail explains), 'bad_tiles' (worst tiles "
        "against their own place), 'stuck_colour' (no network: tile colours stuck away from their "
        "place's running baseline), 'pcc' (1 - the paper's PCC), 'mse', 'ssim' (1 - SSIM), 'lapvar' "
        f"(minus the Laplacian variance: the no-model blur baseline), 'latent'; default {C.SCORE}",
    )
    s.add_argument(
        "--median-k",
        type=T.odd_list,
        default=None,
        help=f"median filter length over the frame index (default: {','.join(map(str, C.MEDIAN_KS))}; "
        f"paper: {C.MEDIAN_K}; odd; 1 disables; shrunk "
        "to the largest odd <= N, with a warning, when N < k). A list such as 21,101 judges each frame "
        "at its dirtiest scale: short filters keep short runs that long ones erase",
    )
    s.add_argument(
        "--shots",
        action="store_true",
        help="frames in order: find the cuts between scenes and read every term of the combined scores "
        "against its own scene's median (ranks far better on edited footage, but removes more of a "
        "clean-only video; measured, not the default: docs/external.md)",
    )
    s.add_argument(
        "--median-mode",
        choices=MEDIAN_MODES,
        default=C.MEDIAN_MODE,
        help="median filter edge handling, as scipy.ndimage.median_filter's mode",
    )
    s.add_argument(
        "--threshold",
        choices=tuple(THRESHOLDS),
        default=C.THRESHOLD,
        help="'paper': delta = median(PCC_med) - delta-margin, a frame is clean when PCC_med >= delta; "
        "'mad': removed when the robust z of the filtered score, (s - median) / (1.4826 MAD), exceeds "
        "--mad-k; 'contamination': the --contamination fraction with the largest z; "
        "'fixed': removed when the filtered score is above --fixed; 'best-f1': fixed at the cut "
        "with the highest F1 against labels, chosen on --val-data, else (with --score-only) the cut stored "
        "in the checkpoint, else on the labels of --data itself (optimistic); a training run stores it in "
        "its checkpoint",
    )
    s.add_argument(
        "--delta-margin",
        type=T.finite,
        default=C.DELTA_MARGIN,
        help="margin below the median PCC_med (paper)",
    )
    s.add_argument(
        "--mad-k", type=T.nonnegative_float, default=C.MAD_K, help="'mad': robust z beyond which a frame goes"
    )
    s.add_argument("--stand-out", type=T.nonnegative_float, default=0.0, metavar="Z",
                   help="'mad': when no frame's robust z exceeds Z (e.g. 6), nothing stands out from "
                   "the bulk: remove nothing and say so; 0 = off (docs/external.md)")  # fmt: skip
    s.add_argument(
        "--keep-ordinary",
        type=T.nonnegative_float,
        metavar="C",
        help="'mad': keep a flagged frame whose unusualness (its sharpness and per-place colours, "
        f"without the network) is at most C robust standard deviations from the frames training used "
        f"(default {C.KEEP_ORDINARY_C:g}, 0 = off; --paper and --train-data: 0)",
    )
    s.add_argument(
        "--grow-runs",
        type=T.nonnegative_float,
        metavar="Z",
        help="'mad': a removed run also takes the neighbouring frames above robust z Z that, without "
        f"the network, are far from ordinary (unusualness > {C.GROW_RUNS_GATE:g}; default "
        f"{C.GROW_RUNS_Z:g}, 0 = off; --paper and --train-data: 0)",
    )
    for old, new in C.RENAMED_FIELDS.items():  # the flags' names before the renaming, unlisted
        s.add_argument(f"--{old}", dest=new, type=T.nonnegative_float, help=argparse.SUPPRESS)
    s.add_argument("--contamination", type=T.fraction, metavar="Q", help="'contamination': fraction removed")
    s.add_argument("--fixed", type=T.finite, metavar="VALUE", help="'fixed': the cut on the filtered score")
    s.add_argument(
        "--detrend",
        type=T.odd_or_zero,
        default=0,
        metavar="W",
        help="'mad', 'contamination': subtract a rolling median over W frames (odd; e.g. 5x the filter "
        "length) before the robust z, so slow drifts of the whole sequence do not hide runs; 0 = off",
    )
    s.add_argument(
        "--labels",
        metavar="FILE",
        help="per-frame labels for the evaluation, .npy or text, one 0/1 per frame (1 = dirty); "
        "overrides labels stored with the data",
    )
    s.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write plots and report.html to --out/report, the first thing to review (default: on; "
        "--no-report for pipelines that only read the lists)",
    )
    s.add_argument("--score-batch", type=T.positive, default=C.SCORE_BATCH, help="frames per scoring batch")
    s.add_argument(
        "--out",
        metavar="DIR",
        help="run folder for filter_result.npz, kept.txt, removed.txt, "
        "checkpoint and training log (default: runs/<timestamp>)",
    )
    return p


# The flags whose default a preset (Config.paper, Config.normal_training) changes; given
# explicitly, they win over it.
PRESET_FLAGS = ("epochs", "epoch_frames", "trim_k", "median_k", "keep_ordinary", "grow_runs")


def config_from_args(args: argparse.Namespace) -> Config:
    out = args.out or str(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    if {"contamination": args.contamination, "fixed": args.fixed}.get(args.threshold, 0) is None:
        raise InputError(f"--{args.threshold}", f"a value is needed with --threshold {args.threshold}")
    resume = args.resume
    if resume == "":
        if not args.out:
            raise InputError("--resume", "without a CHECKPOINT it resumes --out/checkpoint.pt; give --out")
        resume = str(Path(args.out) / CHECKPOINT_NAME)
    if args.score_only and args.train_data:
        raise InputError("--train-data", "--score-only does not train; leave out --train-data")
    paths = []
    for path, split in ((args.data, "test"), (args.train_data, "train"), (args.val_data, "val")):
        try:  # builtin:NAME without a split takes the one its role implies
            paths.append(builtin.with_split(path, split))
        except ValueError as exc:
            raise InputError(path, str(exc)) from None
    data, train_data, val_data = paths
    image_size, latent_dim, channels, arch = args.image_size, args.latent_dim, args.channels, args.arch
    if args.score_only:  # the network's shape comes from the checkpoint
        hparams = load_checkpoint(args.score_only)["hparams"]
        image_size = image_size or hparams["image_size"]
        latent_dim, channels = hparams["latent_dim"], tuple(hparams.get("channels", channels))
        arch = hparams.get("arch", "cae")
    made_here = next((p for p in (train_data, data) if builtin.is_builtin(p)), None)
    if image_size is None and made_here:  # built-in sets are made at any size: their own default
        image_size = builtin.DEFAULT_SIZE[builtin.parse(made_here).name]
    # Every other flag is the Config field of its name; these are set above or by the presets below.
    special = {
        "data",
        "train_data",
        "val_data",
        "image_size",
        "latent_dim",
        "channels",
        "arch",
        "resume",
        "out",
    }
    same = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
            if f.name in vars(args) and f.name not in special | set(PRESET_FLAGS)}  # fmt: skip
    cfg = Config(
        **same, data=data, train_data=train_data, val_data=val_data, image_size=image_size,
        latent_dim=latent_dim, channels=channels, arch=arch, resume=resume, progress=not args.no_progress,
        out=out,
    )  # fmt: skip
    if args.paper:  # overrides --score and --threshold (the flag's help says so)
        cfg = cfg.paper()
    if train_data:
        cfg = cfg.normal_training()
    elif builtin.is_builtin(data):
        # A built-in labelled set is a set of images, not a sequence: a filter over the index would
        # blend neighbours, so it is off unless asked for.
        cfg = dataclasses.replace(cfg, median_k=(1,))
    explicit = {k: getattr(args, k) for k in PRESET_FLAGS if getattr(args, k) is not None}
    if "epoch_frames" in explicit:
        explicit["epoch_frames"] = explicit["epoch_frames"] or None  # 0: one pass over the pool per epoch
    return dataclasses.replace(cfg, **explicit).resolved()
