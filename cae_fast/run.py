"""``python -m cae_fast.run`` / ``cae-fast``: find and remove corrupted frames.

data -> train the CAE (L_rec + lambda L_ref) -> per-frame PCC / MSE -> median filter over the
frame index -> paper threshold -> ``filter_result.npz``, ``kept.txt``, ``removed.txt``.
This is the only module that knows about argv, printing and exit codes: bad input anywhere
below raises ``InputError`` and ends here as one line ``error: <path>: <problem>``, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cae_fast import config as C
from cae_fast import ops
from cae_fast.config import Config
from cae_fast.data import load_frames
from cae_fast.errors import InputError
from cae_fast.export import write_lists, write_result
from cae_fast.losses import REF_NORMS
from cae_fast.model import check_image_size
from cae_fast.score import DIRECTION, MEDIAN_MODES, effective_k, median_filter_1d, score_frames
from cae_fast.threshold import THRESHOLDS, apply_threshold
from cae_fast.train import CHECKPOINT_NAME, load_checkpoint, load_model, pick_device, train


def _odd(text: str) -> int:
    k = int(text)
    if k < 1 or k % 2 == 0:
        raise argparse.ArgumentTypeError(f"must be a positive odd number, got {k}")
    return k


def _nonnegative(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _channels(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated widths like 32,64,128,256, got {text!r}"
        ) from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cae-fast",
        description="Find and remove corrupted frames (raindrops, dirt, glare, blur) from an unlabeled image "
        "set with a convolutional autoencoder: train, score each frame by the correlation (PCC) with its "
        "reconstruction, median-filter over the frame index, threshold. Without --data it runs a built-in, "
        "labelled synthetic demo sized for a CPU and prints its evaluation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        metavar="PATH",
        help="folder of images (png/jpg/jpeg/bmp/webp, recursive, natural "
        "sort = frame order), .npy (N,H,W,3 | N,3,H,W | N,H,W; uint8 or float in [0,1]) or .npz with "
        "'images' and optional 'labels' (1 = dirty). Default: the built-in synthetic sequence",
    )
    d.add_argument(
        "--image-size",
        type=int,
        metavar="S",
        help=f"frames are resized to S x S; a multiple of 16 "
        f"(paper: {C.IMAGE_SIZE}; demo: {C.DEMO_IMAGE_SIZE})",
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
    d.add_argument("--demo-frames", type=_positive, default=C.DEMO_FRAMES, help="frames of the built-in demo")
    t = p.add_argument_group("model and training")
    t.add_argument(
        "--epochs",
        type=_nonnegative,
        metavar="N",
        help=f"training epochs (paper: {C.EPOCHS}; demo: {C.DEMO_EPOCHS}); 0 scores the untrained network",
    )
    t.add_argument("--batch-size", type=_positive, default=C.BATCH_SIZE, help="frames per step (paper)")
    t.add_argument("--lr", type=float, default=C.LR, help="Adam learning rate (paper)")
    t.add_argument(
        "--lambda-ref",
        type=float,
        default=C.LAMBDA_REF,
        help="weight of L_ref in L_rec + lambda*L_ref (paper)",
    )
    t.add_argument(
        "--m-ref",
        type=_positive,
        metavar="M",
        help=f"frames drawn each epoch to form H_ref (paper: "
        f"{C.M_REF}; demo: {C.DEMO_M_REF}; capped at the number of frames)",
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
        "--latent-dim", type=_positive, default=C.LATENT_DIM, help="size of the latent code (paper)"
    )
    t.add_argument(
        "--channels",
        type=_channels,
        default=",".join(map(str, C.ENCODER_CHANNELS)),
        help="encoder widths, one stride-2 conv each (image size must be a multiple of 2**len); "
        "16,32,64,128 trains about 3x faster on a CPU",
    )
    t.add_argument(
        "--seed", type=int, default=C.SEED, help="seeds the weights, shuffling, H_ref draws and demo data"
    )
    t.add_argument(
        "--device", default="auto", help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ..."
    )
    t.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (ignored on CPU)")
    t.add_argument("--workers", type=int, help="DataLoader workers (default: 0 on CPU, up to 4 on CUDA)")
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
        "--median-k",
        type=_odd,
        default=C.MEDIAN_K,
        help="median filter length over the frame index "
        "(paper; odd; 1 disables; shrunk to the largest odd <= N, with a warning, when N < k)",
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
        default="paper",
        help="'paper': delta = median(PCC_med) - delta-margin, a frame is clean when PCC_med >= delta",
    )
    s.add_argument(
        "--delta-margin", type=float, default=C.DELTA_MARGIN, help="margin below the median PCC_med (paper)"
    )
    s.add_argument("--score-batch", type=_positive, default=C.SCORE_BATCH, help="frames per scoring batch")
    s.add_argument(
        "--out",
        metavar="DIR",
        help="run folder for filter_result.npz, kept.txt, removed.txt, "
        "checkpoint and training log (default: runs/<timestamp>)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    out = args.out or str(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    resume = args.resume
    if resume == "":
        if not args.out:
            raise InputError("--resume", "without a CHECKPOINT it resumes --out/checkpoint.pt; give --out")
        resume = str(Path(args.out) / CHECKPOINT_NAME)
    image_size, latent_dim, channels = args.image_size, args.latent_dim, args.channels
    if args.score_only:  # the network's shape comes from the checkpoint
        hparams = load_checkpoint(args.score_only)["hparams"]
        image_size = image_size or hparams["image_size"]
        latent_dim, channels = hparams["latent_dim"], tuple(hparams["channels"])
    return Config(
        data=args.data,
        image_size=image_size,
        skip_bad=args.skip_bad,
        cache_dir=args.cache_dir,
        demo_frames=args.demo_frames,
        latent_dim=latent_dim,
        channels=channels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lambda_ref=args.lambda_ref,
        m_ref=args.m_ref,
        ref_norm=args.ref_norm,
        ref_exclude_self=args.ref_exclude_self,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
        workers=args.workers,
        resume=resume,
        progress=not args.no_progress,
        score_only=args.score_only,
        score_batch=args.score_batch,
        median_k=args.median_k,
        median_mode=args.median_mode,
        threshold=args.threshold,
        delta_margin=args.delta_margin,
        out=out,
    ).resolved()


def _prepare_out(out: str) -> Path:
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test{time.time_ns()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(path, f"output folder is not writable ({exc.strerror or exc})") from None
    return path


def _check_size(cfg: Config) -> None:
    try:
        check_image_size(cfg.image_size, cfg.channels)
    except ValueError as exc:
        raise InputError("--image-size", str(exc)) from None


def run(cfg: Config, say=print) -> dict:
    """The whole job for a resolved ``cfg``; returns the arrays it saved. ``say`` prints progress."""
    device = pick_device(cfg.device)
    if cfg.score_only:
        hparams = load_checkpoint(cfg.score_only)["hparams"]
        if cfg.image_size != hparams["image_size"]:
            raise InputError(
                cfg.score_only,
                f"checkpoint was trained on {hparams['image_size']}x{hparams['image_size']} frames, "
                f"not --image-size {cfg.image_size}",
            )
    _check_size(cfg)
    out = _prepare_out(cfg.out)
    t0 = time.perf_counter()
    frames = load_frames(cfg)
    source = frames.description or str(cfg.data)
    say(
        f"cae_fast: {len(frames)} frames from {source}, {cfg.image_size}x{cfg.image_size}, "
        f"ops backend {ops.backend()}, device {device}"
        + (" (frame cache reused)" if frames.from_cache else "")
        + f" [{time.perf_counter() - t0:.1f} s]"
    )
    if frames.skipped:
        say(f"skipped {len(frames.skipped)} unreadable image(s) (--skip-bad), e.g. {frames.skipped[0]}")

    t1 = time.perf_counter()
    model = _trained_model(cfg, frames.images, out, device, say)
    if not cfg.score_only:
        say(f"training took {time.perf_counter() - t1:.1f} s")
    t2 = time.perf_counter()
    scores = score_frames(model, frames.images, cfg, device)
    k = effective_k(len(frames), cfg.median_k)
    pcc_med = median_filter_1d(scores["pcc"], k, cfg.median_mode)
    decision = apply_threshold(cfg.threshold, pcc_med, cfg)
    arrays = {
        "pcc": scores["pcc"],
        "pcc_med": pcc_med,
        "mse": scores["mse"],
        "delta": np.float64(decision.delta),
        "is_clean": decision.is_clean,
        "index": np.arange(len(frames), dtype=np.int64),
    }
    if frames.paths is not None:
        arrays["paths"] = np.asarray(frames.paths, dtype=str)
    if frames.labels is not None:
        arrays["labels"] = frames.labels
    if cfg.skip_bad:
        arrays["skipped_paths"] = np.asarray(frames.skipped, dtype=str).reshape(-1)
    meta = {
        "config": vars(cfg).copy(),
        "median_k_used": k,
        "threshold_rule": decision.rule,
        "ops_backend": ops.backend(),
        "device": str(device),
        "n_frames": len(frames),
    }
    try:
        result = write_result(out, arrays, meta)
        write_lists(out, frames.names, decision.is_clean)
    except OSError as exc:
        raise InputError(out, f"cannot write results ({exc.strerror or exc})") from None
    kept = int(decision.is_clean.sum())
    say(
        f"scored in {time.perf_counter() - t2:.1f} s; median filter k={k} ({cfg.median_mode}); "
        f"delta = {decision.delta:.4f} ({decision.rule})"
    )
    say(f"kept {kept}, removed {len(frames) - kept} of {len(frames)} frames")
    if frames.labels is not None:
        for line in _evaluation(frames.labels, scores["pcc"], pcc_med, decision.is_clean):
            say(line)
    say(f"wrote {result}, {out / 'kept.txt'}, {out / 'removed.txt'}")
    return arrays


def _trained_model(cfg: Config, images: np.ndarray, out: Path, device, say):
    if cfg.score_only:
        say(f"scoring with {cfg.score_only} (no training)")
        return load_model(cfg.score_only, device)
    if len(images) < cfg.batch_size:
        raise InputError(
            cfg.data or "built-in data",
            f"only {len(images)} frames, fewer than one batch (--batch-size {cfg.batch_size})",
        )
    try:
        model, history = train(images, cfg, out)
    except OSError as exc:  # the checkpoint or log could not be written
        raise InputError(exc.filename or out, f"cannot write ({exc.strerror or exc})") from None
    if not history:
        say(
            f"{cfg.resume} is already at epoch {cfg.epochs}: nothing to train"
            if cfg.resume
            else "--epochs 0: scoring the untrained network"
        )
    for h in history[-1:]:
        say(
            f"epoch {h.epoch}/{cfg.epochs}: L_rec {h.l_rec:.4g}, L_ref {h.l_ref:.4g}, "
            f"mean |z| {h.mean_z_norm:.3g}, {h.frames_per_s:.0f} frames/s"
        )
    return model


def _evaluation(labels: np.ndarray, pcc: np.ndarray, pcc_med: np.ndarray, is_clean: np.ndarray) -> list[str]:
    """Against known labels (1 = dirty). AUC scores 'dirtiness', so it uses -PCC (DIRECTION['pcc'])."""
    from sklearn.metrics import roc_auc_score

    dirty = labels.astype(bool)
    n_dirty, n_clean = int(dirty.sum()), int((~dirty).sum())
    lines = [f"evaluation against the labels ({n_dirty} dirty, {n_clean} clean frames):"]
    for name, score in (("PCC", pcc), ("PCC_med", pcc_med)):
        auc = roc_auc_score(dirty, -DIRECTION["pcc"] * score) if n_dirty and n_clean else float("nan")
        lines.append(f"  ROC-AUC of -{name:<8} {auc:.3f}   (0.5 = chance, below 0.5 = points the wrong way)")
    if n_dirty:
        removed = int((~is_clean[dirty]).sum())
        lines.append(f"  dirty removed       {removed / n_dirty:6.1%}  ({removed} / {n_dirty})")
    if n_clean:
        kept = int(is_clean[~dirty].sum())
        lines.append(f"  clean kept          {kept / n_clean:6.1%}  ({kept} / {n_clean})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad flag (2, usage already printed)
        return int(exc.code or 0)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        try:
            run(config_from_args(args))
        except InputError as exc:
            print(f"error: {exc.path}: {exc.problem}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; continue with --resume", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
