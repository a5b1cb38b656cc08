"""``python -m cae_fast.compare``: train each ``--arch`` on the same data and print one table.

The table the course projects make by hand: for every network, ROC-AUC and average precision of
its score on the labelled ``--data``, precision / recall / F1 at the ``best-f1`` cut, parameters,
training time, and L_rec at the first and last epoch (a falling L_rec is how a VAE shows that it
trained instead of collapsing). Every other flag is the main command's (``cae-fast --help``) and
applies to each run alike; ``--threshold`` is always ``best-f1``. Each network gets a run folder
of its own, ``--out/<arch>``, holding everything a single run writes plus its printed log.

    python -m cae_fast.compare --train-data builtin:digits --data builtin:digits --epochs 20
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cae_fast.cli.flags import build_parser, config_from_args
from cae_fast.cli.main import run
from cae_fast.errors import InputError
from cae_fast.model.zoo import ARCHS
from cae_fast.output.export import atomic_write_bytes
from cae_fast.output.report import read_train_log
from cae_fast.train.loop import LOG_NAME

TABLE_NAME = "compare.txt"
COLUMNS = ("arch", "ROC-AUC", "AP", "precision", "recall", "F1", "params", "train s", "L_rec first->last")


def _archs(text: str) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    unknown = [a for a in names if a not in ARCHS]
    if unknown or not names:
        known = ",".join(ARCHS)
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {known}, got {text!r}")
    return names


def _row(arch: str, arrays: dict, run_dir: Path) -> list[str]:
    log = read_train_log(run_dir / LOG_NAME)
    l_rec = f"{log[0]['l_rec']:.4g} -> {log[-1]['l_rec']:.4g}" if log else "-"
    if "eval_roc_auc" not in arrays:
        raise InputError("--data", "the comparison needs labels with the scored data (or --labels)")
    return [
        arch,
        *(f"{float(arrays[k]):.3f}" for k in ("eval_roc_auc", "eval_average_precision")),
        *(f"{float(arrays[k]):.3f}" for k in ("eval_precision", "eval_recall", "eval_f1")),
        f"{int(arrays['n_params']):,}",
        f"{float(arrays['train_seconds']):.1f}",
        l_rec,
    ]


def format_table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [line.format(*COLUMNS), *(line.format(*r) for r in rows)]


def compare(argv: Sequence[str], say=print) -> list[list[str]]:
    """Parse ``argv``, run every asked-for network and return the table's rows (also printed)."""
    p = argparse.ArgumentParser(prog="python -m cae_fast.compare", add_help=False)
    p.add_argument("--archs", type=_archs, default=",".join(ARCHS))
    own, rest = p.parse_known_args(argv)
    args = build_parser().parse_args([*rest, "--threshold", "best-f1"])
    if args.score_only or args.resume is not None:
        flag = "--score-only" if args.score_only else "--resume"
        raise InputError(flag, "the comparison trains every network from scratch")
    cfg = config_from_args(args)
    rows = []
    for arch in own.archs:
        run_dir = Path(cfg.out) / arch
        say(f"{arch}: training and scoring (log in {run_dir / 'log.txt'})")
        lines: list[str] = []
        t0 = time.perf_counter()
        arrays = run(dataclasses.replace(cfg, arch=arch, out=str(run_dir), report=False), say=lines.append)
        atomic_write_bytes(run_dir / "log.txt", "".join(ln + "\n" for ln in lines).encode())
        rows.append(_row(arch, arrays, run_dir))
        say(f"{arch}: done in {time.perf_counter() - t0:.1f} s, ROC-AUC {rows[-1][1]}, F1 {rows[-1][5]}")
    cut_on = f"--val-data {cfg.val_data}" if cfg.val_data else "the labels of --data itself (optimistic)"
    table = [
        f"train: {cfg.train_data or cfg.data or 'built-in demo'}; scored: {cfg.data or 'built-in demo'}; "
        f"score {cfg.score}; precision / recall / F1 at the best-f1 cut chosen on {cut_on}",
        *format_table(rows),
    ]
    for line in table:
        say(line)
    atomic_write_bytes(Path(cfg.out) / TABLE_NAME, "".join(ln + "\n" for ln in table).encode())
    say(f"wrote {Path(cfg.out) / TABLE_NAME}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if {"-h", "--help"} & set(argv):
        print(__doc__.strip() + "\n\n--archs A,B,...   networks to compare (default: all of "
              f"{','.join(ARCHS)})\n\nThe main command's flags:\n")  # fmt: skip
        build_parser().print_help()
        return 0
    try:
        compare(argv)
    except SystemExit as exc:  # a bad flag: argparse printed the usage
        return int(exc.code or 0)
    except InputError as exc:
        print(f"error: {exc.path}: {exc.problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
