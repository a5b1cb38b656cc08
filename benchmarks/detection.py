"""Detection quality on the built-in labelled benchmark: which score finds which corruption.

    python -m benchmarks.detection --size 64 --frames 2400 --epochs 6 [--ref-norm l2]

Trains the CAE once on a generated driving sequence holding every corruption kind in contiguous
runs (transductive, as the tool runs), then reports ROC-AUC ("higher score = dirty"; below 0.5 the
score points the wrong way) of every score, per kind, on:
  - the training sequence itself (per kind: that kind's frames against all clean frames);
  - the same frames shuffled (no temporal help: the median filter is off);
  - raindrop-only sequences sweeping the drops-vs-wet-film balance (scored with the same model).
Prints a markdown table (the one in the README) and writes it, with the raw scores, to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cae_fast.config import Config
from cae_fast.data.synth import KINDS, SynthSpec, generate
from cae_fast.score import DIRECTION, SCORE_NAMES, median_filter_1d, robust_z, score_frames
from cae_fast.threshold import decide
from cae_fast.train import train

RAIN_BALANCES = (0.0, 0.5, 0.75, 1.0)
FILTER_K = 21
# (label, score, threshold settings) rows of the decision table: the paper-exact rule and ours.
DECISIONS = (
    ("paper-exact", "pcc", {"threshold": "paper", "median_k": (101,)}),
    ("pcc, mad 3", "pcc", {"threshold": "mad", "median_k": (21, 101), "mad_k": 3.0}),
    ("lapvar, mad 3", "lapvar", {"threshold": "mad", "median_k": (21, 101), "mad_k": 3.0}),
    ("combo, mad 3", "combo", {"threshold": "mad", "median_k": (21, 101), "mad_k": 3.0}),
    (
        "combo, mad 3, detrend",
        "combo",
        {"threshold": "mad", "median_k": (21, 101), "mad_k": 3.0, "detrend": 505},
    ),
    ("combo, mad 2.5", "combo", {"threshold": "mad", "median_k": (21, 101), "mad_k": 2.5}),
    (
        "combo, shuffled, mad 3",
        "combo",
        {"threshold": "mad", "median_k": (1,), "mad_k": 3.0, "shuffle": True},
    ),
)


def dirtiness(name: str, s: np.ndarray) -> np.ndarray:
    """The score oriented so that higher = dirtier (two-sided scores by their |robust z|)."""
    d = DIRECTION[name]
    return np.abs(robust_z(s)) if d == 0 else -d * s


def auc(labels: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(labels, s)) if 0 < labels.sum() < len(labels) else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=2400)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--ref-norm", default="none")
    p.add_argument("--lambda-ref", type=float, default=1.0)
    p.add_argument("--m-ref", type=int, default=256)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="detection_out")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(a.seed)

    spec = SynthSpec(
        n_frames=a.frames, size=a.size, kinds=KINDS, seed=a.seed, dirty_fraction=0.2, run_length=(40, 120)
    )
    data = generate(spec)
    cfg = Config(
        data="benchmark",
        image_size=a.size,
        epochs=a.epochs,
        m_ref=a.m_ref,
        ref_norm=a.ref_norm,
        lambda_ref=a.lambda_ref,
        seed=a.seed,
        progress=False,
    ).resolved()
    t0 = time.perf_counter()
    model, stats = train(data.images, cfg, out)
    train_s = time.perf_counter() - t0
    dev = torch.device("cpu")
    names = tuple(SCORE_NAMES)

    columns: dict[str, dict[str, float]] = {}
    seq = score_frames(model, data.images, cfg, dev, names)
    for name in names:
        s = dirtiness(name, seq[name])
        sf = median_filter_1d(s, FILTER_K)
        for ki, kind in enumerate(KINDS):
            m = (data.kinds == -1) | (data.kinds == ki)
            columns.setdefault(kind, {})[name] = auc(data.labels[m], s[m])
            columns.setdefault(f"{kind} k{FILTER_K}", {})[name] = auc(data.labels[m], sf[m])
        columns.setdefault("all", {})[name] = auc(data.labels, s)
        columns.setdefault(f"all k{FILTER_K}", {})[name] = auc(data.labels, sf)
        # Shuffled variant: the same frames in random order; without the filter the AUC is order-free,
        # so it is the per-frame column above taken over all kinds.
        columns.setdefault("shuffled", {})[name] = auc(data.labels, s)

    for bal in RAIN_BALANCES:
        rain = generate(replace(spec, kinds=("raindrop",), rain_balance=bal, seed=a.seed + 7))
        sc = score_frames(model, rain.images, cfg, dev, names)
        for name in names:
            columns.setdefault(f"rain bal {bal:g}", {})[name] = auc(rain.labels, dirtiness(name, sc[name]))

    rows = ["| rule | " + " | ".join(f"{k} removed" for k in KINDS) + " | clean kept |", "|---|" + "---|" * 7]
    for label, name, settings in DECISIONS:
        settings = dict(settings)
        perm = (
            np.random.default_rng(a.seed).permutation(len(data.labels))
            if settings.pop("shuffle", False)
            else None
        )
        raw = seq[name] if perm is None else seq[name][perm]
        kinds = data.kinds if perm is None else data.kinds[perm]
        d = decide(raw, name, DIRECTION[name], replace(cfg, score=name, **settings))
        removed = ~d.threshold.is_clean
        cells = [f"{removed[kinds == ki].mean():.0%}" for ki in range(len(KINDS))]
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {(~removed[kinds == -1]).mean():.1%} |")
    decisions = "\n".join(rows)

    cols = list(columns)
    lines = ["| score | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{columns[c][name]:.3f}" for c in cols) + " |")
    table = "\n".join(lines)
    head = (
        f"size {a.size}, {a.frames} frames ({int(data.labels.sum())} dirty), {a.epochs} epochs, "
        f"ref_norm {a.ref_norm}, lambda {a.lambda_ref}, train {train_s:.0f} s, "
        f"final L_rec {stats[-1].l_rec:.4f}, L_ref {stats[-1].l_ref:.4f}, "
        f"mean |z| {stats[-1].mean_z_norm:.2f}"
    )
    print(head)
    print(table)
    print(decisions)
    (out / "detection.md").write_text(head + "\n\n" + table + "\n\n" + decisions + "\n")
    (out / "detection.json").write_text(json.dumps({"head": head, "auc": columns}, indent=1))
    np.savez(out / "scores.npz", labels=data.labels, kinds=data.kinds, **seq)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
