"""``python -m cae_fast.run`` / ``cae-fast``: find and remove corrupted frames.

data -> train the network (L_rec + lambda L_ref; on ``--train-data`` when given, else on the data
itself) -> per-frame scores -> median filter over the frame index -> threshold (paper / mad /
contamination / fixed / best-f1) -> ``filter_result.npz``, ``kept.txt``, ``removed.txt``,
``scores.csv``; with labels ``metrics.json``; with ``--report`` plots and ``report/report.html``.
This is the only module that knows about argv, printing and exit codes: bad input anywhere
below raises ``InputError`` and ends here as one line ``error: <path>: <problem>``, exit 2.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cae_fast import dist, fitting, ops
from cae_fast.cli.flags import build_parser, config_from_args
from cae_fast.cli.preflight import check_late_inputs
from cae_fast.config import DELTA_MARGIN, PAPER_MEDIAN_KS, Config
from cae_fast.data import Frames, check_same_size, default_cache_dir, load_frames
from cae_fast.decide.best_f1 import CHECKPOINT_KEY, format_cut
from cae_fast.decide.rules import Decision, filtered, format_decision, format_segments, paper_view
from cae_fast.errors import InputError
from cae_fast.model.zoo import n_parameters
from cae_fast.output import evaluate as ev
from cae_fast.output.export import write_lists, write_result, write_scores_csv
from cae_fast.output.extremes import extremes_from_model
from cae_fast.output.outdir import hold
from cae_fast.output.report import read_train_log, write_report
from cae_fast.train.loop import (
    CHECKPOINT_NAME,
    LOG_NAME,
    load_checkpoint,
    network_of,
    pick_device,
    store_in_checkpoint,
)


def _flag(name: str) -> str:
    """A setting's name as the command line spells it, for ``fitting``'s errors."""
    return "--" + name.replace("_", "-")


def run(cfg: Config, say=print) -> dict:
    """The whole job for a resolved ``cfg``; returns the arrays it saved. ``say`` prints progress.

    Under torchrun every rank trains and scores its share; only rank 0 prints and writes, holding
    the run folder (``outdir.hold``: outside the inputs, locked, tagged with a run id)."""
    if not dist.is_main():
        return _run(cfg, _quiet)
    with hold(cfg, cfg.cache_dir or default_cache_dir(cfg.out)) as cfg:
        return _run(cfg, say)


def _run(cfg: Config, say) -> dict:
    device = pick_device(cfg.device)
    stored_cut, checkpoint = None, None
    if cfg.score_only:
        checkpoint = load_checkpoint(cfg.score_only)
        hparams, stored_cut = checkpoint["hparams"], checkpoint.get(CHECKPOINT_KEY)
        if cfg.image_size != hparams["image_size"]:
            raise InputError(
                cfg.score_only,
                f"checkpoint was trained on {hparams['image_size']}x{hparams['image_size']} frames, "
                f"not --image-size {cfg.image_size}",
            )
    fitting.check_settings(cfg, _flag)
    out = Path(cfg.out)  # created, locked and checked writable by output.outdir.hold
    t0 = time.perf_counter()
    frames = _load(cfg)
    source = frames.description or str(cfg.data)
    say(
        f"cae_fast: {len(frames)} frames from {source}, {cfg.image_size}x{cfg.image_size}, "
        f"ops backend {ops.backend()}, device {device}"
        + (" (frame cache reused)" if frames.from_cache else "")
        + f" [{time.perf_counter() - t0:.1f} s]"
    )
    if frames.skipped:
        say(f"skipped {len(frames.skipped)} unreadable image(s) (--skip-bad), e.g. {frames.skipped[0]}")

    labels_file = check_late_inputs(cfg, len(frames))
    train_frames = _training_frames(cfg, frames, say)
    t1 = time.perf_counter()
    model, trained_on = _trained_model(cfg, train_frames.images, out, device, say, checkpoint)
    train_seconds = 0.0 if cfg.score_only else time.perf_counter() - t1
    if not cfg.score_only:
        say(f"training took {train_seconds:.1f} s")
    t2 = time.perf_counter()
    labels, kinds = frames.labels, frames.kinds
    if labels_file is not None:  # a user's labels file says nothing about corruption kinds
        labels, kinds = labels_file, None
    ordinary = trained_on if trained_on is not None and train_frames is frames else None
    scored = fitting.score_and_decide(model, frames.images, cfg, device, extra=("pcc", "mse"), labels=labels,
                                      stored_cut=stored_cut, ordinary=ordinary, flag=_flag)  # fmt: skip
    scores, cut, cfg, decision = scored.scores, scored.cut, scored.cfg, scored.decision
    raw = scores[cfg.score]
    for line in format_cut(cut) if cut is not None else ():
        say(line)
    series = ev.evaluation_series(raw, decision)
    metrics = (
        None if labels is None else ev.evaluate(labels, series, decision.is_clean, kinds, frames.kind_names)
    )
    decision.warnings += ev.direction_warnings(metrics) if metrics else []
    paper = paper_beside(cfg, scores["pcc"])
    arrays = {
        **scores,
        "pcc_med": filtered(scores["pcc"], decision.ks, cfg.median_mode),
        **decision.arrays(),
        "index": np.arange(len(frames), dtype=np.int64),
        "n_params": np.int64(n_parameters(model)),
        "train_seconds": np.float64(train_seconds),
        **(ev.to_arrays(metrics) if metrics else {}),
    }
    if paper is not None:
        arrays |= {"paper_delta": np.float64(paper.threshold.delta), "paper_is_clean": paper.is_clean}
    if trained_on is not None and train_frames is frames:
        arrays["trained_on"] = trained_on
    if frames.paths is not None:
        arrays["paths"] = np.asarray(frames.paths, dtype=str)
    if labels is not None:
        arrays["labels"] = labels
    if cfg.skip_bad:
        arrays["skipped_paths"] = np.asarray(frames.skipped, dtype=str).reshape(-1)
    meta = {
        "config": vars(cfg).copy(),
        "median_k_used": list(decision.ks),
        "score": cfg.score,
        "threshold_rule": decision.threshold.rule,
        "ops_backend": ops.backend(),
        "ops_backends": ops.backends_used(),  # per op: a compiled op that failed its check ran as reference
        "device": str(device),
        "n_frames": len(frames),
        "run_id": cfg.run_id,
    }
    if not dist.is_main():
        return arrays
    summary = [f"scored in {time.perf_counter() - t2:.1f} s", *format_decision(decision, cfg.median_mode)]
    if paper is not None:
        summary.append(paper_line(paper, labels))
    if "trained_on" in arrays and not trained_on.all():
        if cfg.train_frames:
            summary.append(left_out_line(trained_on, decision.is_clean, NOT_IN_SUBSET))
        else:
            summary.append(left_out_line(trained_on, decision.is_clean))
    try:
        result = write_result(out, arrays, meta)
        write_lists(out, frames.names, decision.is_clean)
        # Submission style: one anomaly score per frame, higher = more anomalous (the filtered score).
        write_scores_csv(out, frames.paths or list(range(len(frames))), decision.score_med)
        if cut is not None and not cfg.score_only and (out / CHECKPOINT_NAME).is_file():
            store_in_checkpoint(out / CHECKPOINT_NAME, CHECKPOINT_KEY, cut.to_dict())
        if metrics:
            ev.write_metrics_json(out, metrics)
        if cfg.report:
            log_dir = Path(cfg.score_only).parent if cfg.score_only else out  # the model's own training
            extremes = extremes_from_model(model, frames.images, series[cfg.score], raw, device)
            page = write_report(out, raw, decision, labels=labels, kinds=kinds, kind_names=frames.kind_names,
                                series=series, metrics=metrics, extremes=extremes,
                                train_log=read_train_log(log_dir / LOG_NAME), summary=[*summary, ops_line()],
                                trained_on=arrays.get("trained_on"), frames=frames.images,
                                paper=None if paper is None else (scores["pcc"], paper))  # fmt: skip
    except OSError as exc:
        raise InputError(out, f"cannot write results ({exc.strerror or exc})") from None
    segments = format_segments(decision, trained_on=arrays.get("trained_on"))
    lines = [*summary, *segments, *(f"warning: {w}" for w in decision.warnings)]
    for line in (
        lines + (ev.format_table(metrics) if metrics else []) + ([f"report: {page}"] if cfg.report else [])
    ):
        say(line)
    say(f"wrote {result}, {out / 'kept.txt'}, {out / 'removed.txt'}, {out / 'scores.csv'}")
    if cut is not None and not cfg.score_only:
        say(f"the best-f1 cut is stored in {out / CHECKPOINT_NAME}: --score-only applies it to new data")
    return arrays


def _load(cfg: Config) -> Frames:
    """``load_frames``; under torchrun rank 0 builds (or checks) the frame cache first and the
    other ranks then reuse it, so no two processes write the same cache entry."""
    if not dist.is_main():
        dist.barrier()
    frames = load_frames(cfg)
    if dist.is_main():
        dist.barrier()
    return frames


def _quiet(*_args, **_kwargs) -> None:
    pass


def _training_frames(cfg: Config, frames: Frames, say) -> Frames:
    """What the network trains on: ``--train-data`` (normal frames only) or the scored frames."""
    if not cfg.train_data or cfg.score_only:
        return frames
    check_same_size(cfg.train_data, cfg.data)
    train_frames = _load(dataclasses.replace(cfg, data=cfg.train_data))
    say(f"training on {len(train_frames)} frames from {train_frames.description or cfg.train_data}")
    if train_frames.labels is not None and train_frames.labels.any():
        say(f"warning: {int(train_frames.labels.sum())} training frames are labelled dirty; all are used")
    return train_frames


def ops_line() -> str:
    """Which backend each op ran on (``ops.selfcheck``), for the report."""
    used = ops.backends_used()
    return "ops: " + (", ".join(f"{name} {how}" for name, how in used.items()) or ops.backend())


NOT_IN_SUBSET = "not trained on (outside --train-frames or left out by the trimming)"


def paper_beside(cfg: Config, pcc: np.ndarray) -> Decision | None:
    """The published rule on the same frames (``threshold.paper_view``), for the npz, the summary
    and the report; None when the run's own rule is exactly that."""
    published = ("pcc", "paper", PAPER_MEDIAN_KS, DELTA_MARGIN)
    if (cfg.score, cfg.threshold, cfg.median_k, cfg.delta_margin) == published:
        return None
    return paper_view(pcc, cfg.median_mode)


