"""Save a montage of the synthetic benchmark: clean rows, then one row per corruption kind.

    python scripts/montage.py /tmp/montage_64.png --size 64 --kinds all
    python scripts/montage.py /tmp/rain.png --kinds raindrop --set rain_balance=0.2 --set drop_count=4,8

``--set NAME=VALUE`` overrides any SynthSpec field (tuples as comma-separated values).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from cae_fast.data.synth import KINDS, SynthSpec, generate, save_montage


def _override(spec: SynthSpec, assignment: str) -> SynthSpec:
    name, _, text = assignment.partition("=")
    current = getattr(spec, name)  # AttributeError names the bad field
    if isinstance(current, tuple):
        kind = type(current[0]) if current else str
        value = tuple(kind(v) for v in text.split(","))
    else:
        value = type(current)(text)
    return dataclasses.replace(spec, **{name: value})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--kinds", default="raindrop", help="comma-separated, or 'all'")
    ap.add_argument("--dirty", type=float, default=None, help="dirty fraction (default: the paper's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean", type=int, default=8, help="clean frames shown")
    ap.add_argument("--per-kind", type=int, default=8, help="frames shown per kind")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    kinds = KINDS if args.kinds == "all" else tuple(args.kinds.split(","))
    spec = SynthSpec(n_frames=args.frames, size=args.size, kinds=kinds, seed=args.seed)
    if args.dirty is not None:
        spec = dataclasses.replace(spec, dirty_fraction=args.dirty)
    for assignment in args.set:
        spec = _override(spec, assignment)
    t0 = time.perf_counter()
    data = generate(spec)
    took = time.perf_counter() - t0
    save_montage(data, args.path, n_clean=args.clean, n_dirty=args.per_kind)
    print(
        f"{spec.n_frames} frames at {spec.size}px in {took:.1f}s; runs: "
        + ", ".join(f"{k}[{s}:{e}]" for s, e, k in data.segments)
    )
    print(f"saved {args.path}")


if __name__ == "__main__":
    main()
