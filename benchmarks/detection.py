"""Detection quality on the built-in labelled benchmark: which score finds which corruption, and
whether the tool's default configuration removes them, over several generated sequences.

    python -m benchmarks.detection --size 64 --seeds 1,2,3 --epochs 6 [--trim-k 0] [--ref-norm l2]

Per seed, the CAE is trained transductively (as the tool runs) on a generated driving sequence
holding every corruption kind in contiguous runs, then each configuration is judged the way the
tool reports it (``cae_fast.output.evaluate``): ROC-AUC of its decision statistic per kind (that kind's
frames against all clean frames; below 0.5 the score points the wrong way), the share of each kind
removed and of clean frames kept at its automatic threshold. Configurations:
  - ``paper-exact``: PCC, ``delta = median(PCC_med) - 0.05``, median filter 101, no trimming;
  - ``lapvar``: the no-model blur baseline (variance of the Laplacian) through our filters and cut;
  - ``default``: the tool's defaults (``combined``, filter 21, robust z > 2.25, trimming,
    keep_ordinary, grow_runs).
The shuffled (non-temporal) variant is a second sequence of the same frames in random order, on
which a second network is trained with the median filter off (``--median-k 1``), as a user of a
photo collection would run it. Also: raw per-frame AUC of every score (which score sees which
corruption) and a raindrop sweep (the drops-vs-wet-film balance, then each part at an end of its
range: ``RAIN_SWEEP``), scored with the first network.
Writes markdown tables, a JSON and the raw scores to --out, each file named by the mix (size,
frames, dirty share, run lengths: ``mix_tag``) and by any training setting that is not the
default (``training_tag``), so runs of two mixes or two trainings into one folder keep apart.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from benchmarks.verdict import (
    ACCEPT_AUC,
    ACCEPT_KEPT,
    ACCEPT_REMOVED,
    SUMMARY_HEAD,
    against_baseline,
    meets_acceptance,
    summary_row,
)
from cae_fast import config as C
from cae_fast.cli.argtypes import channels, epochs_list, fraction, nonnegative, odd_list, positive
from cae_fast.config import Config
from cae_fast.data.synth import KINDS, PAPER_CLEAN, PAPER_DIRTY, SynthSpec, generate
from cae_fast.decide.postprocess import decide_frames
from cae_fast.output.evaluate import evaluate, evaluation_series
from cae_fast.output.export import atomic_write_bytes
from cae_fast.score.terms import SCORE_NAMES, score_frames
from cae_fast.train.loop import CHECKPOINT_NAME, load_checkpoint, train

# The raw table's raindrop-only sequences, scored by the first network: the balance of drops (more
# structure) against wet film (less), which decides which scores work, then one part at a time
# pushed to an end of its range at the default balance (SynthSpec: drop_count (10, 22), drop_radius
# (0.025, 0.085), wet_blur 1.2, haze 0.2).
RAIN_SWEEP = (
    *((f"rain bal {b:g}", {"rain_balance": b}) for b in (0.0, 0.5, 0.75, 1.0)),
    ("strong film", {"wet_blur": 3.0, "haze": 0.5}),
    ("few small drops", {"drop_count": (3, 6), "drop_radius": (0.015, 0.04)}),
    ("many big drops", {"drop_count": (30, 45), "drop_radius": (0.06, 0.12)}),
)
# (label, the configuration made from the run's) of every configuration judged.
CONFIGS = (
    # the published recipe (Config.paper), trained as long as the others to compare like with like
    ("paper-exact", lambda cfg: replace(cfg.paper(), epochs=cfg.epochs)),
    # the no-model baseline as a user would run it
    ("lapvar", lambda cfg: replace(cfg, score="lapvar", keep_ordinary=0.0, grow_runs=0.0)),
    ("default", lambda cfg: cfg),
)
# --repeats: training seed of repeat r on sequence s is s + REPEAT_STRIDE * r, so repeat 0 is the
# run every earlier table was measured with and the training seeds never collide with a sequence's.
REPEAT_STRIDE = 1000


def auc(labels: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(labels, s)) if 0 < labels.sum() < len(labels) else float("nan")


def judge(scores: dict[str, np.ndarray], data, cfg: Config, trained_on: np.ndarray | None = None) -> dict:
    """Decision + metrics of one configuration, as ``python -m cae_fast.run`` reports them."""
    d = decide_frames(scores, cfg, trained_on)
    series = evaluation_series(scores[cfg.score], d)
    return evaluate(data.labels, series, d.threshold.is_clean, data.kinds, KINDS)


def run_sequence(
    spec: SynthSpec, cfg: Config, out: Path, configs=CONFIGS
) -> tuple[dict[str, dict], tuple, object]:
    """Train on one generated sequence and judge every configuration on it."""
    data = generate(spec)
    results: dict[str, dict] = {}
    names = tuple(SCORE_NAMES)
    models = {}
    for label, make in configs:
        # The paper-exact row trains as the paper does (every frame, every epoch); the others share
        # the tool's default training.
        run_cfg = make(cfg)
        trim_k = run_cfg.trim_k
        if trim_k not in models:
            t0 = time.perf_counter()
            torch.manual_seed(cfg.seed)
            model, stats = train(data.images, run_cfg, out)
            sc = score_frames(model, data.images, cfg, torch.device("cpu"), names)
            pool = load_checkpoint(out / CHECKPOINT_NAME).get("pool") if stats else None
            trained_on = None if pool is None else np.isin(np.arange(len(data.images)), pool.numpy())
            models[trim_k] = (model, stats, sc, time.perf_counter() - t0, trained_on)
        model, stats, sc, seconds, trained_on = models[trim_k]
        m = judge(sc, data, run_cfg, trained_on)
        m["train"] = {"seconds": seconds, "l_rec": stats[-1].l_rec, "frames_last_epoch": stats[-1].frames}
        results[label] = m
    return results, models[cfg.trim_k], data


def config_labels(text: str) -> tuple[str, ...]:
    labels = tuple(x.strip() for x in text.split(",") if x.strip())
    known = [c[0] for c in CONFIGS]
    bad = [x for x in labels if x not in known]
    if bad or not labels:
        raise argparse.ArgumentTypeError(
            f"unknown configuration {bad or text!r}; choose from {','.join(known)}"
        )
    return labels


def raw_auc_table(sc: dict[str, np.ndarray], data, model, cfg: Config, spec: SynthSpec) -> str:
    cols: dict[str, dict[str, float]] = {}
    for name in SCORE_NAMES:
        s = np.asarray(sc[name], np.float64)
        for ki, kind in enumerate(KINDS):
            m = (data.kinds == -1) | (data.kinds == ki)
            cols.setdefault(kind, {})[name] = auc(data.labels[m], s[m])
        cols.setdefault("all", {})[name] = auc(data.labels, s)
    for column, rain_spec in RAIN_SWEEP:
        rain = generate(replace(spec, kinds=("raindrop",), seed=spec.seed + 7, **rain_spec))
        rs = score_frames(model, rain.images, cfg, torch.device("cpu"), tuple(SCORE_NAMES))
        for name in SCORE_NAMES:
            s = np.asarray(rs[name], np.float64)
            cols.setdefault(column, {})[name] = auc(rain.labels, s)
    lines = ["| score | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {n} | " + " | ".join(f"{cols[c][n]:.3f}" for c in cols) + " |" for n in SCORE_NAMES]
    return "\n".join(lines)


# The benchmark's mix: twice the paper's share of corrupted frames (PAPER_DIRTY of
# PAPER_CLEAN + PAPER_DIRTY, 9.1%), so that 2,400 frames hold a few runs of every kind; runs of
# 40-120 frames, long enough for the median filter's 21-frame scale. --dirty-fraction paper and
# --run-length change it (the README's figures say which mix they were measured on).
BENCH_DIRTY = 0.2
BENCH_RUN_LENGTH = (40, 120)


def dirty_fraction(text: str) -> float:
    """``--dirty-fraction``: a fraction in (0, 1), or ``paper`` for the paper's 1,600 / 17,600."""
    if text.strip().lower() == "paper":
        return PAPER_DIRTY / (PAPER_CLEAN + PAPER_DIRTY)
    try:
        return fraction(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1) or 'paper', got {text!r}") from None