def paper_line(paper: Decision, labels: np.ndarray | None) -> str:
    """What the published rule (``threshold.paper_view``) would have removed, beside the tool's own
    decision; with labels, how much of the dirt and of the clean frames that would have been."""
    n = int((~paper.is_clean).sum())
    line = (
        f"the paper's threshold on this network's PCC (k={paper.ks[0]}, delta = median(PCC_med) - "
        f"{DELTA_MARGIN:g} = {1 - paper.threshold.delta:.4f}) would remove {n} of {len(paper.is_clean)} "
        "frames"
    )
    if labels is not None and 0 < int(np.sum(labels)) < len(labels):
        dirty = np.asarray(labels) == 1
        line += (
            f": {np.mean(~paper.is_clean[dirty]):.1%} of the dirty ones, "
            f"keeping {np.mean(paper.is_clean[~dirty]):.1%} of the clean"
        )
    return line + " ('paper_is_clean' in the npz)"


def left_out_line(
    trained_on: np.ndarray, is_clean: np.ndarray, why: str = "left out of training by the trimming (--trim-k)"
) -> str:
    """Why to look at the removed frames the network never trained on: the trimming left them out
    because it doubted them, so a clean stretch of rare scenery among them is at a disadvantage."""
    left_out = ~np.asarray(trained_on, bool)
    removed = int((left_out & ~np.asarray(is_clean, bool)).sum())
    return (
        f"{why}: {int(left_out.sum())} frames, {removed} of them "
        f"removed ('trained_on' in the npz; removed frames the network never saw deserve a look)"
    )