def run_length(text: str) -> tuple[int, int]:
    """``--run-length LO,HI``: the frames in one corrupted run, 1 <= LO <= HI."""
    try:
        lo, hi = (positive(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frame counts LO,HI like 40,120, got {text!r}") from None
    if lo > hi:
        raise argparse.ArgumentTypeError(f"LO must not exceed HI, got {text!r}")
    return lo, hi


def mix_tag(size: int, frames: int, dirty: float, runs: tuple[int, int]) -> str:
    """What a benchmark's output files are named by: two mixes written to one ``--out`` keep apart."""
    return f"{size}px_{frames}f_dirty{dirty:.4g}_runs{runs[0]}-{runs[1]}"


# The settings of a benchmark run that change the training (not the generated mix).
TRAINING_FLAGS = (
    "epochs",
    "epoch_frames",
    "train_frames",
    "trim_k",
    "trim_at",
    "ref_norm",
    "lambda_ref",
    "m_ref",
    "latent_dim",
    "channels",
    "median_k",
)


def training_tag(a: argparse.Namespace) -> str:
    """The training settings that differ from the benchmark's defaults, as a file-name suffix
    ("" for the defaults): two runs of one mix with different training into one ``--out`` keep apart."""
    parser, parts = build_parser(), []
    for key in TRAINING_FLAGS:
        value = getattr(a, key)
        if value != parser.get_default(key):
            if isinstance(value, tuple):
                text = "-".join(map(str, value))
            else:
                text = f"{value:g}" if isinstance(value, float) else str(value)
            parts.append(f"_{key.replace('_', '')}{text}")
    return "".join(parts)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=2400)
    p.add_argument(
        "--dirty-fraction",
        type=dirty_fraction,
        default=BENCH_DIRTY,
        help=f"corrupted share ({BENCH_DIRTY}; paper: {PAPER_DIRTY} of {PAPER_CLEAN + PAPER_DIRTY})",
    )
    p.add_argument(
        "--run-length",
        type=run_length,
        default=BENCH_RUN_LENGTH,
        help=f"frames per corrupted run, LO,HI ({BENCH_RUN_LENGTH[0]},{BENCH_RUN_LENGTH[1]})",
    )
    p.add_argument("--epochs", type=int, default=C.TRAIN_EPOCHS)
    p.add_argument(
        "--epoch-frames", type=int, default=C.EPOCH_FRAMES, help=f"per epoch ({C.EPOCH_FRAMES}; 0: all)"
    )
    p.add_argument("--train-frames", type=int, default=None, help="train on a random subset (default: all)")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated; one generated sequence each")
    p.add_argument("--trim-k", type=float, default=C.TRIM_K)
    p.add_argument("--trim-at", type=epochs_list, default=C.TRIM_AT)
    p.add_argument("--ref-norm", default="none")
    p.add_argument("--lambda-ref", type=float, default=1.0)
    p.add_argument("--m-ref", type=int, default=256)
    p.add_argument(
        "--median-k",
        type=odd_list,
        default=C.MEDIAN_KS,
        help="filter lengths of the trimming judgement and of every configuration but paper-exact "
        f"({','.join(map(str, C.MEDIAN_KS))}; the shuffled variant always uses 1)",
    )
    p.add_argument("--latent-dim", type=positive, default=C.LATENT_DIM, help="size of the latent code")
    p.add_argument(
        "--channels",
        type=channels,
        default=C.ENCODER_CHANNELS,
        help="encoder widths, one stride-2 stage each (" + ",".join(map(str, C.ENCODER_CHANNELS)) + ")",
    )
    p.add_argument(
        "--repeats",
        type=positive,
        default=1,
        help=f"trainings per sequence: training seed = seed + {REPEAT_STRIDE}*r (r = 0: the sequence's own)",
    )
    p.add_argument(
        "--first-repeat",
        type=nonnegative,
        default=0,
        help="skip the repeats before this one (already measured)",
    )
    p.add_argument(
        "--configs",
        type=config_labels,
        default=tuple(c[0] for c in CONFIGS),
        help="comma-separated subset of "
        + ",".join(c[0] for c in CONFIGS)
        + " (paper-exact trains its own network)",
    )
    p.add_argument("--no-shuffled", action="store_true", help="skip the non-temporal variant")
    p.add_argument("--no-raw", action="store_true", help="skip the raw per-score table and rain sweep")
    p.add_argument("--out", default="detection_out")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    mix = mix_tag(a.size, a.frames, a.dirty_fraction, a.run_length) + training_tag(a)
    summary, raw_tables, everything = [SUMMARY_HEAD], [], {}
    configs = tuple(c for c in CONFIGS if c[0] in a.configs)
    passes: dict[str, list[str]] = {label: [] for label, _ in configs}
    runs = [
        (seed, seed + REPEAT_STRIDE * r)
        for seed in (int(s) for s in a.seeds.split(","))
        for r in range(a.first_repeat, a.repeats)
    ]
    for seed, train_seed in runs:
        spec = SynthSpec(
            n_frames=a.frames,
            size=a.size,
            kinds=KINDS,
            seed=seed,
            dirty_fraction=a.dirty_fraction,
            run_length=a.run_length,
        )
        cfg = Config(
            data="benchmark",
            image_size=a.size,
            epochs=a.epochs,
            epoch_frames=a.epoch_frames or None,
            train_frames=a.train_frames,
            m_ref=a.m_ref,
            latent_dim=a.latent_dim,
            channels=a.channels,
            ref_norm=a.ref_norm,
            lambda_ref=a.lambda_ref,
            trim_k=a.trim_k,
            trim_at=a.trim_at,
            median_k=a.median_k,
            seed=train_seed,
            progress=False,
        ).resolved()
        name = f"seed {seed}" + ("" if train_seed == seed else f", training seed {train_seed}")
        tag = f"{seed}" + ("" if train_seed == seed else f"_train{train_seed}")
        res, (model, _, sc, _, trained_on), data = run_sequence(spec, cfg, out, configs)
        n_rows = len(res)
        for label, m in res.items():
            summary.append(summary_row(f"{a.size}², {name}, {label}", m))
            passes[label].append(f"{name}: {'pass' if meets_acceptance(m) else 'fail'}")
        everything[name] = res
        # trained_on: keep_ordinary's reference, so a saved training can be judged again offline as the
        # tool would.
        extra = {} if trained_on is None else {"trained_on": trained_on}
        _save_npz(out / f"scores_{mix}_seed{tag}.npz", labels=data.labels, kinds=data.kinds, **extra, **sc)
        if not a.no_raw:
            raw_tables.append(f"{name}:\n\n" + raw_auc_table(sc, data, model, cfg, spec))
        if not a.no_shuffled:
            shuffled = tuple(c for c in configs if c[0] != "paper-exact")
            res_s, (_, _, sc_s, _, trained_s), data_s = run_sequence(
                replace(spec, shuffle=True), replace(cfg, median_k=(1,)), out, shuffled
            )
            n_rows += len(res_s)
            for label, m in res_s.items():
                summary.append(summary_row(f"{a.size}², {name}, shuffled, {label}", m))
            everything[f"{name} shuffled"] = res_s
            shuffled_npz = out / f"scores_{mix}_seed{tag}_shuffled.npz"
            extra_s = {} if trained_s is None else {"trained_on": trained_s}
            _save_npz(shuffled_npz, labels=data_s.labels, kinds=data_s.kinds, **extra_s, **sc_s)
        print("\n".join(summary[-n_rows:]), flush=True)
    accept = [
        f"{label}: {sum(v.endswith('pass') for v in verdicts)} of {len(verdicts)} trainings on temporal "
        f"sequences pass ({'; '.join(verdicts)})"
        for label, verdicts in passes.items()
    ]
    versus = [
        f"{name}: {against_baseline(res['default'], res['lapvar'])}"
        for name, res in everything.items()
        if "default" in res and "lapvar" in res
    ]
    versus_head = "default against lapvar, kind by kind (ROC-AUC / removed):"
    versus_block = [versus_head + "\n" + "\n".join(f"- {x}" for x in versus)] if versus else []
    head = (
        f"size {a.size}, {a.frames} frames ({a.dirty_fraction:.1%} dirty, "
        f"runs of {a.run_length[0]}-{a.run_length[1]}), {a.epochs} epochs"
        f"{' (one pass each)' if not a.epoch_frames else f' of at most {a.epoch_frames} frames'}"
        f"{'' if a.train_frames is None else f' on a random {a.train_frames} of them'}, "
        f"trim_k {a.trim_k} judged before epochs {','.join(map(str, a.trim_at))}, "
        f"ref_norm {a.ref_norm}, lambda {a.lambda_ref}, "
        f"m_ref {a.m_ref}, latent {a.latent_dim}, channels {','.join(map(str, a.channels))}, "
        f"median_k {','.join(map(str, a.median_k))}"
    )
    accept_head = (
        f"Acceptance (every kind AUC >= {ACCEPT_AUC}, removed >= {ACCEPT_REMOVED:.0%}; "
        f"clean kept >= {ACCEPT_KEPT:.0%}):"
    )
    text = (
        "\n\n".join(
            [
                head,
                "\n".join(summary),
                accept_head + "\n" + "\n".join(f"- {x}" for x in accept),
                *versus_block,
                *raw_tables,
            ]
        )
        + "\n"
    )
    print(text)
    atomic_write_bytes(out / f"detection_{mix}.md", text.encode())
    report = {"head": head, "results": everything, "acceptance": passes, "against_lapvar": versus}
    atomic_write_bytes(out / f"detection_{mix}.json", json.dumps(report, indent=1, default=str).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