def _trained_model(cfg: Config, images: np.ndarray, out: Path, device, say, checkpoint: dict | None):
    """The network, and which of ``images`` its last epoch trained on (None when it did not train);
    ``checkpoint``: the loaded ``--score-only`` file, whose network ``FrameFilter.load`` builds alike."""
    if cfg.score_only:
        say(f"scoring with {cfg.score_only} (no training)")
        return network_of(checkpoint, cfg.score_only, device), None
    trained = fitting.train_network(images, cfg, out, cfg.train_data or cfg.data or "built-in data", _flag)
    history = trained.history
    if not history:
        say(
            f"{cfg.resume} has trained --epochs {cfg.epochs} or more: nothing to train, scoring it"
            if cfg.resume
            else "--epochs 0: scoring the untrained network"
        )
    for h in history[-1:]:
        say(
            f"epoch {h.epoch}/{cfg.epochs}: L_rec {h.l_rec:.4g}, L_ref {h.l_ref:.4g}, "
            f"mean |z| {h.mean_z_norm:.3g}, "
            + (f"KL {h.l_aux:.4g}, " if cfg.arch == "vae" else "")
            + f"{h.frames_per_s:.0f} frames/s"
            + (f", trained on {h.frames} of {n} frames" if h.frames < (n := len(images)) else "")
        )
    return trained.model, trained.trained_on


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
            cfg = config_from_args(args)
            dist.setup(cfg.device)
            if not dist.is_main():
                warnings.simplefilter("ignore")  # rank 0 tells the user once
            run(cfg)
        except InputError as exc:
            print(f"error: {exc.path}: {exc.problem}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; continue with --resume", file=sys.stderr)
            return 130
        finally:
            dist.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
